"""Folders of 2D images for denoising: clean images with simulated noise (Noise2Clean,
Neighbor2Neighbor, Noise2Void's BSD68 protocol), noisy images alone, or noisy pairs matched by
file name (Noise2Noise). Validation: PSNR/SSIM on clean images with simulated noise."""

from __future__ import annotations

import numpy as np
import torch

from restorekit.configs.schema import Config, ImageDataConfig
from restorekit.data.folders import load_images
from restorekit.data.kinds.base import DataKind, TrainData, Validation, ValidationInputs
from restorekit.data.kinds.validation import denoising_scores, psnr_line
from restorekit.data.patches import PatchDataset
from restorekit.degrade.noise import NoiseModel
from restorekit.errors import ConfigError
from restorekit.io import to_uint8
from restorekit.io.checks import check_training_images, warn
from restorekit.io.images import array_to_float

NOISE_ONCE_STREAM = 11
"""Seed stream of data.noise_once's draws (apart from the training and validation streams)."""


class ImageFolders(DataKind):
    def load(self, config: Config, noise: NoiseModel | None) -> TrainData:
        dc = _section(config)
        images, names = load_images(dc.train, config.model.in_channels)
        images, names = checked_training_images(images, names, dc.patch_size, config.noise)
        if dc.noise_once:
            assert noise is not None  # the config validator requires it
            images = add_noise_once(images, noise, config.train.seed)
        dataset = PatchDataset(images, dc.patch_size, dc.augment, load_pairs(dc, names, config))
        val_images: list[np.ndarray] = []
        val_names: list[str] = []
        if dc.val is not None and noise is not None:
            val_images, val_names = clean_validation_images(dc.val, dc.val_max_images, config)
        return TrainData(dataset, len(images), val_images, val_names)

    def summary(self, config: Config) -> str:
        dc = _section(config)
        once = " added once" if dc.noise_once else ""
        return f"patch {dc.patch_size}, noise {config.noise}{once}"

    def validate(self, given: ValidationInputs) -> Validation | None:
        data, noise, tc = given.data, given.noise, given.config.train
        if not data.val_images or noise is None:
            return None
        scores, image = denoising_scores(
            given.net, data.val_images, data.val_names, noise, tc.channels_last, tc.seed
        )
        return Validation(scores, psnr_line(scores, "noisy"), image, "denoised", scores["psnr"])

    def cuts_on_device(self, config: Config, device: torch.device) -> bool:
        wanted = _section(config).on_device
        return wanted if wanted is not None else device.type == "cuda"


def _section(config: Config) -> ImageDataConfig:
    assert isinstance(config.data, ImageDataConfig)
    return config.data


def clean_validation_images(
    folder: object, max_images: int | None, config: Config
) -> tuple[list[np.ndarray], list[str]]:
    """The first ``max_images`` images of ``folder`` (all when None) as uint8 H x W x C with
    the model's channels, and their names."""
    images, names = load_images(folder, config.model.in_channels)  # type: ignore[arg-type]
    images = [to_uint8(v) for v in images[:max_images]]
    return images, names[: len(images)]


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


def load_pairs(dc: ImageDataConfig, names: list[str], config: Config) -> list[np.ndarray] | None:
    """The ``data.pairs`` partner of each training image (matched by file name), or None."""
    if dc.pairs is None:
        return None
    partners, partner_names = load_images(dc.pairs, config.model.in_channels)
    by_name = dict(zip(partner_names, partners, strict=True))
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ConfigError(
            f"data.pairs ({dc.pairs}) lacks partners for {len(missing)} training "
            f"image(s), e.g. {missing[:3]}; pairs are matched by file name"
        )
    return [by_name[n] for n in names]
