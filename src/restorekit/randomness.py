"""Per-sample random streams.

Every random draw of a training step (noise, sub-sampling masks, blind-spot masks) is made
through a :class:`SampleRandom`: sample ``i`` of a batch draws only from its own stream, seeded
by that sample's key. So a sample's noise and masks do not depend on the batch it lands in, on
how a global batch is split over processes or accumulation steps, or on a resume.

Two implementations, chosen by :meth:`SampleRandom.for_device`: on the CPU one torch generator
per sample (a short Python loop per draw, cheap there); on a GPU :class:`CounterRandom`, a
counter-based hash of (sample key, draw number, element index) computed for the whole batch in
a few tensor operations: no per-sample loop, no generator objects, no host synchronisation.
Their streams differ (a run is reproducible on its own kind of device).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from restorekit.devices import to_device


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (NumPy's SeedSequence hashing)."""
    state = np.random.SeedSequence(list(parts)).generate_state(2, np.uint64)[0]
    return int(state >> np.uint64(1))


class SampleRandom:
    """One torch generator per sample; every draw returns a tensor with a leading batch axis."""

    @staticmethod
    def for_device(seeds: Sequence[int] | torch.Tensor, device: torch.device | str) -> SampleRandom:
        """The streams for a batch on ``device``: :class:`CounterRandom` on a GPU, else one
        generator per sample."""
        if torch.device(device).type == "cuda":
            return CounterRandom(seeds, device)
        return SampleRandom(seeds, device)

    def __init__(self, seeds: Sequence[int] | torch.Tensor, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.generators = [
            torch.Generator(self.device).manual_seed(int(s)) for s in torch.as_tensor(seeds)
        ]

    @classmethod
    def from_seed(cls, seed: int, n: int, device: torch.device | str = "cpu") -> SampleRandom:
        """``n`` streams derived from one seed (for tests and one-off use)."""
        return cls([derive_seed(seed, i) for i in range(n)], device)

    def __len__(self) -> int:
        return len(self.generators)

    def _each(self, draw: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
        return torch.stack([draw(g) for g in self.generators])

    def rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0, 1), shape (N, *shape)."""
        return self._each(lambda g: torch.rand(shape, generator=g, device=self.device))

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normal, shape (N, *shape)."""
        return self._each(lambda g: torch.randn(shape, generator=g, device=self.device))

    def randint(self, high: int, *shape: int) -> torch.Tensor:
        """Integers in [0, high), shape (N, *shape)."""
        return self._each(lambda g: torch.randint(high, shape, generator=g, device=self.device))

    def poisson(self, rates: torch.Tensor) -> torch.Tensor:
        """Poisson draws with the given rates, shape (N, ...) like ``rates``."""
        return torch.stack(
            [torch.poisson(r, generator=g) for r, g in zip(rates, self.generators, strict=True)]
        )


_MASK32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, constant: int) -> torch.Tensor:
    """``x * constant`` modulo 2**32 for int64 tensors holding uint32 values, without int64
    overflow (the constant is split into 16-bit halves)."""
    low, high = constant & 0xFFFF, constant >> 16
    return (x * low + (((x * high) & 0xFFFF) << 16)) & _MASK32


def hash32(x: torch.Tensor) -> torch.Tensor:
    """Chris Wellons' "lowbias32" integer hash, a bijection of uint32 (int64 tensors hold the
    values; every intermediate stays below 2**63)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


class CounterRandom(SampleRandom):
    """Per-sample streams as a counter-based hash, vectorised over the batch (for GPUs).

    Element ``j`` of draw ``d`` of sample ``i`` is ``hash32(hash32(j ^ stream(i, d)) ^ key_i)``
    with ``key_i`` mixed from the sample's 63-bit seed and ``stream(i, d) = hash32(key_i ^
    hash32(d))``: a pure function of the sample's seed, the draw's number and the element's
    position, so batches, splits and resumes do not change it. Uniforms have 24 random bits,
    normals come from Box-Muller, integers from two 31-bit words (below 2**62, then modulo).
    Poisson draws fall back to one generator per sample, seeded from the streams.
    """

    def __init__(self, seeds: Sequence[int] | torch.Tensor, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        seeds = to_device(torch.as_tensor(seeds, dtype=torch.int64), self.device)
        low, high = seeds & _MASK32, (seeds >> 32) & _MASK32
        self.keys = hash32(hash32(low) ^ high)
        self.draws = 0

    def __len__(self) -> int:
        return len(self.keys)

    def _bits(self, shape: Sequence[int]) -> torch.Tensor:
        """N x *shape uint32 values (int64) of the next draw."""
        draw = int(hash32(torch.tensor(self.draws & _MASK32)))  # on the host: no device copy
        self.draws += 1
        streams = hash32(self.keys ^ draw)
        count = 1
        for size in shape:
            count *= size
        index = torch.arange(count, device=self.device).view(1, *shape)
        view = (-1,) + (1,) * len(shape)
        return hash32(hash32(index ^ streams.view(view)) ^ self.keys.view(view))

    def rand(self, *shape: int) -> torch.Tensor:
        return (self._bits(shape) >> 8).float() * 2.0**-24

    def randn(self, *shape: int) -> torch.Tensor:
        radius = (((self._bits(shape) >> 8) + 1).float() * 2.0**-24).log().mul(-2).sqrt()
        angle = (self._bits(shape) >> 8).float() * (2 * torch.pi * 2.0**-24)
        return radius * angle.cos()

    def randint(self, high: int, *shape: int) -> torch.Tensor:
        words = (self._bits(shape) >> 1) << 31 | (self._bits(shape) >> 1)
        return words % high

    def poisson(self, rates: torch.Tensor) -> torch.Tensor:
        seeds = self.randint(2**62, 1)[:, 0].tolist()  # one host read, Poisson noise only
        return SampleRandom(seeds, self.device).poisson(rates)
