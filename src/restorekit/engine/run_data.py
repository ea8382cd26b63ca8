"""What a run trains and validates on, loaded once from the config.

Folders of images (denoising), LR/HR pairs (super-resolution) or TIFF stacks (Noise2Void),
decoded into memory or memory-mapped; clean validation images as uint8 H x W x C.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from restorekit.configs.schema import Config
from restorekit.data import (
    PatchDataset,
    SRImages,
    SRPatchDataset,
    StackPatchDataset,
    compute_normalization,
    load_images,
    load_sr_images,
    load_stacks,
    split_slices,
)
from restorekit.degrade.noise import NoiseModel
from restorekit.errors import ConfigError
from restorekit.io import to_uint8
from restorekit.io.checks import check_training_images, warn
from restorekit.io.images import array_to_float
from restorekit.randomness import derive_seed


@dataclass
class TrainData:
    """Decoded training patches and clean (super-resolution: HR) validation images (uint8
    H x W x C). Stacks: ``normalization`` (the descriptor's record, or None) and held-out noisy
    validation patches (``val_patches``: fixed loader samples for a validation loss)."""

    dataset: PatchDataset | SRPatchDataset | StackPatchDataset
    n_images: int
    val_images: list[np.ndarray]
    val_names: list[str]
    normalization: dict | None = None
    val_patches: dict[str, torch.Tensor] | None = None


NOISE_ONCE_STREAM = 11
"""Seed stream of data.noise_once's draws (apart from the training and validation streams)."""

VAL_PATCHES = 16
"""Held-out patches (stacks with data.val_fraction) for the validation loss, fixed per run."""


def load_train_data(cfg: Config, noise: NoiseModel | None, task: str = "denoise") -> TrainData:
    dc = cfg.data
    if dc.axes is not None:
        return load_stack_data(cfg)
    if task == "upscale":  # aligned LR/HR patches (restorekit.data.sr)
        pairs = load_sr_images(dc.train, dc.scales, cfg.model.in_channels, dc.layout, dc.round_lr)
        dataset: PatchDataset | SRPatchDataset = sr_dataset(cfg, pairs)
        n_images = len(dataset)
    else:
        images, names = load_images(dc.train, cfg.model.in_channels)
        images, names = checked_training_images(images, names, dc.patch_size, cfg.noise)
        if dc.noise_once:
            assert noise is not None  # the config validator requires it
            images = add_noise_once(images, noise, cfg.train.seed)
        dataset = PatchDataset(images, dc.patch_size, dc.augment, _load_pairs(cfg, names))
        n_images = len(images)
    val_images: list[np.ndarray] = []
    val_names: list[str] = []
    if cfg.data.val is not None and (noise is not None or task == "upscale"):
        val_images, val_names = load_images(cfg.data.val, cfg.model.in_channels)
        val_images = [to_uint8(v) for v in val_images[: cfg.data.val_max_images]]
        val_names = val_names[: len(val_images)]
    return TrainData(dataset, n_images, val_images, val_names)


def checked_training_images(
    images: list[np.ndarray], names: list[str], patch_size: int, noise: str | None
) -> tuple[list[np.ndarray], list[str]]:
    """The training images without constant ones, after :mod:`restorekit.io.checks` (float data
    off the [0, 1] scale refused; warnings for the rest, as :class:`InputWarning`)."""
    keep, messages = check_training_images(images, names, patch_size, noise)
    warn(messages, stacklevel=4)
    return [images[i] for i in keep], [names[i] for i in keep]


def add_noise_once(images: list[np.ndarray], noise: NoiseModel, seed: int) -> list[np.ndarray]:
    """A fixed noisy training set: each image (H x W x C, any dtype) as float32 on the [0, 1]
    scale plus one seeded draw of ``noise``, unclipped (as N2V's BSD68 reproduction data)."""
    noisy = []
    for index, image in enumerate(images):
        rng = np.random.default_rng([seed, NOISE_ONCE_STREAM, index])
        clean = array_to_float(image).transpose(1, 2, 0)
        noisy.append(noise.sample_numpy(clean, rng))
    return noisy


def sr_dataset(cfg: Config, pairs: SRImages) -> SRPatchDataset:
    """The training patches of LR/HR ``pairs`` as ``cfg.data`` asks (scales, patch sizes,
    bicubic-upscaled input)."""
    dc = cfg.data
    return SRPatchDataset(
        pairs,
        dc.scales,
        dc.lr_patch_size,
        dc.augment,
        dc.upsample_input,
        dc.hr_patch_size,
        dc.skip_small,
    )


def load_stack_data(cfg: Config) -> TrainData:
    """TIFF stacks (``data.axes``): memory-mapped S slices, per-channel normalisation from the
    training slices, the last ``data.val_fraction`` of slices held out for a validation loss."""
    dc = cfg.data
    assert dc.axes is not None
    stacks = load_stacks(dc.train, dc.axes, cfg.model.in_channels)
    train_slices, val_slices = split_slices(stacks, dc.val_fraction)
    dataset = StackPatchDataset(stacks, train_slices, dc.patch_size, dc.patch_depth, dc.augment)
    record = None
    if dc.normalization != "none":  # after the data set checked that the patches fit
        dataset.normalization, record = compute_normalization(
            stacks, train_slices, dc.normalization, dataset.patch_shape, cfg.train.seed
        )
    val_patches = None
    if val_slices:
        held_out = StackPatchDataset(
            stacks, val_slices, dc.patch_size, dc.patch_depth, False, dataset.normalization
        )
        keys = [
            (i % len(val_slices), derive_seed(cfg.train.seed, 9, i)) for i in range(VAL_PATCHES)
        ]
        samples = [held_out[key] for key in keys]
        val_patches = {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
    return TrainData(dataset, len(train_slices), [], [], record, val_patches)


def _load_pairs(config: Config, names: list[str]) -> list[np.ndarray] | None:
    if config.data.pairs is None:
        return None
    partners, partner_names = load_images(config.data.pairs, config.model.in_channels)
    by_name = dict(zip(partner_names, partners, strict=True))
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ConfigError(
            f"data.pairs ({config.data.pairs}) lacks partners for {len(missing)} training "
            f"image(s), e.g. {missing[:3]}; pairs are matched by file name"
        )
    return [by_name[n] for n in names]


def steps_per_epoch(cfg: Config, n_images: int, world_size: int) -> int:
    """Steps per epoch; the global batch must split evenly over processes and micro-batches."""
    tc = cfg.train
    if tc.batch_size % (world_size * tc.accumulate):
        raise ConfigError(
            f"train.batch_size={tc.batch_size} (the global batch) must be divisible by the "
            f"number of processes ({world_size}) x train.accumulate ({tc.accumulate})"
        )
    steps_per_epoch = n_images * cfg.data.repeat // tc.batch_size
    if steps_per_epoch == 0:
        raise ConfigError(
            f"{n_images} training image(s) x data.repeat={cfg.data.repeat} is less than one "
            f"batch of train.batch_size={tc.batch_size}; raise data.repeat or lower the batch size"
        )
    return steps_per_epoch
