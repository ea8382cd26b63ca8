"""Noise2Void: self-supervised denoising with blind spots (Krull et al. 2019), N2V2, structN2V.

A few pixels of each noisy patch are replaced (see :mod:`.n2v_masking`); the network sees the
manipulated patch and is trained to predict the original noisy values at those pixels only, so it
cannot learn the identity and, for pixel-wise independent zero-mean noise, learns the clean
signal. The loss is the mean squared (``l2``) or absolute (``l1``) error over the masked pixels of
the batch (all channels of a masked position with channel-shared masks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from restorekit.degrade.noise import NoiseModel
from restorekit.errors import ConfigError
from restorekit.methods.base import Batch, LossOutput, NetworkCall, Progress, TrainingMethod
from restorekit.methods.n2v_masking import BlindSpotMasker, ChannelMode, Manipulator
from restorekit.randomness import SampleRandom


@dataclass
class MaskedBatch(Batch):
    """A batch with the blind spots: ``input`` is manipulated, ``target`` the noisy patch."""

    mask: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.bool))


def masked_loss(
    kind: str, prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean squared (``l2``) or absolute (``l1``) error over the elements where ``mask`` is True."""
    if kind not in ("l2", "l1"):
        raise ConfigError(f"unknown loss {kind!r}; use 'l2' or 'l1'")
    diff = (prediction - target)[mask]
    return torch.mean(diff**2) if kind == "l2" else torch.mean(diff.abs())


@dataclass
class Noise2Void(TrainingMethod):
    masked_fraction: float = 0.00198
    manipulator: Manipulator = "uniform_withCP"
    radius: int = 2
    struct_mask: list | None = None
    channels: ChannelMode = "shared"
    criterion: str = "l2"
    name = "n2v"

    def __post_init__(self) -> None:
        self.masker = BlindSpotMasker(
            self.masked_fraction, self.manipulator, self.radius, self.struct_mask, self.channels
        )

    def make_batch(self, sample, noise: NoiseModel | None, rng: SampleRandom) -> MaskedBatch:
        if noise is None:  # the data are already noisy
            noisy, clean = sample["image"], None
        else:
            noisy, clean = noise(sample["image"], rng), sample["image"]
        manipulated, mask = self.masker(noisy, rng)
        return MaskedBatch(input=manipulated, target=noisy, clean=clean, mask=mask)

    def loss(
        self, net: NetworkCall, batch: Batch, progress: Progress, rng: SampleRandom
    ) -> LossOutput:
        assert isinstance(batch, MaskedBatch) and batch.target is not None
        prediction = net(batch.input)
        value = masked_loss(self.criterion, prediction.float(), batch.target.float(), batch.mask)
        return LossOutput(value, {"loss": value.detach()})
