import math

import numpy as np
import pytest

from restorekit.degrade import imresize


def _smooth(height: int, width: int, channels: int | None = None) -> np.ndarray:
    """A smooth float64 image in [0, 1]: low-frequency sines."""
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    img = 0.5 + 0.25 * np.sin(2 * np.pi * x) * np.cos(np.pi * y)
    if channels is None:
        return img
    return np.stack([img ** (1 + c) for c in range(channels)], axis=-1)


def test_matches_matlabs_published_output_for_a_6x6_ramp():
    img = np.arange(36, dtype=np.float64).reshape(6, 6) / 35
    matlab = [
        [0.089844, 0.148438, 0.207031],
        [0.441406, 0.5, 0.558594],
        [0.792969, 0.851563, 0.910156],
    ]
    out = imresize(img, 0.5)
    np.testing.assert_almost_equal(out, matlab, decimal=6)
    # The exact values are multiples of 1/256 (MATLAB prints them rounded half up).
    exact = np.array([[23, 38, 53], [113, 128, 143], [203, 218, 233]]) / 256
    np.testing.assert_allclose(out, exact, rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [0.5, 1 / 3, 0.25, 2, 3, 4, 1.5])
def test_constant_images_stay_constant(scale):
    img = np.full((13, 10, 3), 0.37)
    out = imresize(img, scale)
    np.testing.assert_allclose(out, 0.37, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("height", "width", "scale"),
    [(12, 12, 2), (12, 12, 3), (12, 12, 4), (7, 9, 2), (7, 9, 3), (5, 11, 4),
     (12, 18, 1 / 2), (12, 18, 1 / 3), (12, 16, 1 / 4), (7, 9, 1 / 2), (13, 11, 1 / 4),
     (10, 10, 1 / 3)],
)  # fmt: skip
def test_output_size_is_ceil_of_input_times_scale(height, width, scale):
    out = imresize(np.zeros((height, width)), scale)
    assert out.shape == (math.ceil(height * scale), math.ceil(width * scale))


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_upscaling_then_downscaling_by_the_same_factor_recovers_smooth_images(factor):
    img = _smooth(24, 30)
    back = imresize(imresize(img, factor), 1 / factor)
    assert back.shape == img.shape
    assert np.abs(back - img)[3:-3, 3:-3].max() < 1e-4
    assert np.abs(back - img).max() < 5e-3  # borders: mirroring, a little less exact


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_linear_ramps_stay_linear_away_from_borders_when_upscaling(factor):
    width = 16
    img = np.tile(0.1 + 0.05 * np.arange(width), (8, 1))  # left to right ramp
    out = imresize(img, factor)
    # Output column x (0-based) samples input column (x + 0.5) / factor - 0.5.
    position = (np.arange(width * factor) + 0.5) / factor - 0.5
    expected = 0.1 + 0.05 * position
    inner = (position > 2) & (position < width - 3)
    np.testing.assert_allclose(out[:, inner], np.tile(expected[inner], (8 * factor, 1)), atol=1e-12)
    assert not np.allclose(out[:, 0], expected[0])  # mirrored border bends the ramp


def test_a_colour_image_equals_per_channel_resizing():
    img = _smooth(11, 14, channels=3)
    for scale in (0.5, 3):
        out = imresize(img, scale)
        for c in range(3):
            np.testing.assert_array_equal(out[..., c], imresize(img[..., c], scale))


def test_output_shape_matches_scale_when_the_ratio_is_the_same():
    img = _smooth(12, 18, channels=3)
    np.testing.assert_allclose(
        imresize(img, output_shape=(6, 9)), imresize(img, 0.5), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        imresize(img, output_shape=(36, 54)), imresize(img, 3), rtol=0, atol=1e-12
    )


def test_a_scale_uses_that_scale_but_output_shape_uses_out_over_in():
    img = _smooth(7, 7)
    by_scale = imresize(img, 0.5)  # 4 x 4, kernel for scale 0.5
    by_shape = imresize(img, output_shape=(4, 4))  # 4 x 4, kernel for scale 4 / 7
    assert by_scale.shape == by_shape.shape == (4, 4)
    assert not np.allclose(by_scale, by_shape)


def test_output_shape_can_change_the_aspect_ratio():
    img = _smooth(12, 10)
    out = imresize(img, output_shape=(6, 20))
    assert out.shape == (6, 20)
    np.testing.assert_allclose(out, imresize(img.T, output_shape=(20, 6)).T, atol=1e-12)


def test_keeps_the_float_dtype_and_never_clips():
    step = np.zeros((8, 8), dtype=np.float32)
    step[:, 4:] = 1.0
    out = imresize(step, 2)
    assert out.dtype == np.float32
    assert out.min() < 0 and out.max() > 1  # bicubic overshoot is kept, as in MATLAB on floats


@pytest.mark.parametrize("scale", [0, -2, float("nan"), float("inf"), "2", True])
def test_bad_scale_is_a_clear_value_error(scale):
    with pytest.raises(ValueError, match="scale"):
        imresize(np.zeros((4, 4)), scale)


@pytest.mark.parametrize("shape", [(0, 3), (3,), (2.5, 3), (4, 4, 4)])
def test_bad_output_shape_is_a_clear_value_error(shape):
    with pytest.raises(ValueError, match="output_shape"):
        imresize(np.zeros((4, 4)), output_shape=shape)


def test_scale_and_output_shape_are_exclusive():
    with pytest.raises(ValueError, match="exactly one"):
        imresize(np.zeros((4, 4)), 2, output_shape=(8, 8))
    with pytest.raises(ValueError, match="exactly one"):
        imresize(np.zeros((4, 4)))


@pytest.mark.parametrize(
    ("img", "match"),
    [
        (np.zeros((0, 5)), "empty"),
        (np.zeros((4, 0, 3)), "empty"),
        (np.zeros(5), "H x W"),
        (np.zeros((1, 4, 4, 3)), "H x W"),
        (np.zeros((4, 4), dtype=np.uint8), "uint8"),
    ],
)
def test_bad_images_are_clear_value_errors(img, match):
    with pytest.raises(ValueError, match=match):
        imresize(img, 2)
