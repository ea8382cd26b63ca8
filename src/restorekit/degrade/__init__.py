"""What corrupts an image: noise models and MATLAB-compatible bicubic resizing."""

from restorekit.degrade.noise import NOISE_PRESETS, NoiseModel, parse_noise
from restorekit.degrade.resize import imresize

__all__ = ["NOISE_PRESETS", "NoiseModel", "imresize", "parse_noise"]
