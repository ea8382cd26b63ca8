"""Pixel values and the [0, 1] scale the networks work on, in one place (NumPy only).

Conventions: uint8 data are divided by 255, uint16 by 65535, float data are taken as already
on the [0, 1] scale (values outside are kept). Back to integers: ``clip(x * top + 0.5, 0, top)``
then truncation (round half up, as the Neighbor2Neighbor code writes its images). Image arrays
are H x W x C; the network side is C x H x W.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from restorekit.errors import ImageFormatError

INTEGER_TOP = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
"""The full-scale value of each integer pixel type."""


def unit_scale(dtype: DTypeLike) -> float:
    """The divisor that brings ``dtype`` to [0, 1]: 255, 65535, or 1 for float data."""
    dtype = np.dtype(dtype)
    if dtype in INTEGER_TOP:
        return INTEGER_TOP[dtype]
    if dtype.kind == "f":
        return 1.0
    raise ImageFormatError(f"unsupported pixel dtype {dtype}; use uint8, uint16 or float")


def to_unit(array: np.ndarray, dtype: DTypeLike = np.float32) -> np.ndarray:
    """An array of any supported pixel type on the [0, 1] scale, as ``dtype``, same layout."""
    scale = unit_scale(array.dtype)
    values = np.asarray(array, dtype=dtype)
    return values / values.dtype.type(scale) if scale != 1.0 else values


def image_to_unit(array: np.ndarray, check_finite: bool = False) -> np.ndarray:
    """H x W x C pixels -> C x H x W float32 on the [0, 1] scale (contiguous).
    ``check_finite``: NaN or infinite float values are an :class:`ImageFormatError`."""
    if check_finite and array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ImageFormatError("image contains NaN or infinite values; replace them first")
    return np.ascontiguousarray(to_unit(array).transpose(2, 0, 1))


def from_unit(values: np.ndarray, dtype: DTypeLike) -> np.ndarray:
    """[0, 1]-scale values -> ``dtype``, same layout: integers scaled, rounded half up and
    clipped to their range (in the values' own precision); floats unchanged."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.asarray(values).astype(dtype)
    top = unit_scale(dtype)
    values = np.asarray(values)
    kind = values.dtype.type if values.dtype.kind == "f" else np.float32
    return np.clip(values * kind(top) + kind(0.5), 0, top).astype(dtype)


def unit_to_image(values: np.ndarray, dtype: DTypeLike) -> np.ndarray:
    """C x H x W [0, 1]-scale values -> H x W x C pixels of ``dtype`` (see :func:`from_unit`)."""
    return from_unit(np.asarray(values).transpose(1, 2, 0), dtype)


def match_channels(array: np.ndarray, channels: int, where: object) -> np.ndarray:
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
