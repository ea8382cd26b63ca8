"""Training data: images decoded once into memory, random patches, a resumable sampler."""

from restorekit.data.folders import load_images, match_channels
from restorekit.data.patches import EpochSampler, PatchDataset

__all__ = ["EpochSampler", "PatchDataset", "load_images", "match_channels"]
