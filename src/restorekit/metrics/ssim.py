"""Structural similarity (Wang et al. 2004), Gaussian-window form."""

from __future__ import annotations

import numpy as np

from restorekit.metrics.color import MetricInputError, prepare_pair

_WIN = 11
_SIGMA = 1.5
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2

_r = np.arange(_WIN) - _WIN // 2
_KERNEL = np.exp(-(_r**2) / (2 * _SIGMA**2))
_KERNEL /= _KERNEL.sum()


def _filter_valid(x: np.ndarray) -> np.ndarray:
    """Correlate H x W x C with the 11x11 Gaussian (separably), keeping only the valid region:
    the result is (H - 10) x (W - 10) x C."""
    h, w = x.shape[:2]
    n = _WIN - 1
    rows = sum(k * x[i : h - n + i] for i, k in enumerate(_KERNEL))
    return sum(k * rows[:, i : w - n + i] for i, k in enumerate(_KERNEL))


def ssim(a: np.ndarray, b: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """Mean SSIM: 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255.

    The SSIM map is computed without padding (the 'valid' region, 5 pixels narrower on each
    side), averaged per channel, then over channels. This matches BasicSR/EDSR's
    ``calculate_ssim`` and scikit-image's ``structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=255)``.

    Inputs, ``crop_border`` and ``y_channel`` follow :func:`psnr`. Identical images give 1.0.
    Raises ``ValueError`` on mismatched shapes or dtypes, or an image smaller than 11x11 after
    cropping.
    """
    x, y = prepare_pair(a, b, crop_border, y_channel)
    h, w = x.shape[:2]
    if h < _WIN or w < _WIN:
        raise MetricInputError(
            f"SSIM needs images of at least {_WIN}x{_WIN} pixels (after cropping), got {h}x{w}"
        )
    mu_x, mu_y = _filter_valid(x), _filter_valid(y)
    var_x = _filter_valid(x * x) - mu_x**2
    var_y = _filter_valid(y * y) - mu_y**2
    cov = _filter_valid(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    den = (mu_x**2 + mu_y**2 + _C1) * (var_x + var_y + _C2)
    return float(np.mean(np.mean(num / den, axis=(0, 1))))
