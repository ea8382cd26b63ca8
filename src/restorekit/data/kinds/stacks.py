"""TIFF stacks of noisy data (microscopy, Noise2Void): memory-mapped S slices of 2D images or
3D volumes, per-channel normalisation from the training slices (stored with the model and
undone on output). Validation: the method's loss on fixed patches of held-out slices
(``data.val_fraction``)."""

from __future__ import annotations

from typing import Any

import torch

from restorekit.configs.schema import Config, StackDataConfig
from restorekit.data.kinds.base import DataKind, TrainData, Validation, ValidationInputs
from restorekit.data.stacks import (
    StackPatchDataset,
    compute_normalization,
    load_stacks,
    split_slices,
)
from restorekit.degrade.noise import NoiseModel
from restorekit.randomness import derive_seed

VAL_PATCHES = 16
"""Held-out patches for the validation loss, fixed per run."""

VAL_STREAM = 9
"""Seed stream of the held-out patches."""


class Stacks(DataKind):
    def load(self, config: Config, noise: NoiseModel | None) -> TrainData:
        dc = _section(config)
        stacks = load_stacks(dc.train, dc.axes, config.model.in_channels)
        train_slices, val_slices = split_slices(stacks, dc.val_fraction)
        dataset = StackPatchDataset(stacks, train_slices, dc.patch_size, dc.patch_depth, dc.augment)
        record = None
        if dc.normalization != "none":  # after the data set checked that the patches fit
            dataset.normalization, record = compute_normalization(
                stacks, train_slices, dc.normalization, dataset.patch_shape, config.train.seed
            )
        val_patches = None
        if val_slices:
            held_out = StackPatchDataset(
                stacks, val_slices, dc.patch_size, dc.patch_depth, False, dataset.normalization
            )
            keys = [
                (i % len(val_slices), derive_seed(config.train.seed, VAL_STREAM, i))
                for i in range(VAL_PATCHES)
            ]
            samples = [held_out[key] for key in keys]
            val_patches = {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
        return TrainData(dataset, len(train_slices), [], [], record, val_patches)

    def summary(self, config: Config) -> str:
        dc = _section(config)
        depth = f"{dc.patch_depth}x" if dc.patch_depth else ""
        return f"patch {depth}{dc.patch_size}, noise {config.noise}"

    def validate(self, given: ValidationInputs) -> Validation | None:
        if given.data.val_patches is None:
            return None
        loss = given.held_out_loss(given.data.val_patches)
        return Validation({"loss": loss}, f"held-out loss {loss:.6f}")

    def descriptor_fields(self, config: Config, normalization: dict | None) -> dict[str, Any]:
        fields = super().descriptor_fields(config, normalization)
        return {**fields, "axes": _section(config).axes, "normalization": normalization}


def _section(config: Config) -> StackDataConfig:
    assert isinstance(config.data, StackDataConfig)
    return config.data
