"""Super-resolution training data: aligned low-/high-resolution (LR/HR) images and patches.

Conventions:

- HR images are H x W x C arrays in their native dtype (uint8, uint16, float32), **mod-cropped**
  to the scale ``s``: the last ``H % s`` rows and ``W % s`` columns are dropped (the top-left
  corner is kept, as MATLAB's ``modcrop``), so that the LR image is exactly ``H/s x W/s`` and
  LR pixel ``(i, j)`` covers HR pixels ``[s i, s i + s) x [s j, s j + s)``.
- Two sources. **HR-only folders**: each LR image is made once, at load time, with
  ``restorekit.degrade.imresize`` (MATLAB bicubic with antialiasing) on the HR image as float64
  in [0, 1], and cached in memory. With ``round_lr=True`` (the default) it is rounded (half up)
  and clipped to the HR's integer bit depth, as the LR PNG files of DIV2K and of the benchmark
  sets were written by MATLAB (8-bit); it is then stored in the HR's dtype, which gives the same
  float32 values as the files would. With ``round_lr=False`` (or float HR images) the LR is kept
  in float32, unrounded and unclipped (bicubic overshoots slightly at edges). **DIV2K layout**: a
  folder holding ``HR/0001.png`` and ``LR_bicubic/X2/0001x2.png`` (also EDSR's names
  ``DIV2K_train_HR`` / ``DIV2K_train_LR_bicubic``); each LR file must be exactly ``1/s`` of its
  mod-cropped HR image.
- Patches: an ``lr_patch_size`` square of the LR image at a random place and the ``s`` times
  larger HR square it covers, both given the same random flip/rotation. Keys and seeds as
  :class:`restorekit.data.PatchDataset`: a sample is a pure function of ``(image_index,
  sample_seed)``. Samples are ``{"image": LR C x p x p, "target": HR C x sp x sp, "seed": ...}``,
  float32 in [0, 1]. With ``upsample_input`` (RED-Net), ``image`` is instead the LR image
  upscaled back to the HR size with bicubic ``imresize``, cropped at the HR patch: the same
  values as upscaling the whole LR image (it is computed on the patch plus a margin of
  ``UPSAMPLE_MARGIN`` LR pixels, more than the 2-pixel reach of the bicubic kernel).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from restorekit.data.folders import load_images, match_channels
from restorekit.data.patches import augment_array, draw_crop
from restorekit.degrade.resize import imresize
from restorekit.errors import ConfigError, ImageFormatError
from restorekit.io import IMAGE_EXTENSIONS, array_to_float, read_image
from restorekit.randomness import derive_seed

UPSAMPLE_MARGIN = 3
"""LR pixels around a patch used when upscaling it (the bicubic kernel reaches 2)."""

_INTEGER_TOP = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def mod_crop(image: np.ndarray, scale: int, name: str | Path = "image") -> np.ndarray:
    """``image`` (H x W x C) without its last ``H % scale`` rows and ``W % scale`` columns."""
    height, width = image.shape[:2]
    if height < scale or width < scale:
        raise ImageFormatError(
            f"{name}: image is {height}x{width}, smaller than the scale {scale}: "
            "it has no low-resolution pixel"
        )
    return image[: height - height % scale, : width - width % scale]


def to_unit64(image: np.ndarray) -> np.ndarray:
    """H x W x C uint8 / uint16 / float image as float64 in [0, 1] (integers scaled)."""
    top = _INTEGER_TOP.get(image.dtype)
    return image.astype(np.float64) / top if top else image.astype(np.float64)


def make_lr(hr: np.ndarray, scale: int, round_lr: bool = True) -> np.ndarray:
    """The bicubic LR image of a mod-cropped H x W x C ``hr`` image: H/scale x W/scale x C.

    ``round_lr``: rounded half up and clipped to the bit depth of an integer ``hr`` and returned
    in its dtype (as MATLAB writes the LR files); else, and for float ``hr``, float32 unrounded.
    """
    height, width = hr.shape[:2]
    if height % scale or width % scale:
        raise ValueError(f"make_lr: {height}x{width} is not mod-cropped to the scale {scale}")
    lr = imresize(to_unit64(hr), output_shape=(height // scale, width // scale))
    top = _INTEGER_TOP.get(hr.dtype)
    if round_lr and top:
        return np.clip(np.floor(lr * top + 0.5), 0, top).astype(hr.dtype)
    return lr.astype(np.float32)


@dataclass
class SRImages:
    """Mod-cropped HR images, their LR images (see the module docstring) and file names."""

    hr: list[np.ndarray]
    lr: list[np.ndarray]
    names: list[str]


def find_div2k(root: Path, scale: int) -> tuple[Path, Path] | None:
    """``(HR folder, LR folder)`` of a DIV2K-style ``root``; None when it holds no HR folder."""
    if not root.is_dir():
        return None

    def one(name: str, suffix: str) -> Path | None:
        if (root / name).is_dir():
            return root / name
        found = sorted(p for p in root.glob(f"*{suffix}") if p.is_dir())
        if len(found) > 1:
            raise ConfigError(
                f"{root}: several {suffix} folders ({', '.join(p.name for p in found)}); "
                "give the one to use"
            )
        return found[0] if found else None

    hr = one("HR", "_HR")
    if hr is None:
        return None
    lr_root = one("LR_bicubic", "_LR_bicubic")
    lr = None if lr_root is None else lr_root / f"X{scale}"
    if lr is None or not lr.is_dir():
        raise ConfigError(
            f"{root}: DIV2K layout with HR images in {hr} but no x{scale} LR folder "
            f"({root / 'LR_bicubic' / f'X{scale}'}); add it, or set data.layout=hr_only to make "
            "the LR images from the HR ones"
        )
    return hr, lr


def _lr_files(folder: Path) -> dict[str, Path]:
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    }


def _load_div2k(hr_dir: Path, lr_dir: Path, scale: int, channels: int) -> SRImages:
    hr_images, names = load_images(hr_dir, channels)
    lr_by_stem = _lr_files(lr_dir)
    result = SRImages([], [], [])
    for hr, name in zip(hr_images, names, strict=True):
        stem = Path(name).stem
        lr_path = lr_by_stem.get(f"{stem}x{scale}") or lr_by_stem.get(stem)
        if lr_path is None:
            raise ImageFormatError(
                f"{hr_dir / name}: no LR image {lr_dir / f'{stem}x{scale}.png'} (DIV2K layout: "
                f"the x{scale} LR of HR/NAME.png is LR_bicubic/X{scale}/NAMEx{scale}.png)"
            )
        lr = match_channels(read_image(lr_path).array, channels, lr_path)
        hr = mod_crop(hr, scale, hr_dir / name)
        if (lr.shape[0] * scale, lr.shape[1] * scale) != hr.shape[:2]:
            raise ImageFormatError(
                f"{lr_path}: LR image is {lr.shape[0]}x{lr.shape[1]} (x{scale}: "
                f"{lr.shape[0] * scale}x{lr.shape[1] * scale}) but its HR image "
                f"{hr_dir / name} mod-cropped to the scale is {hr.shape[0]}x{hr.shape[1]}; "
                f"the LR file must be the HR image downscaled by {scale}"
            )
        result.hr.append(hr)
        result.lr.append(lr)
        result.names.append(name)
    return result


def load_sr_images(
    inputs: str | Path | list[Path],
    scale: int,
    channels: int,
    layout: Literal["auto", "hr_only", "div2k"] = "auto",
    round_lr: bool = True,
) -> SRImages:
    """Decode the LR/HR training pairs of ``inputs`` (folders or files), once, into memory.

    ``layout``: ``div2k`` (each input is a DIV2K-style folder), ``hr_only`` (each input holds
    HR images; LR made here), ``auto`` (DIV2K where a folder has an ``HR`` or ``*_HR``
    subfolder). Grey images given to an RGB model are replicated (one warning).
    """
    sources = [Path(inputs)] if isinstance(inputs, str | Path) else [Path(p) for p in inputs]
    result = SRImages([], [], [])
    for source in sources:
        div2k = find_div2k(source, scale) if layout != "hr_only" else None
        if layout == "div2k" and div2k is None:
            raise ConfigError(
                f"{source}: data.layout=div2k but no HR folder (HR/ or *_HR/) in it; "
                "use data.layout=hr_only for a folder of HR images"
            )
        if div2k is not None:
            part = _load_div2k(*div2k, scale, channels)
        else:
            images, names = load_images(source, channels)
            hr = [mod_crop(im, scale, name) for im, name in zip(images, names, strict=True)]
            part = SRImages(hr, [make_lr(image, scale, round_lr) for image in hr], names)
        result.hr += part.hr
        result.lr += part.lr
        result.names += part.names
    return result


class SRPatchDataset(Dataset):
    """Aligned random LR/HR patches of in-memory images (see the module docstring)."""

    def __init__(
        self,
        images: SRImages,
        scale: int,
        lr_patch_size: int,
        augment: bool,
        upsample_input: bool = False,
    ) -> None:
        for lr, name in zip(images.lr, images.names, strict=True):
            if min(lr.shape[:2]) < lr_patch_size:
                raise ImageFormatError(
                    f"{name}: its x{scale} LR image is {lr.shape[0]}x{lr.shape[1]}, smaller than "
                    f"data.lr_patch_size={lr_patch_size}; lower the patch size or drop the image"
                )
        self.hr, self.lr, self.names = images.hr, images.lr, images.names
        self.scale, self.patch, self.augment = scale, lr_patch_size, augment
        self.upsample_input = upsample_input

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = key
        rng = np.random.default_rng(seed)
        lr, s, p = self.lr[index], self.scale, self.patch
        top, left, op = draw_crop(rng, lr.shape[0], lr.shape[1], p, self.augment)
        hr = self.hr[index][top * s : (top + p) * s, left * s : (left + p) * s]
        if self.upsample_input:
            image = self._upsampled(lr, top, left)
        else:
            image = lr[top : top + p, left : left + p]
        return {
            "image": torch.from_numpy(array_to_float(augment_array(image, op))),
            "target": torch.from_numpy(array_to_float(augment_array(hr, op))),
            "seed": torch.tensor(derive_seed(seed, 1)),  # the sample's own random stream
        }

    def _upsampled(self, lr: np.ndarray, top: int, left: int) -> np.ndarray:
        """The bicubic x scale upscaling of the whole LR image, at the HR patch (float32)."""
        s, p, m = self.scale, self.patch, UPSAMPLE_MARGIN
        r0, c0 = max(0, top - m), max(0, left - m)
        r1, c1 = min(lr.shape[0], top + p + m), min(lr.shape[1], left + p + m)
        region = array_to_float(lr[r0:r1, c0:c1]).transpose(1, 2, 0)
        up = imresize(region, output_shape=((r1 - r0) * s, (c1 - c0) * s))
        rows, cols = (top - r0) * s, (left - c0) * s
        return up[rows : rows + p * s, cols : cols + p * s]
