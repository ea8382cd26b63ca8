"""What corrupts an image: noise models (and, later, resampling)."""

from restorekit.degrade.noise import NOISE_PRESETS, NoiseModel, parse_noise

__all__ = ["NOISE_PRESETS", "NoiseModel", "parse_noise"]
