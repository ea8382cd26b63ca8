"""The one interface every training method implements.

A method turns a batch of patches into the network's input and a loss. The engine calls
``make_batch`` then ``loss`` and never needs to know which method it trains.

Conventions: tensors are float32, N x C x H x W, values in [0, 1] for clean data (noisy values may
fall outside). A loader sample holds ``image`` (the patches the data set yields) and, for paired
data sets, the aligned ``partner`` patches (Noise2Noise on two noisy folders). ``rng`` holds
one random stream per sample (see :mod:`restorekit.randomness`): draw every random number
through it, so results do not depend on how batches are split over devices.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

from restorekit.degrade.noise import NoiseModel
from restorekit.errors import ConfigError
from restorekit.randomness import SampleRandom

NetworkCall = Callable[[torch.Tensor], torch.Tensor]
"""The network as a method calls it: batch in, batch out. The engine passes a callable that
puts every input in the network's memory layout (see :mod:`restorekit.layout`), so a method
may build inputs by any indexing."""


@dataclass
class Batch:
    """What one training step works on."""

    input: torch.Tensor
    target: torch.Tensor | None = None
    clean: torch.Tensor | None = None  # for monitoring only; never used by a self-supervised loss


@dataclass(frozen=True)
class Progress:
    """Where training stands; ``epoch`` counts from 1 as in the papers' code."""

    epoch: int
    epochs: int
    step: int


@dataclass
class LossOutput:
    """The loss to back-propagate and its named parts for the log: detached tensors (or plain
    numbers), read as floats with :meth:`numbers` only when a log line needs them (on a GPU each
    read waits for the device)."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor | float] = field(default_factory=dict)

    def numbers(self) -> dict[str, float]:
        return {key: float(value) for key, value in self.parts.items()}


class TrainingMethod(ABC):
    """How a batch is built and what the loss is."""

    name: str
    needs_noise: bool = False  # True when the method cannot run on real noisy data alone
    task: Literal["denoise", "upscale"] = "denoise"
    """What the trained network does: "denoise" (same size out) or "upscale" (larger out)."""

    def check(self, noise: NoiseModel | None, paired: bool) -> None:
        """Raise :class:`ConfigError` when the data set-up does not fit the method."""
        if self.needs_noise and noise is None:
            raise ConfigError(
                f"method {self.name!r} needs a noise model: set 'noise' in the config"
            )

    @abstractmethod
    def make_batch(
        self, sample: dict[str, torch.Tensor], noise: NoiseModel | None, rng: SampleRandom
    ) -> Batch:
        """``sample``: the loader's tensors on the training device: ``image`` (always),
        ``partner`` (paired data sets) or ``target`` (super-resolution), and ``seed``."""

    @abstractmethod
    def loss(
        self, net: NetworkCall, batch: Batch, progress: Progress, rng: SampleRandom
    ) -> LossOutput: ...


def regression_loss(kind: str, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared (``l2``) or absolute (``l1``) error over all elements."""
    if kind == "l2":
        return torch.mean((prediction - target) ** 2)
    if kind == "l1":
        return torch.mean(torch.abs(prediction - target))
    raise ConfigError(f"unknown loss {kind!r}; use 'l2' or 'l1'")
