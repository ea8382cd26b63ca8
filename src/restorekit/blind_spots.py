"""The geometry of Noise2Void's blind spots, checked where a config is read (torch-free).

Blind spots are drawn one per box of side :func:`box_side` (the masked fraction's inverse
root); structN2V masks (:func:`parse_struct_mask`) name the correlated neighbours masked with
each spot. The drawing itself is :mod:`restorekit.methods.n2v_masking`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from restorekit.errors import ConfigError


def box_side(masked_fraction: float, dims: int) -> int:
    """Side of the boxes that each hold one blind spot: ``round(masked_fraction ** (-1/dims))``."""
    if not 0 < masked_fraction < 1:
        raise ConfigError(f"masked_fraction must lie in (0, 1), got {masked_fraction}")
    side = round((1 / masked_fraction) ** (1 / dims))
    if side < 2:
        raise ConfigError(
            f"masked_fraction={masked_fraction} gives boxes of side {side} in {dims}D: every "
            "pixel would be masked; use a masked_fraction of at most 0.25"
        )
    return side


def parse_struct_mask(mask: Sequence | np.ndarray) -> np.ndarray:
    """A structN2V mask as a validated int array of 1 to 3 axes with odd sizes and 0/1 values."""
    try:
        array = np.asarray(mask, dtype=float)
    except ValueError:
        raise ConfigError(
            "struct_mask must be a rectangular nested list of 0 and 1, e.g. [[1, 1, 1, 1, 1]]"
        ) from None
    if not 1 <= array.ndim <= 3 or array.size == 0:
        raise ConfigError(f"struct_mask must have 1, 2 or 3 axes, got shape {array.shape}")
    if any(s % 2 == 0 for s in array.shape):
        raise ConfigError(
            f"struct_mask needs odd sizes so that its centre is the blind spot; got shape "
            f"{array.shape}"
        )
    if not np.isin(array, (0, 1)).all():
        raise ConfigError("struct_mask entries must be 0 or 1 (1: a correlated neighbour)")
    array = array.astype(np.int64)
    array[tuple(s // 2 for s in array.shape)] = 0  # the centre is the blind spot itself
    if not array.any():
        raise ConfigError("struct_mask marks no neighbour besides its centre")
    return array
