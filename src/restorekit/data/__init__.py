"""Training data: images decoded once into memory, random patches, a resumable sampler."""

from restorekit.data.folders import load_images, match_channels
from restorekit.data.patches import EpochSampler, PatchDataset
from restorekit.data.sr import SRImages, SRPatchDataset, load_sr_images, make_lr, mod_crop

__all__ = [
    "EpochSampler",
    "PatchDataset",
    "SRImages",
    "SRPatchDataset",
    "load_images",
    "load_sr_images",
    "make_lr",
    "match_channels",
    "mod_crop",
]
