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

from collections.abc import Callable, Iterator

import numpy as np

from restorekit.degrade.resize import imresize
from restorekit.errors import ImageFormatError
from restorekit.pixels import image_to_unit, unit_to_image

Blocks = Callable[[np.ndarray], Iterator[tuple[int, np.ndarray]]]
"""An N x C x H x W array-like (any pixel dtype, possibly a view) -> its output as blocks of
rows: ``(first_row, N x C' x rows x W' float32 on the [0, 1] scale)``, rows in order."""


def image_rows(
    blocks: Blocks, image: np.ndarray, model_channels: int
) -> Iterator[tuple[int, np.ndarray]]:
    """``blocks`` applied to an H x W x C image (C 1 or 3; see the module docstring), yielded as
    ``(first_row, rows x W' x C block)`` in the image's dtype.

    The network's input is a view of ``image`` (no float copy of the whole image is made):
    grey images for an RGB model are broadcast to three channels, RGB images for a grey model
    become three one-channel images.
    """
    array = np.asarray(image)
    channels = array.shape[2]
    planes = np.moveaxis(array, 2, 0)  # C x H x W view
    back: Callable[[np.ndarray], np.ndarray]
    if channels == model_channels:
        batch, back = planes[None], lambda out: out[0]
    elif channels == 1 and model_channels == 3:
        batch = np.broadcast_to(planes[None], (1, 3, *planes.shape[1:]))
        back = lambda out: out[0].mean(0, keepdims=True)  # noqa: E731
    elif model_channels == 1:
        batch, back = planes[:, None], lambda out: out[:, 0]
    else:
        raise ImageFormatError(f"image has {channels} channels; this model takes {model_channels}")
    for row, block in blocks(batch):
        yield row, unit_to_image(back(block), array.dtype)


def apply_to_image(
    blocks: Blocks, image: np.ndarray, model_channels: int, scale: int = 1
) -> np.ndarray:
    """``blocks`` applied to ``image`` (see the module docstring); same shape layout and dtype
    out, ``scale`` times larger."""
    array = check_image_shape(image)
    if array.ndim == 2:
        return apply_to_image(blocks, array[..., None], model_channels, scale)[..., 0]
    if array.shape[2] == 4:
        rgb = apply_to_image(blocks, array[..., :3], model_channels, scale)
        return np.concatenate([rgb, upscale_alpha(array[..., 3:], scale)], axis=2)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ImageFormatError("image contains NaN or infinite values; replace them first")
    out = np.empty((array.shape[0] * scale, array.shape[1] * scale, array.shape[2]), array.dtype)
    for row, block in image_rows(blocks, array, model_channels):
        out[row : row + block.shape[0]] = block
    return out


def check_image_shape(image: np.ndarray) -> np.ndarray:
    """``image`` as an array, refused unless H x W or H x W x C with C in 1, 3, 4, not empty."""
    array = np.asarray(image)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ImageFormatError(
            f"expected an H x W or H x W x C image with C in 1, 3, 4; got shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageFormatError(f"empty image (shape {array.shape}): nothing to process")
    return array


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
