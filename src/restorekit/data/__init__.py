"""Training data: images decoded once into memory, random patches, a resumable sampler."""

from restorekit.data.folders import load_images, match_channels
from restorekit.data.patches import EpochSampler, PatchDataset
from restorekit.data.sr import SRImages, SRPatchDataset, load_sr_images, make_lr, mod_crop
from restorekit.data.stacks import (
    Normalization,
    StackPatchDataset,
    compute_normalization,
    load_stacks,
    split_slices,
)

__all__ = [
    "EpochSampler",
    "Normalization",
    "PatchDataset",
    "SRImages",
    "SRPatchDataset",
    "StackPatchDataset",
    "compute_normalization",
    "load_images",
    "load_sr_images",
    "load_stacks",
    "make_lr",
    "match_channels",
    "mod_crop",
    "split_slices",
]
