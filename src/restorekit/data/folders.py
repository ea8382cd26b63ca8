"""Decode a folder of images once, into memory, in their native dtype (uint8, uint16, float32)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from restorekit.io import list_images, read_image
from restorekit.pixels import match_channels


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
