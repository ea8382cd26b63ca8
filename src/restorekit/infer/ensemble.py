"""Geometric self-ensemble (EDSR's "+" models): the mean over the eight flips/rotations.

For each of the 8 transforms T of the dihedral group (:mod:`restorekit.dihedral`: 4 rotations
by 90 degrees, each with and without a left-right flip), the network runs on ``T(x)`` and
``T``'s inverse is applied to its output; the 8 results are averaged. Rotations and flips
commute with upscaling, so this works
for any ``run``: N x C x H x W -> N x C' x sH x sW, on NumPy arrays or torch tensors (no torch
import here). Costs 8 forward passes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from restorekit.dihedral import OPS, Array, inverse, transform


def self_ensemble(run: Callable[[Array], Array], x: Array) -> Array:
    """Mean of ``inverse(run(transform(x, op)), op)`` over the 8 transforms (see module)."""
    total: Array | None = None
    for op in OPS:
        y = transform(x, op)
        y = np.ascontiguousarray(y) if isinstance(y, np.ndarray) else y.contiguous()
        out = inverse(run(y), op)
        total = out if total is None else total + out
    assert total is not None  # OPS is not empty
    return total / len(OPS)
