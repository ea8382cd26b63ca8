"""What corrupts an image: noise models and MATLAB-compatible bicubic resizing.

The names below are imported on first use, so that the torch-free module
:mod:`restorekit.degrade.resize` can be imported without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from restorekit.lazy import lazy_getattr

if TYPE_CHECKING:
    from restorekit.degrade.noise import NOISE_PRESETS, NoiseModel, parse_noise
    from restorekit.degrade.resize import imresize

_HOMES = {
    "NOISE_PRESETS": "restorekit.degrade.noise",
    "NoiseModel": "restorekit.degrade.noise",
    "imresize": "restorekit.degrade.resize",
    "parse_noise": "restorekit.degrade.noise",
}

__getattr__ = lazy_getattr(__name__, _HOMES)

__all__ = ["NOISE_PRESETS", "NoiseModel", "imresize", "parse_noise"]
