"""Training data: images decoded once into memory, random patches, a resumable sampler.

The names below are imported on first use, so that the torch-free module
:mod:`restorekit.data.normalization` can be imported without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from restorekit.lazy import lazy_getattr

if TYPE_CHECKING:
    from restorekit.data.folders import load_images, match_channels
    from restorekit.data.normalization import Normalization
    from restorekit.data.patches import EpochSampler, PatchDataset
    from restorekit.data.sr import (
        SRImages,
        SRPatchDataset,
        load_sr_images,
        make_lr,
        mod_crop,
        sr_images_from_hr,
    )
    from restorekit.data.stacks import (
        StackPatchDataset,
        compute_normalization,
        load_stacks,
        split_slices,
    )

_HOMES = {
    "EpochSampler": "restorekit.data.patches",
    "Normalization": "restorekit.data.normalization",
    "PatchDataset": "restorekit.data.patches",
    "SRImages": "restorekit.data.sr",
    "SRPatchDataset": "restorekit.data.sr",
    "StackPatchDataset": "restorekit.data.stacks",
    "compute_normalization": "restorekit.data.stacks",
    "load_images": "restorekit.data.folders",
    "load_sr_images": "restorekit.data.sr",
    "load_stacks": "restorekit.data.stacks",
    "make_lr": "restorekit.data.sr",
    "match_channels": "restorekit.data.folders",
    "mod_crop": "restorekit.data.sr",
    "split_slices": "restorekit.data.stacks",
    "sr_images_from_hr": "restorekit.data.sr",
}

__getattr__ = lazy_getattr(__name__, _HOMES)

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
    "sr_images_from_hr",
]
