"""Shared input conventions of the metrics: value scale, Y channel, cropping.

Images are H x W x C (C = 1 or 3) or H x W numpy arrays in RGB order, either ``uint8`` (data
range 255) or float in [0, 1] (data range 1). Everything is computed in float64 on the 0-255
scale, so a metric gives the same number for ``x`` (uint8) and ``x / 255`` (float).
"""

from __future__ import annotations

import numpy as np

from restorekit.errors import ImageFormatError

# ITU-R BT.601 "studio swing" luma weights for R, G, B in [0, 1]; Y is in [16, 235].
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])


class MetricInputError(ImageFormatError, ValueError):
    """An image given to a metric has the wrong shape, dtype, value range or size."""


def _to_255(img: np.ndarray, name: str) -> np.ndarray:
    """Return ``img`` as float64 on the 0-255 scale (uint8 as is, float [0, 1] times 255)."""
    if img.dtype == np.uint8:
        return img.astype(np.float64)
    if np.issubdtype(img.dtype, np.floating):
        lo, hi = (float(img.min()), float(img.max())) if img.size else (0.0, 0.0)
        if not (lo >= 0.0 and hi <= 1.0):
            raise MetricInputError(
                f"{name}: float images must lie in [0, 1], got values in [{lo}, {hi}]; "
                "clip with np.clip(x, 0, 1) or pass uint8"
            )
        return img.astype(np.float64) * 255.0
    raise MetricInputError(f"{name}: dtype must be uint8 or float in [0, 1], got {img.dtype}")


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Luma Y of an RGB image, ITU-R BT.601 studio swing, on the 0-255 scale.

    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for R, G, B in [0, 1], so Y is in [16, 235]
    (black -> 16, white -> 235). ``img`` is H x W x 3, uint8 or float in [0, 1]. Returns an
    H x W float64 array, *not* rounded (BasicSR convention); MATLAB's ``rgb2ycbcr`` on uint8
    rounds Y to integers, which moves PSNR by a few hundredths of a dB.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise MetricInputError(f"rgb_to_y needs an H x W x 3 RGB image, got shape {img.shape}")
    return 16.0 + (_to_255(img, "rgb_to_y") / 255.0) @ _Y_WEIGHTS


def prepare_pair(
    a: np.ndarray, b: np.ndarray, crop_border: int, y_channel: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Check a pair of images and return them as float64 H x W x C arrays on the 0-255 scale.

    ``crop_border`` pixels are removed from each edge; with ``y_channel`` a 3-channel image is
    replaced by its Y channel (1-channel and H x W images are left as they are).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise MetricInputError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3)):
        raise MetricInputError(f"images must be H x W or H x W x C with C = 1 or 3, got {a.shape}")
    if (a.dtype == np.uint8) != (b.dtype == np.uint8):
        raise MetricInputError(
            f"images differ in dtype: {a.dtype} vs {b.dtype}; pass both uint8 or both float"
        )
    if crop_border < 0:
        raise MetricInputError(f"crop_border must be >= 0, got {crop_border}")
    h, w = a.shape[:2]
    if 2 * crop_border >= min(h, w):
        raise MetricInputError(
            f"crop_border={crop_border} is larger than the image: it removes all of {h}x{w}"
        )
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if y_channel and a.shape[2] == 3:
        return rgb_to_y(a)[..., None], rgb_to_y(b)[..., None]
    return _to_255(a, "first image"), _to_255(b, "second image")
