"""Noise2Clean: supervised training on clean images with simulated noise (the reference)."""

from __future__ import annotations

from dataclasses import dataclass

from restorekit.degrade.noise import NoiseModel
from restorekit.methods.base import (
    Batch,
    LossOutput,
    NetworkCall,
    Progress,
    TrainingMethod,
    regression_loss,
)


@dataclass
class Noise2Clean(TrainingMethod):
    criterion: str = "l2"
    name = "n2c"
    needs_noise = True

    def make_batch(self, sample, noise: NoiseModel | None, rng) -> Batch:
        assert noise is not None
        clean = sample["image"]
        return Batch(input=noise(clean, rng), target=clean, clean=clean)

    def loss(self, net: NetworkCall, batch: Batch, progress: Progress, rng) -> LossOutput:
        assert batch.target is not None
        value = regression_loss(self.criterion, net(batch.input), batch.target)
        return LossOutput(value, {"loss": value.detach()})
