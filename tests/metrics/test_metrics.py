"""PSNR / SSIM / Y channel, checked against scikit-image and direct formulas."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from restorekit.metrics import psnr, rgb_to_y, ssim

SK_SSIM = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


def _pair(h: int, w: int, channels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth synthetic uint8 image and a noisy copy (H x W if channels == 0)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = [
        128 + 90 * np.sin(xx / (5 + c) + c) * np.cos(yy / (7 - c)) for c in range(max(channels, 1))
    ]
    clean = np.stack(planes, axis=-1) if channels else planes[0]
    noisy = clean + rng.normal(0, 12, clean.shape)
    to_u8 = lambda x: np.clip(np.round(x), 0, 255).astype(np.uint8)  # noqa: E731
    return to_u8(clean), to_u8(noisy)


GRAY = _pair(64, 48, 0)
RGB = _pair(96, 80, 3, seed=1)


@pytest.mark.parametrize("pair", [GRAY, RGB], ids=["gray", "rgb"])
def test_psnr_matches_skimage(pair):
    a, b = pair
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10)


@pytest.mark.parametrize("pair", [GRAY, RGB], ids=["gray", "rgb"])
def test_ssim_matches_skimage(pair):
    a, b = pair
    channel_axis = -1 if a.ndim == 3 else None
    expected = structural_similarity(a, b, channel_axis=channel_axis, **SK_SSIM)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-6)


def test_single_channel_equals_gray():
    a, b = GRAY
    assert psnr(a[..., None], b[..., None]) == psnr(a, b)
    assert ssim(a[..., None], b[..., None]) == pytest.approx(ssim(a, b), abs=1e-12)
    assert psnr(a[..., None], b[..., None], y_channel=True) == psnr(a, b)


@pytest.mark.parametrize("pair", [GRAY, RGB], ids=["gray", "rgb"])
def test_float_input_gives_same_values(pair):
    a, b = pair
    fa, fb = a / 255.0, b / 255.0
    assert psnr(fa, fb) == pytest.approx(psnr(a, b), abs=1e-10)
    assert ssim(fa, fb) == pytest.approx(ssim(a, b), abs=1e-10)
    fa32, fb32 = fa.astype(np.float32), fb.astype(np.float32)
    assert psnr(fa32, fb32, y_channel=True) == pytest.approx(psnr(a, b, y_channel=True), abs=1e-4)


def test_rgb_to_y_known_colours():
    colours = {
        (0, 0, 0): 16.0,
        (255, 255, 255): 235.0,
        (255, 0, 0): 16 + 65.481,
        (0, 255, 0): 16 + 128.553,
        (0, 0, 255): 16 + 24.966,
    }
    img = np.array([list(colours)], dtype=np.uint8)  # 1 x 5 x 3
    y = rgb_to_y(img)
    assert y.shape == (1, 5) and y.dtype == np.float64
    np.testing.assert_allclose(y[0], list(colours.values()), atol=1e-10)
    np.testing.assert_allclose(rgb_to_y(img / 255.0), y, atol=1e-10)


def test_psnr_y_channel_matches_direct_formula():
    a, b = RGB
    ya, yb = (
        16 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0
        for x in (a.astype(np.float64), b.astype(np.float64))
    )
    expected = 10 * np.log10(255.0**2 / np.mean((ya - yb) ** 2))
    assert psnr(a, b, y_channel=True) == pytest.approx(expected, abs=1e-10)
    expected_ssim = structural_similarity(ya, yb, **SK_SSIM)
    assert ssim(a, b, y_channel=True) == pytest.approx(expected_ssim, abs=1e-6)


@pytest.mark.parametrize("pair", [GRAY, RGB], ids=["gray", "rgb"])
def test_crop_border_equals_cropped_arrays(pair):
    a, b = pair
    c = 4
    ca, cb = a[c:-c, c:-c], b[c:-c, c:-c]
    assert psnr(a, b, crop_border=c) == psnr(ca, cb)
    assert ssim(a, b, crop_border=c) == ssim(ca, cb)
    assert psnr(a, b, crop_border=c) != psnr(a, b)


@pytest.mark.parametrize("pair", [GRAY, RGB], ids=["gray", "rgb"])
def test_identical_images(pair):
    a, _ = pair
    assert psnr(a, a.copy()) == float("inf")
    assert ssim(a, a.copy()) == pytest.approx(1.0, abs=1e-12)


def test_errors():
    a, b = RGB
    with pytest.raises(ValueError, match=r"\(96, 80, 3\) vs \(96, 80\)"):
        psnr(a, b[..., 0])
    with pytest.raises(ValueError, match="dtype"):
        ssim(a, b / 255.0)
    with pytest.raises(ValueError, match="dtype"):
        psnr(a.astype(np.int64), b.astype(np.int64))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        psnr(a.astype(np.float64), b.astype(np.float64))
    with pytest.raises(ValueError, match=r"11x11.*10x12"):
        ssim(a[:10, :12], b[:10, :12])
    with pytest.raises(ValueError, match=r"11x11.*26x10"):
        ssim(a, b, crop_border=35)
    with pytest.raises(ValueError, match="crop_border=40 is larger than the image"):
        psnr(a, b, crop_border=40)
    with pytest.raises(ValueError, match="crop_border"):
        psnr(a, b, crop_border=-1)
    with pytest.raises(ValueError, match="H x W x 3"):
        rgb_to_y(a[..., :1])
