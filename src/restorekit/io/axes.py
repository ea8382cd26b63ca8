"""Axes strings: which array axis is what, for stacks and volumes.

Letters: ``S`` (samples), ``T`` (time, treated as samples), ``C`` (channels), ``Z``, ``Y``, ``X``;
each at most once, ``Y`` and ``X`` required. ``YX``, ``SYX``, ``ZYX``, ``SZYX``, ``YXC``,
``SCYX``, ``SCZYX``, ``TYX``, ... The canonical layout inside restorekit is
S x C x (Z) x Y x X: :func:`to_canonical` (inverse: :func:`from_canonical`) moves the axes
there and adds singleton S and C axes, as views (a memory-mapped array stays memory-mapped);
``S`` and ``T`` together are merged into one S axis (S outer), which may copy.
"""

from __future__ import annotations

import numpy as np

from restorekit.errors import ImageFormatError

ALLOWED = "STCZYX"


def parse_axes(axes: str) -> str:
    """``axes`` upper-cased and checked: allowed letters, each once, Y and X present."""
    text = axes.strip().upper()
    unknown = sorted({a for a in text if a not in ALLOWED})
    if unknown:
        raise ImageFormatError(
            f"axes {axes!r}: unknown letter(s) {', '.join(unknown)}; allowed: {', '.join(ALLOWED)}"
        )
    repeated = sorted({a for a in text if text.count(a) > 1})
    if repeated:
        raise ImageFormatError(f"axes {axes!r}: {', '.join(repeated)} given more than once")
    if "Y" not in text or "X" not in text:
        raise ImageFormatError(f"axes {axes!r}: Y and X are required (e.g. YX, SYX, ZYX, SCZYX)")
    return text


def spatial_dims(axes: str) -> int:
    """3 when ``axes`` has Z (volumes), else 2."""
    return 3 if "Z" in parse_axes(axes) else 2


def to_canonical(array: np.ndarray, axes: str) -> np.ndarray:
    """``array`` (laid out as ``axes``) as S x C x (Z) x Y x X; a view where possible."""
    text = parse_axes(axes)
    if array.ndim != len(text):
        raise ImageFormatError(
            f"the array has {array.ndim} dimensions (shape {tuple(array.shape)}) but axes "
            f"{text!r} name {len(text)}; give one letter per dimension, e.g. "
            + ("ZYX or SYX" if array.ndim == 3 else "SZYX or SCYX" if array.ndim == 4 else "YX")
        )
    if "S" in text and "T" in text:
        order = [text.index(a) for a in "ST"] + [i for i, a in enumerate(text) if a not in "ST"]
        array = np.transpose(array, order)
        array = array.reshape(array.shape[0] * array.shape[1], *array.shape[2:])
        text = "S" + "".join(a for a in text if a not in "ST")
    text = text.replace("T", "S")
    for letter in "SC":
        if letter not in text:
            array, text = array[np.newaxis], letter + text
    target = "SC" + ("Z" if "Z" in text else "") + "YX"
    return np.transpose(array, [text.index(a) for a in target])


def from_canonical(array: np.ndarray, axes: str, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`to_canonical`: S x C x (Z) x Y x X back to ``axes`` of ``shape``
    (the original array's shape; spatial sizes may differ, e.g. after upscaling)."""
    text = parse_axes(axes)
    current = "SC" + ("Z" if "Z" in text else "") + "YX"
    if "S" in text and "T" in text:
        sizes = shape[text.index("S")], shape[text.index("T")]
        array = array.reshape(*sizes, *array.shape[1:])
        current = "ST" + current[1:]
    elif "T" in text:
        text = text.replace("T", "S")
    for letter in "SC":
        if letter not in text:
            array = array.squeeze(current.index(letter))
            current = current.replace(letter, "")
    return np.transpose(array, [current.index(a) for a in text])
