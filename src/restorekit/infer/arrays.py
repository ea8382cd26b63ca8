"""Arrays in, arrays out: the caller's image conventions around a network (no torch here).

Shared by the PyTorch model (:mod:`restorekit.infer.model`) and the ONNX Runtime one
(:mod:`restorekit.infer.onnx_backend`). Accepted arrays: H x W (grey) or H x W x C with C in
{1, 3, 4} (RGBA: alpha passes through unchanged), dtype uint8 (0-255), uint16 (0-65535) or float
(taken as [0, 1]; values outside are allowed and float output is not clipped). Grey images given
to an RGB model are replicated to RGB and averaged back; RGB images given to a grey model are
processed channel by channel. The network sees N x C x H x W float32 in [0, 1]. With ``scale``
(super-resolution) the output is ``scale`` times larger and alpha is upscaled with bicubic
``imresize`` and clipped to its range.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from restorekit.degrade.resize import imresize
from restorekit.errors import ImageFormatError
from restorekit.pixels import image_to_unit, unit_to_image

Run = Callable[[np.ndarray], np.ndarray]
"""N x C x H x W float32 -> N x C' x H' x W' float32."""


def apply_to_image(run: Run, image: np.ndarray, model_channels: int, scale: int = 1) -> np.ndarray:
    """``run`` applied to ``image`` (see the module docstring); same shape layout and dtype out,
    ``scale`` times larger."""
    array = np.asarray(image)
    if array.ndim == 2:
        return apply_to_image(run, array[..., None], model_channels, scale)[..., 0]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ImageFormatError(
            f"expected an H x W or H x W x C image with C in 1, 3, 4; got shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageFormatError(f"empty image (shape {array.shape}): nothing to process")
    if array.shape[2] == 4:
        rgb = apply_to_image(run, array[..., :3], model_channels, scale)
        return np.concatenate([rgb, upscale_alpha(array[..., 3:], scale)], axis=2)
    pixels = image_to_unit(array, check_finite=True)  # C x H x W
    channels = pixels.shape[0]
    if channels == model_channels:
        out = run(pixels[None])[0]
    elif channels == 1 and model_channels == 3:
        out = run(np.repeat(pixels, 3, axis=0)[None])[0].mean(0, keepdims=True)
    elif model_channels == 1:
        out = run(np.ascontiguousarray(pixels[:, None]))[:, 0]
    else:
        raise ImageFormatError(f"image has {channels} channels; this model takes {model_channels}")
    return unit_to_image(out, array.dtype)


def upscale_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    """An H x W (x 1) alpha channel ``scale`` times larger by bicubic ``imresize``, clipped to
    its range, same dtype and layout."""
    if scale == 1:
        return alpha
    if alpha.ndim == 2:
        return upscale_alpha(alpha[..., None], scale)[..., 0]
    unit = image_to_unit(alpha)[0].astype(np.float64)
    height, width = unit.shape
    up = imresize(unit, output_shape=(height * scale, width * scale))
    return unit_to_image(np.clip(up, 0.0, 1.0)[None], alpha.dtype)
