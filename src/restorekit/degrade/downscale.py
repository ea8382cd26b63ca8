"""The degradation of super-resolution: HR images mod-cropped to the scale and downscaled by
MATLAB-exact bicubic (:func:`restorekit.degrade.resize.imresize`), as the benchmarks' and
DIV2K's LR images are made (torch-free)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from restorekit.degrade.resize import imresize
from restorekit.errors import ImageFormatError
from restorekit.pixels import INTEGER_TOP, to_unit


def mod_crop(image: np.ndarray, scale: int, name: str | Path = "image") -> np.ndarray:
    """``image`` (H x W x C) without its last ``H % scale`` rows and ``W % scale`` columns."""
    height, width = image.shape[:2]
    if height < scale or width < scale:
        raise ImageFormatError(
            f"{name}: image is {height}x{width}, smaller than the scale {scale}: "
            "it has no low-resolution pixel"
        )
    return image[: height - height % scale, : width - width % scale]


def make_lr(hr: np.ndarray, scale: int, round_lr: bool = True) -> np.ndarray:
    """The bicubic LR image of a mod-cropped H x W x C ``hr`` image: H/scale x W/scale x C.

    ``round_lr``: rounded half up and clipped to the bit depth of an integer ``hr`` and returned
    in its dtype (as MATLAB writes the LR files); else, and for float ``hr``, float32 unrounded.
    """
    height, width = hr.shape[:2]
    if height % scale or width % scale:
        raise ValueError(f"make_lr: {height}x{width} is not mod-cropped to the scale {scale}")
    lr = imresize(to_unit(hr, np.float64), output_shape=(height // scale, width // scale))
    top = INTEGER_TOP.get(hr.dtype)
    if round_lr and top:
        return np.clip(np.floor(lr * top + 0.5), 0, top).astype(hr.dtype)
    return lr.astype(np.float32)
