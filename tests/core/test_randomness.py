"""Per-sample random streams: both implementations (per-sample generators; the counter-based
hash used on GPUs, run here on the CPU)."""

from __future__ import annotations

import pytest
import torch

from restorekit.degrade.noise import parse_noise
from restorekit.methods.n2v_masking import stratified_coordinates
from restorekit.randomness import CounterRandom, SampleRandom, hash32

KINDS = [SampleRandom, CounterRandom]


def test_hash32_is_a_bijection_on_a_sample_and_matches_the_reference():
    x = torch.arange(0, 1 << 20, dtype=torch.int64)
    assert torch.unique(hash32(x)).numel() == x.numel()

    # lowbias32 computed with Python integers (mod 2**32) for a few values
    def reference(v: int) -> int:
        v ^= v >> 16
        v = (v * 0x7FEB352D) & 0xFFFFFFFF
        v ^= v >> 15
        v = (v * 0x846CA68B) & 0xFFFFFFFF
        return v ^ (v >> 16)

    values = [0, 1, 2, 12345, 0xDEADBEEF, 0xFFFFFFFF]
    assert hash32(torch.tensor(values)).tolist() == [reference(v) for v in values]


@pytest.mark.parametrize("kind", KINDS)
def test_a_sample_s_draws_do_not_depend_on_its_batch(kind):
    seeds = [11, 22, 33, 44]
    together = kind(seeds)
    alone = kind(seeds[2:3])
    for draw in ("rand", "randn"):
        assert torch.equal(getattr(together, draw)(3, 5)[2], getattr(alone, draw)(3, 5)[0])
    assert torch.equal(together.randint(2**62, 7)[2], alone.randint(2**62, 7)[0])
    assert not torch.equal(kind(seeds).rand(4)[0], kind(seeds).rand(4)[1])


@pytest.mark.parametrize("kind", KINDS)
def test_draws_have_the_right_distributions(kind):
    rng = kind.from_seed(0, 8)
    uniform = rng.rand(64, 64)
    normal = rng.randn(64, 64)
    integers = rng.randint(10, 64, 64)
    assert uniform.shape == normal.shape == integers.shape == (8, 64, 64)
    assert uniform.min() >= 0 and uniform.max() < 1 and abs(uniform.mean() - 0.5) < 0.01
    assert abs(uniform.var() - 1 / 12) < 0.002
    assert abs(normal.mean()) < 0.02 and abs(normal.std() - 1) < 0.02
    assert abs((normal.abs() > 1.96).float().mean() - 0.05) < 0.005  # the tails too
    counts = torch.bincount(integers.flatten(), minlength=10).float() / integers.numel()
    assert integers.min() == 0 and integers.max() == 9 and (counts - 0.1).abs().max() < 0.01
    # successive draws are fresh, and uncorrelated
    second = rng.rand(64, 64)
    assert abs(torch.corrcoef(torch.stack([uniform.flatten(), second.flatten()]))[0, 1]) < 0.02


def test_the_counter_streams_serve_noise_masks_and_poisson():
    rng = CounterRandom.from_seed(3, 4)
    clean = torch.full((4, 3, 32, 32), 0.5)
    noisy = parse_noise("gauss25")(clean, rng)
    assert abs(float((noisy - clean).std()) - 25 / 255) < 0.003
    poisson = parse_noise("poisson30")(clean, rng)
    assert abs(float(poisson.mean()) - 0.5) < 0.01
    coordinates = stratified_coordinates(rng, (64, 64), 8, 1)
    assert coordinates.shape == (4, 1, 64, 2) and coordinates.min() >= 0 and coordinates.max() < 64


def test_the_device_picks_the_implementation():
    assert type(SampleRandom.for_device([1, 2], "cpu")) is SampleRandom
    if torch.cuda.is_available():
        assert type(SampleRandom.for_device([1, 2], "cuda")) is CounterRandom
