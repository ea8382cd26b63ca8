"""Geometric self-ensemble (EDSR's "+" models): the mean over the eight flips/rotations.

For each of the 8 transforms T of the dihedral group (4 rotations by 90 degrees, each with and
without a left-right flip), the network runs on ``T(x)`` and ``T``'s inverse is applied to its
output; the 8 results are averaged. Rotations and flips commute with upscaling, so this works
for any ``run``: N x C x H x W -> N x C' x sH x sW, on NumPy arrays or torch tensors (no torch
import here). Costs 8 forward passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

Array = TypeVar("Array", np.ndarray, "torch.Tensor")

TRANSFORMS = tuple((rotations, flip) for flip in (False, True) for rotations in range(4))
"""The 8 transforms as (quarter turns counter-clockwise, flip W first)."""


def _rot90(x, k: int):
    if isinstance(x, np.ndarray):
        return np.rot90(x, k, axes=(-2, -1))
    return x.rot90(k, dims=(-2, -1))


def _flip(x):
    if isinstance(x, np.ndarray):
        return x[..., ::-1]
    return x.flip(-1)


def _contiguous(x):
    return np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x.contiguous()


def transform(x: Array, rotations: int, flip: bool) -> Array:
    """Flip the last axis (if ``flip``), then rotate the last two by ``rotations`` quarter turns."""
    return _rot90(_flip(x) if flip else x, rotations)


def inverse_transform(y: Array, rotations: int, flip: bool) -> Array:
    """The inverse of :func:`transform`."""
    y = _rot90(y, -rotations)
    return _flip(y) if flip else y


def self_ensemble(run: Callable[[Array], Array], x: Array) -> Array:
    """Mean of ``inverse_transform(run(transform(x)))`` over the 8 transforms (see module)."""
    total: Array | None = None
    for rotations, flip in TRANSFORMS:
        out = inverse_transform(run(_contiguous(transform(x, rotations, flip))), rotations, flip)
        total = out if total is None else total + out
    assert total is not None  # TRANSFORMS is not empty
    return total / len(TRANSFORMS)
