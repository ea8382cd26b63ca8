import numpy as np
import pytest
import torch

from restorekit.degrade import NOISE_PRESETS, parse_noise
from restorekit.errors import NoiseSpecError
from restorekit.randomness import SampleRandom


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("gauss25", "gauss:25"),
        ("gauss5_50", "gauss:5-50"),
        ("poisson30", "poisson:30"),
        ("poisson5_50", "poisson:5-50"),
        ("gauss:12.5", "gauss:12.5"),
        ("poisson:5-50", "poisson:5-50"),
    ],
)
def test_presets_and_specs_parse_to_canonical_form(spec, canonical):
    assert parse_noise(spec).spec == canonical


@pytest.mark.parametrize(
    "bad", ["gauss", "gauss:", "gauss:a", "salt:3", "gauss:50-5", "poisson:0", ""]
)
def test_bad_spec_error_lists_valid_forms(bad):
    with pytest.raises(NoiseSpecError) as info:
        parse_noise(bad)
    message = str(info.value)
    assert repr(bad) in message or "range" in message or "positive" in message
    if "cannot parse" in message:
        assert all(name in message for name in NOISE_PRESETS)
        assert "gauss:LOW-HIGH" in message


def test_gaussian_noise_has_the_requested_sigma_and_is_seeded():
    clean = torch.full((2, 3, 128, 128), 0.5)
    model = parse_noise("gauss25")
    a = model(clean, SampleRandom.from_seed(1, 2))
    b = model(clean, SampleRandom.from_seed(1, 2))
    assert torch.equal(a, b)
    assert abs(float((a - clean).std()) * 255 - 25) < 0.5
    assert abs(float((a - clean).mean())) < 2e-3


def test_gaussian_range_draws_one_sigma_per_image_within_range():
    clean = torch.full((64, 1, 32, 32), 0.5)
    noisy = parse_noise("gauss5_50")(clean, SampleRandom.from_seed(0, 64))
    sigmas = (noisy - clean).flatten(1).std(dim=1) * 255
    assert sigmas.min() > 4 and sigmas.max() < 52
    assert sigmas.max() - sigmas.min() > 20  # levels really vary between images


def test_poisson_noise_is_unbiased_with_variance_x_over_lambda():
    clean = torch.full((4, 1, 128, 128), 0.4)
    noisy = parse_noise("poisson30")(clean, SampleRandom.from_seed(0, 4))
    assert abs(float(noisy.mean()) - 0.4) < 5e-3
    assert abs(float(noisy.var()) - 0.4 / 30) < 1e-3


def test_numpy_sampler_is_reproducible_and_matches_sigma():
    clean = np.full((3, 64, 64), 0.5)
    model = parse_noise("gauss:25")
    a = model.sample_numpy(clean, np.random.default_rng(3))
    b = model.sample_numpy(clean, np.random.default_rng(3))
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert abs(float((a - 0.5).std()) * 255 - 25) < 1.0
