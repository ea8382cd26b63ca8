"""Per-sample random streams.

Every random draw of a training step (noise, sub-sampling masks, blind-spot masks) is made
through a :class:`SampleRandom`: sample ``i`` of a batch draws only from its own generator,
seeded by that sample's key. So a sample's noise and masks do not depend on the batch it lands
in, on how a global batch is split over processes or accumulation steps, or on a resume.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (NumPy's SeedSequence hashing)."""
    state = np.random.SeedSequence(list(parts)).generate_state(2, np.uint64)[0]
    return int(state >> np.uint64(1))


class SampleRandom:
    """One torch generator per sample; every draw returns a tensor with a leading batch axis."""

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
