"""Peak signal-to-noise ratio."""

from __future__ import annotations

import numpy as np

from restorekit.metrics.color import prepare_pair


def psnr(a: np.ndarray, b: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """PSNR in dB: ``10 log10(255^2 / MSE)``, the MSE taken on the 0-255 scale over all pixels
    and channels.

    ``a`` and ``b``: H x W x C (C = 1 or 3) or H x W, RGB order, both uint8 or both float in
    [0, 1] (same result for ``x`` and ``x / 255``); computed in float64. ``crop_border`` pixels
    are removed from each edge first (super-resolution convention). ``y_channel=True`` uses the
    unrounded BT.601 studio-swing Y of 3-channel images (see :func:`rgb_to_y`; MATLAB's
    ``rgb2ycbcr`` on uint8 rounds and differs by a few hundredths of a dB). Identical images
    give ``inf``. Raises ``ValueError`` on mismatched shapes or dtypes or a too large crop.
    """
    x, y = prepare_pair(a, b, crop_border, y_channel)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(255.0**2 / mse))
