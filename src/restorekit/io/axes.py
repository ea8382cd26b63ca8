"""Axes strings: which array axis is what, for stacks and volumes.

Letters: ``S`` (samples), ``T`` (time, treated as samples), ``C`` (channels), ``Z``, ``Y``, ``X``;
each at most once, ``Y`` and ``X`` required. ``YX``, ``SYX``, ``ZYX``, ``SZYX``, ``YXC``,
``SCYX``, ``SCZYX``, ``TYX``, ... The canonical layout inside restorekit is
S x C x (Z) x Y x X: :func:`to_canonical` (inverse: :func:`from_canonical`) moves the axes
there and adds singleton S and C axes, as views (a memory-mapped array stays memory-mapped);
``S`` and ``T`` together are merged into one S axis (S outer), which may copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restorekit.errors import ImageFormatError

ALLOWED = "STCZYX"

UNIT_SYMBOLS = {
    "micrometer": "µm",
    "nanometer": "nm",
    "millimeter": "mm",
    "centimeter": "cm",
    "meter": "m",
    "angstrom": "Å",
    "second": "s",
    "millisecond": "ms",
    "microsecond": "µs",
    "minute": "min",
    "hour": "h",
}
"""OME-Zarr's unit names (UDUNITS-2) and the OME-XML symbols of OME-TIFF for the same units."""


@dataclass
class StackLayout:
    """What a stack file says of its axes: their letters (as :func:`parse_axes`), and per
    letter the physical size of one pixel step (``scales``) and its unit (``units``, in
    OME-Zarr's names, e.g. ``micrometer``). Carried from input to output (OME-Zarr, OME-TIFF)."""

    axes: str
    scales: dict[str, float] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    def agree(self, axes: str | None, where: str) -> str:
        """The axes to use: ``axes`` as given must equal the file's (or be None)."""
        if axes is not None and parse_axes(axes) != self.axes:
            raise ImageFormatError(
                f"{where}: --axes {axes} disagrees with the file's own metadata ({self.axes}); "
                "leave --axes out for files that name their axes (OME-Zarr, OME-TIFF)"
            )
        return self.axes


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


def planes_as_slices(axes: str) -> str:
    """``axes`` with Z renamed to a sample axis (S, or T beside an S), so that a 2D model
    denoises a volume plane by plane; unchanged without Z."""
    text = parse_axes(axes)
    if "Z" not in text:
        return text
    if "S" in text and "T" in text:
        raise ImageFormatError(
            f"axes {text!r}: S, T and Z together cannot all be slices for a 2D model; merge two "
            "of them first"
        )
    return text.replace("Z", "T" if "S" in text else "S")


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


class CanonicalView:
    """A lazy S x C x (Z) x Y x X view of an array-like laid out as ``axes`` (a zarr array, a
    memory map): indexing reads only what it selects, assignment writes only there.

    Unlike :func:`to_canonical`, nothing is read when the view is made, so a stack larger than
    memory can be cut into patches or tiles. Keys are basic (ints and slices with step 1) in
    canonical order; missing trailing entries mean whole axes. ``view[key]`` returns a NumPy
    array; ``view[key] = value`` writes a canonical-order block. ``S`` and ``T`` together form
    one S axis (S outer, as :func:`to_canonical`); it is then indexed one slice at a time (an
    int, or a slice of length one).
    """

    def __init__(self, array: Any, axes: str) -> None:
        text = parse_axes(axes)
        if len(array.shape) != len(text):
            raise ImageFormatError(
                f"the array has {len(array.shape)} dimensions (shape {tuple(array.shape)}) but "
                f"axes {text!r} name {len(text)}"
            )
        self.array, self.axes = array, text
        self.sizes = dict(zip(text, array.shape, strict=True))
        self.samples = [a for a in "ST" if a in text]  # merged into the view's S axis
        self.canonical = "SC" + ("Z" if "Z" in text else "") + "YX"
        n_samples = int(np.prod([self.sizes[a] for a in self.samples]))
        self.shape = (n_samples, *(self.sizes.get(a, 1) for a in self.canonical[1:]))
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)
        self.size = int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def _resolve(self, key: Any) -> tuple[tuple, list[str], list[str]]:
        """The key in the source's axes; the axes the source read keeps (source order, named
        by their canonical letters); the canonical letters the result has."""
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) > self.ndim:
            raise IndexError(f"{len(key)} indices for a {self.ndim}-dimensional view")
        key = key + (slice(None),) * (self.ndim - len(key))
        wanted = []
        full: dict[str, Any] = {}
        for letter, part in zip(self.canonical, key, strict=True):
            if not isinstance(part, int | np.integer | slice):
                raise IndexError(f"only ints and slices index a lazy view, got {part!r}")
            if isinstance(part, slice):
                if part.step not in (None, 1):
                    raise IndexError("only unit-step slices index a lazy view")
                wanted.append(letter)
            length = self.shape[0] if letter == "S" else self.sizes.get(letter, 1)
            picked = range(length)[part]
            if isinstance(picked, range) and len(picked) == 0:
                raise IndexError(f"empty selection of axis {letter}")
            if letter == "S" and len(self.samples) != 1:
                full.update(self._sample_index(picked))
            elif letter == "S":
                full[self.samples[0]] = part
            elif letter in self.sizes:
                full[letter] = part
        source = tuple(full[a] for a in self.axes)
        kept = ["S" if a in self.samples else a for a in self.axes if isinstance(full[a], slice)]
        return source, kept, wanted

    def _sample_index(self, picked: int | range) -> dict[str, int]:
        """Source indices of one S slice of the view (none or two sample axes)."""
        if isinstance(picked, range):
            if len(picked) != 1:
                raise IndexError("read the S slices of this view one at a time")
            picked = picked[0]
        if not self.samples:
            return {}
        inner = self.sizes["T"]
        return {"S": picked // inner, "T": picked % inner}

    def __getitem__(self, key: Any) -> np.ndarray:
        source, kept, wanted = self._resolve(key)
        block = np.asarray(self.array[source])
        present = [a for a in wanted if a in kept]
        block = np.transpose(block, [kept.index(a) for a in present])
        for position, letter in enumerate(wanted):
            if letter not in kept:
                block = np.expand_dims(block, position)
        return block

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        source, kept, wanted = self._resolve(key)
        value = np.asarray(value)
        if value.ndim != len(wanted):
            raise ValueError(f"a block of {value.ndim} dimensions for {len(wanted)} selected")
        value = value.squeeze(axis=tuple(i for i, a in enumerate(wanted) if a not in kept))
        present = [a for a in wanted if a in kept]
        self.array[source] = np.transpose(value, [present.index(a) for a in kept])


class SliceView:
    """S slice ``s`` of a canonical array or :class:`CanonicalView`, as a lazy 1 x C x (Z) x
    Y x X array-like: indexing reads only the selected part of that slice."""

    def __init__(self, stack: Any, s: int) -> None:
        if not 0 <= s < stack.shape[0]:
            raise IndexError(f"slice {s} of {stack.shape[0]}")
        self.stack, self.s = stack, s
        self.shape = (1, *stack.shape[1:])
        self.dtype = np.dtype(stack.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        first, rest = (key[0], key[1:]) if key else (slice(None), ())
        if isinstance(first, slice):
            if range(1)[first] != range(1):
                raise IndexError("a slice view has one S entry: index it with 0 or :")
            first = slice(self.s, self.s + 1)
        elif first in (0, -1):
            first = self.s
        else:
            raise IndexError(f"index {first} of a one-slice view")
        whole: tuple = (first,) + tuple(rest)
        return np.asarray(self.stack[whole])


class ScaledView:
    """An array-like (an array, a memory map, a :class:`CanonicalView`) divided by ``scale``,
    as float32 (``--input-scale``: e.g. 4095 for 12-bit data in uint16), lazily: indexing
    reads and converts only the selected part."""

    def __init__(self, array: Any, scale: float) -> None:
        from restorekit.io.checks import check_input_scale

        check_input_scale(scale)
        self.array, self.scale = array, np.float32(scale)
        self.shape = tuple(array.shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)
        self.size = int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self.array[key], dtype=np.float32) / self.scale
