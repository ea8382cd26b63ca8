"""Super-resolution data: HR images whose LR images are made by MATLAB-exact bicubic (or
DIV2K's HR/ + LR_bicubic/X<scale>/ folders), aligned LR/HR patches (see
:mod:`restorekit.data.sr`). Validation: Y-channel PSNR/SSIM on HR images at each scale, as the
benchmarks measure it."""

from __future__ import annotations

from typing import Any

import numpy as np

from restorekit.configs.schema import Config, SRDataConfig
from restorekit.data.kinds.base import DataKind, TrainData, Validation, ValidationInputs
from restorekit.data.kinds.images import clean_validation_images
from restorekit.data.kinds.validation import psnr_line, upscaling_scores
from restorekit.data.sr import SRImages, SRPatchDataset, load_sr_images
from restorekit.degrade.noise import NoiseModel


class SuperResolutionImages(DataKind):
    task = "upscale"

    def load(self, config: Config, noise: NoiseModel | None) -> TrainData:
        dc = _section(config)
        pairs = load_sr_images(
            dc.train, dc.scales, config.model.in_channels, dc.layout, dc.round_lr
        )
        dataset = sr_dataset(dc, pairs)
        val_images: list[np.ndarray] = []
        val_names: list[str] = []
        if dc.val is not None:
            val_images, val_names = clean_validation_images(dc.val, dc.val_max_images, config)
        return TrainData(dataset, len(dataset), val_images, val_names)

    def summary(self, config: Config) -> str:
        dc = _section(config)
        scales = "/".join(f"x{s}" for s in dc.scales)
        if dc.hr_patch_size is not None:
            return f"{scales}, HR patch {dc.hr_patch_size}"
        return f"{scales}, LR patch {dc.lr_patch_size}"

    def validate(self, given: ValidationInputs) -> Validation | None:
        data, config = given.data, given.config
        if not data.val_images:
            return None
        scales = _section(config).scales
        scores, image = upscaling_scores(
            given.net, data.val_images, data.val_names, scales, config.train.channels_last
        )
        return Validation(scores, psnr_line(scores, "bicubic"), image, "upscaled", scores["psnr"])

    def descriptor_fields(self, config: Config, normalization: dict | None) -> dict[str, Any]:
        dc = _section(config)
        return {
            "task": self.task,
            "scale": dc.scales[0],
            "upsample_input": dc.upsample_input,
            "scales": dc.scales,
        }


def _section(config: Config) -> SRDataConfig:
    assert isinstance(config.data, SRDataConfig)
    return config.data


def sr_dataset(dc: SRDataConfig, pairs: SRImages) -> SRPatchDataset:
    """The training patches of LR/HR ``pairs`` as ``dc`` asks (scales, patch sizes,
    bicubic-upscaled input)."""
    return SRPatchDataset(
        pairs,
        dc.scales,
        dc.lr_patch_size,
        dc.augment,
        dc.upsample_input,
        dc.hr_patch_size,
        dc.skip_small,
    )
