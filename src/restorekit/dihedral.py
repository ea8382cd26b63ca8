"""The eight flips and rotations of an image (the dihedral group of the square), in one place.

``op`` 0-7 encodes them: a left-right flip of the second image axis when ``op & 4``, then
``op & 3`` quarter turns counter-clockwise of the two image axes (``np.rot90``); op 0 is the
identity. Used for training augmentation (:mod:`restorekit.data.patches`,
:mod:`restorekit.data.stacks`; :mod:`restorekit.data.device` cuts the same patches on a GPU)
and for the geometric self-ensemble (:mod:`restorekit.infer.ensemble`). Works on NumPy arrays
and on torch tensors alike (without importing torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

Array = TypeVar("Array", np.ndarray, "torch.Tensor")

OPS = tuple(range(8))
"""Every transform: the four rotations, then the four flipped ones."""


def transform(x: Array, op: int, axes: tuple[int, int] = (-2, -1)) -> Array:
    """``x`` flipped along ``axes[1]`` if ``op & 4``, then turned ``op & 3`` quarter turns
    counter-clockwise in the plane of ``axes`` (rows, columns)."""
    if op & 4:
        x = _flip(x, axes[1])
    return _rot90(x, op & 3, axes)


def inverse(y: Array, op: int, axes: tuple[int, int] = (-2, -1)) -> Array:
    """The inverse of :func:`transform` with the same ``op``."""
    y = _rot90(y, -(op & 3), axes)
    return _flip(y, axes[1]) if op & 4 else y


def _rot90(x, turns: int, axes: tuple[int, int]):  # noqa: ANN001, ANN202 - NumPy or torch
    if isinstance(x, np.ndarray):
        return np.rot90(x, turns, axes=axes)
    return x.rot90(turns, dims=axes)


def _flip(x, axis: int):  # noqa: ANN001, ANN202 - NumPy or torch
    if isinstance(x, np.ndarray):
        return np.flip(x, axis)
    return x.flip(axis)
