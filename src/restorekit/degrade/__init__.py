"""What corrupts an image: noise models, MATLAB-compatible bicubic resizing and the
super-resolution downscaling built on it. Torch-free (the noise models take torch tensors on
the training path without importing torch here)."""

from __future__ import annotations

from restorekit.degrade.downscale import make_lr, mod_crop
from restorekit.degrade.noise import NOISE_PRESETS, NoiseModel, parse_noise
from restorekit.degrade.resize import imresize

__all__ = ["NOISE_PRESETS", "NoiseModel", "imresize", "make_lr", "mod_crop", "parse_noise"]
