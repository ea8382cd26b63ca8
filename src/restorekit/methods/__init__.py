"""Training methods: each builds its batch and computes its loss; see :mod:`.base`."""

from __future__ import annotations

from restorekit.methods.base import Batch, LossOutput, Progress, TrainingMethod
from restorekit.methods.n2c import Noise2Clean
from restorekit.methods.n2n import Noise2Noise
from restorekit.methods.n2v import Noise2Void
from restorekit.methods.ne2ne import Neighbor2Neighbor
from restorekit.methods.sr import SuperResolution

METHODS: dict[str, type[TrainingMethod]] = {
    "n2c": Noise2Clean,
    "n2n": Noise2Noise,
    "n2v": Noise2Void,
    "ne2ne": Neighbor2Neighbor,
    "sr": SuperResolution,
}

__all__ = [
    "METHODS",
    "Batch",
    "build_method",
    "LossOutput",
    "Neighbor2Neighbor",
    "Noise2Clean",
    "Noise2Noise",
    "Noise2Void",
    "Progress",
    "SuperResolution",
    "TrainingMethod",
]


def build_method(config: object) -> TrainingMethod:
    """The method named by a method config section (see :mod:`restorekit.configs.schema`)."""
    fields = config.model_dump()  # type: ignore[attr-defined]
    return METHODS[fields.pop("name")](**fields)
