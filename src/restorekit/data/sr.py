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
- Several scales (``upsample_input`` only, as RED-Net trains one model for x2, x3 and x4): the
  LR images are made (or read) once per scale, and each sample draws its scale from its seed
  (:meth:`SRPatchDataset.draw_scale`), then is the single-scale sample at that scale. The HR
  patch side ``hr_patch_size`` is the same at every scale, so batches stay rectangular: the LR
  crop is ``ceil(hr_patch_size / s)`` LR pixels, and the HR patch (and upscaled input) its
  top-left ``hr_patch_size`` square. HR images are then kept whole and mod-cropped per sample.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from restorekit import dihedral
from restorekit.data.folders import load_images
from restorekit.data.patches import draw_crop
from restorekit.degrade.downscale import make_lr, mod_crop
from restorekit.degrade.resize import imresize
from restorekit.errors import ConfigError, ImageFormatError
from restorekit.io import IMAGE_EXTENSIONS, array_to_float, read_image
from restorekit.pixels import match_channels
from restorekit.randomness import derive_seed

UPSAMPLE_MARGIN = 3
"""LR pixels around a patch used when upscaling it (the bicubic kernel reaches 2)."""

SHOWN = 5
"""How many left-out images a warning names (the count covers all)."""


@dataclass
class SRImages:
    """HR images (mod-cropped to the scale; kept whole with several scales), their LR images by
    scale (see the module docstring) and file names."""

    hr: list[np.ndarray]
    lr: dict[int, list[np.ndarray]]
    names: list[str]


def as_scales(scale: int | Sequence[int]) -> list[int]:
    """One scale or several, as a list."""
    return [scale] if isinstance(scale, int) else list(scale)


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


def _stored_hr(images: list[np.ndarray], scales: list[int]) -> list[np.ndarray]:
    """HR images as :class:`SRImages` holds them: mod-cropped to one scale, whole for several."""
    return images if len(scales) > 1 else [mod_crop(image, scales[0]) for image in images]


def _load_div2k(hr_dir: Path, lr_dirs: dict[int, Path], channels: int) -> SRImages:
    hr_images, names = load_images(hr_dir, channels)
    result = SRImages([], {s: [] for s in lr_dirs}, [])
    for scale, lr_dir in lr_dirs.items():
        lr_by_stem = _lr_files(lr_dir)
        for hr, name in zip(hr_images, names, strict=True):
            stem = Path(name).stem
            lr_path = lr_by_stem.get(f"{stem}x{scale}") or lr_by_stem.get(stem)
            if lr_path is None:
                raise ImageFormatError(
                    f"{hr_dir / name}: no LR image {lr_dir / f'{stem}x{scale}.png'} (DIV2K "
                    f"layout: the x{scale} LR of HR/NAME.png is "
                    f"LR_bicubic/X{scale}/NAMEx{scale}.png)"
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
            result.lr[scale].append(lr)
    result.hr, result.names = _stored_hr(hr_images, list(lr_dirs)), names
    return result


def sr_images_from_hr(
    images: list[np.ndarray], names: list[str], scale: int | Sequence[int], round_lr: bool = True
) -> SRImages:
    """In-memory HR images (H x W x C) and their LR images made with :func:`make_lr` at each
    scale, as :class:`SRImages` holds them."""
    scales = as_scales(scale)
    lr = {
        s: [
            make_lr(mod_crop(image, s, name), s, round_lr)
            for image, name in zip(images, names, strict=True)
        ]
        for s in scales
    }
    return SRImages(_stored_hr(images, scales), lr, list(names))


def load_sr_images(
    inputs: str | Path | list[Path],
    scale: int | Sequence[int],
    channels: int,
    layout: Literal["auto", "hr_only", "div2k"] = "auto",
    round_lr: bool = True,
) -> SRImages:
    """Decode the LR/HR training pairs of ``inputs`` (folders or files), once, into memory, at
    ``scale`` (one or several; several keep the HR images whole).

    ``layout``: ``div2k`` (each input is a DIV2K-style folder), ``hr_only`` (each input holds
    HR images; LR made here), ``auto`` (DIV2K where a folder has an ``HR`` or ``*_HR``
    subfolder). Grey images given to an RGB model are replicated (one warning).
    """
    scales = as_scales(scale)
    sources = [Path(inputs)] if isinstance(inputs, str | Path) else [Path(p) for p in inputs]
    result = SRImages([], {s: [] for s in scales}, [])
    for source in sources:
        found = {s: find_div2k(source, s) for s in scales} if layout != "hr_only" else {}
        if layout == "div2k" and found[scales[0]] is None:
            raise ConfigError(
                f"{source}: data.layout=div2k but no HR folder (HR/ or *_HR/) in it; "
                "use data.layout=hr_only for a folder of HR images"
            )
        div2k = found.get(scales[0])
        if div2k is not None:
            lr_dirs = {s: pair[1] for s, pair in found.items() if pair is not None}
            part = _load_div2k(div2k[0], lr_dirs, channels)
        else:
            part = sr_images_from_hr(*load_images(source, channels), scales, round_lr)
        result.hr += part.hr
        for s in scales:
            result.lr[s] += part.lr[s]
        result.names += part.names
    return result


class SRPatchDataset(Dataset):
    """Aligned random LR/HR patches of in-memory images (see the module docstring).

    ``scale``: one, or several (then ``upsample_input`` and ``hr_patch_size`` are needed).
    ``hr_patch_size`` (``upsample_input`` only): the HR patch side at every scale; by default
    ``lr_patch_size x scale``. An image whose LR side is below the patch at any scale is an
    error, or with ``skip_small`` left out with a warning naming it.
    """

    def __init__(
        self,
        images: SRImages,
        scale: int | Sequence[int],
        lr_patch_size: int,
        augment: bool,
        upsample_input: bool = False,
        hr_patch_size: int | None = None,
        skip_small: bool = False,
    ) -> None:
        self.scales = as_scales(scale)
        several = len(self.scales) > 1
        if (several or hr_patch_size is not None) and not upsample_input:
            raise ConfigError("several scales and hr_patch_size need the upscaled input")
        if several and hr_patch_size is None:
            raise ConfigError(f"scales {self.scales} need an hr_patch_size shared by all")
        self.lr_patch = {
            s: lr_patch_size if hr_patch_size is None else math.ceil(hr_patch_size / s)
            for s in self.scales
        }
        small = {}  # image index: why it cannot give a patch
        for s, p in self.lr_patch.items():
            for i, (lr, name) in enumerate(zip(images.lr[s], images.names, strict=True)):
                if min(lr.shape[:2]) < p and i not in small:
                    what = f"data.lr_patch_size={p}"
                    if hr_patch_size is not None:
                        what = f"its LR patch of {p} (data.hr_patch_size={hr_patch_size} / {s})"
                    small[i] = (
                        f"{name}: its x{s} LR image is {lr.shape[0]}x{lr.shape[1]}, smaller than "
                        f"{what}"
                    )
        if small and not skip_small:
            first = next(iter(small.values()))
            raise ImageFormatError(
                f"{first}; lower the patch size, drop the image or set data.skip_small=true"
                + (f" ({len(small)} images are too small)" if len(small) > 1 else "")
            )
        if small:
            reasons = list(small.values())
            more = f"; and {len(reasons) - SHOWN} more" if len(reasons) > SHOWN else ""
            warnings.warn(
                f"left out {len(small)} training image(s) smaller than the patch: "
                + "; ".join(reasons[:SHOWN])
                + more,
                stacklevel=2,
            )
        keep = [i for i in range(len(images.hr)) if i not in small]
        if not keep:
            raise ImageFormatError("every training image is smaller than the patch")
        self.hr = [images.hr[i] for i in keep]
        self.lr = {s: [images.lr[s][i] for i in keep] for s in images.lr}
        self.names = [images.names[i] for i in keep]
        self.hr_patch, self.augment, self.upsample_input = hr_patch_size, augment, upsample_input

    def __len__(self) -> int:
        return len(self.hr)

    def draw_scale(self, seed: int) -> int:
        """The scale of the sample with ``seed``: the only one, or drawn uniformly from a
        stream of its own (the crop's stream is the same at every scale)."""
        if len(self.scales) == 1:
            return self.scales[0]
        rng = np.random.default_rng(derive_seed(seed, 2))
        return self.scales[int(rng.integers(len(self.scales)))]

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = key
        s = self.draw_scale(seed)
        rng = np.random.default_rng(seed)
        lr, p = self.lr[s][index], self.lr_patch[s]
        top, left, op = draw_crop(rng, lr.shape[0], lr.shape[1], p, self.augment)
        side = p * s if self.hr_patch is None else self.hr_patch  # within the p x p LR crop
        hr = self.hr[index][top * s : top * s + side, left * s : left * s + side]
        if self.upsample_input:
            image = self._upsampled(lr, s, top, left, p)[:side, :side]
        else:
            image = lr[top : top + p, left : left + p]
        return {
            "image": torch.from_numpy(array_to_float(dihedral.transform(image, op, (0, 1)))),
            "target": torch.from_numpy(array_to_float(dihedral.transform(hr, op, (0, 1)))),
            "seed": torch.tensor(derive_seed(seed, 1)),  # the sample's own random stream
        }

    @staticmethod
    def _upsampled(lr: np.ndarray, s: int, top: int, left: int, p: int) -> np.ndarray:
        """The bicubic x ``s`` upscaling of the whole LR image at the p x p LR crop's HR square
        (float32)."""
        m = UPSAMPLE_MARGIN
        r0, c0 = max(0, top - m), max(0, left - m)
        r1, c1 = min(lr.shape[0], top + p + m), min(lr.shape[1], left + p + m)
        region = array_to_float(lr[r0:r1, c0:c1]).transpose(1, 2, 0)
        up = imresize(region, output_shape=((r1 - r0) * s, (c1 - c0) * s))
        rows, cols = (top - r0) * s, (left - c0) * s
        return up[rows : rows + p * s, cols : cols + p * s]
