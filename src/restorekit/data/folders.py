"""Decode a folder of images once, into memory, in their native dtype (uint8, uint16, float32)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from restorekit.errors import ImageFormatError
from restorekit.io import list_images, read_image


def match_channels(array: np.ndarray, channels: int, where: str | Path) -> np.ndarray:
    """Fit an H x W x C array to ``channels``: grey is replicated to RGB; RGB to grey is refused."""
    have = array.shape[2]
    if have == channels:
        return array
    if have == 1 and channels == 3:
        return np.repeat(array, 3, axis=2)
    raise ImageFormatError(
        f"{where}: image has {have} channel(s) but the model takes {channels}; "
        f"convert the images, or train/use a {have}-channel model (model.in_channels={have})"
    )


def load_images(
    inputs: str | Path | list[Path], channels: int
) -> tuple[list[np.ndarray], list[str]]:
    """Decode every image under ``inputs`` (files or folders) as H x W x ``channels`` arrays.

    Returns the arrays (native dtype) and their file names. Grey images given to an RGB model are
    replicated to three channels, with one warning.
    """
    paths = list_images(inputs)
    arrays: list[np.ndarray] = []
    replicated = 0
    for path in paths:
        image = read_image(path)
        replicated += image.channels == 1 and channels == 3
        arrays.append(match_channels(image.array, channels, path))
    if replicated:
        warnings.warn(
            f"{replicated} grey image(s) replicated to RGB for a {channels}-channel model",
            stacklevel=2,
        )
    return arrays, [p.name for p in paths]
