"""Training data: images decoded once into memory, random patches, a resumable sampler, and
the data kinds (:mod:`restorekit.data.kinds`) that build them from a run's config."""

from __future__ import annotations

from restorekit.data.folders import load_images
from restorekit.data.patches import EpochSampler, PatchDataset
from restorekit.data.sr import SRImages, SRPatchDataset, load_sr_images, sr_images_from_hr
from restorekit.data.stacks import (
    StackPatchDataset,
    compute_normalization,
    load_stacks,
    split_slices,
)

__all__ = [
    "EpochSampler",
    "PatchDataset",
    "SRImages",
    "SRPatchDataset",
    "StackPatchDataset",
    "compute_normalization",
    "load_images",
    "load_sr_images",
    "load_stacks",
    "split_slices",
    "sr_images_from_hr",
]
