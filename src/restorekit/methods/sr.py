"""Super-resolution: supervised regression of the HR patch from its bicubic LR patch.

The loader's sample holds ``image`` (the LR patch, or for RED-Net the LR patch upscaled back to
the HR size) and ``target`` (the HR patch); see :mod:`restorekit.data.sr`. No noise is
simulated: the degradation is the bicubic downscaling made when the data are loaded. EDSR trains
with the L1 loss (the paper's choice); ``l2`` is the option.
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
class SuperResolution(TrainingMethod):
    criterion: str = "l1"
    name = "sr"
    task = "upscale"

    def check(self, noise: NoiseModel | None, paired: bool) -> None:
        if noise is not None:
            raise ConfigError(
                "method 'sr' simulates no noise (the LR images are bicubic downscalings): "
                "set noise: null"
            )
        if paired:
            raise ConfigError("method 'sr' makes its own LR/HR pairs: remove data.pairs")

    def make_batch(self, sample, noise: NoiseModel | None, rng) -> Batch:
        target = sample["target"]
        return Batch(input=sample["image"], target=target, clean=target)

    def loss(self, net: NetworkCall, batch: Batch, progress: Progress, rng) -> LossOutput:
        assert batch.target is not None
        value = regression_loss(self.criterion, net(batch.input), batch.target)
        return LossOutput(value, {"loss": value.detach()})
