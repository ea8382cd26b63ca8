"""Noise2Noise: the target is a second, independently noisy observation of the same scene.

Either two folders of noisy images matched by file name (``partners``), or two independent
noise draws on clean images.
"""

from __future__ import annotations

from dataclasses import dataclass

from restorekit.degrade.noise import NoiseModel
from restorekit.errors import ConfigError
from restorekit.methods.base import (
    Batch,
    LossOutput,
    NetworkCall,
    Progress,
    TrainingMethod,
    regression_loss,
)


@dataclass
class Noise2Noise(TrainingMethod):
    criterion: str = "l2"
    name = "n2n"

    def check(self, noise: NoiseModel | None, paired: bool) -> None:
        if paired and noise is not None:
            raise ConfigError(
                "n2n with a paired folder (data.pairs) trains on the noisy pairs as they are: "
                "set 'noise' to null, or drop data.pairs to simulate both noise draws"
            )
        if not paired and noise is None:
            raise ConfigError(
                "n2n needs either data.pairs (a second folder of noisy images matched by name) "
                "or a 'noise' model to draw two noisy copies of clean images"
            )

    def make_batch(self, sample, noise: NoiseModel | None, rng) -> Batch:
        if "partner" in sample:
            return Batch(input=sample["image"], target=sample["partner"])
        assert noise is not None
        clean = sample["image"]
        return Batch(input=noise(clean, rng), target=noise(clean, rng), clean=clean)

    def loss(self, net: NetworkCall, batch: Batch, progress: Progress, rng) -> LossOutput:
        assert batch.target is not None
        value = regression_loss(self.criterion, net(batch.input), batch.target)
        return LossOutput(value, {"loss": value.detach()})
