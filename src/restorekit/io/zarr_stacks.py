"""zarr and OME-Zarr stacks: opened lazily, written chunk by chunk (zarr-python 3).

A stack on disk is either a plain zarr array (its axes from ``--axes`` / ``data.axes``, or from
its ``dimension_names`` when those are axis letters) or an OME-Zarr image (NGFF 0.5 on zarr
format 3, or 0.4 on format 2), whose first (full-resolution) multiscale level is used and whose
axes and physical scales are read from its metadata with ``ome-zarr-models``.

Nothing is read when a stack is opened: :class:`ZarrStack` hands out a lazy canonical view
(:class:`restorekit.io.axes.CanonicalView`), so patches and tiles read only their own chunks
and a stack larger than memory trains and denoises in bounded memory.

Writing (:class:`ZarrStackWriter`) goes to a hidden temporary folder beside the target, which
replaces the target only once every chunk and the metadata are written: an interrupted write
leaves the target as it was. An OME-Zarr input gives an OME-Zarr output (NGFF 0.5, the input's
axes, units and scales, a pyramid of 2 x 2 means in Y and X down to 256-pixel sides, made from
the written result band by band); a plain array gives a plain array with the input's
``dimension_names``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import ImageFormatError, ImageReadError
from restorekit.io.axes import ALLOWED, CanonicalView, StackLayout, parse_axes
from restorekit.io.files import temporary_path

ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray")
"""Files whose presence makes a folder a zarr store (format 3, format 2 group, format 2 array)."""

_OME_LETTERS = {"t": "T", "c": "C", "z": "Z", "y": "Y", "x": "X"}
_OME_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}


def is_zarr(path: str | Path) -> bool:
    """Whether ``path`` is a zarr store: a folder holding zarr metadata at its top (its name
    alone does not make it one: a folder an output would replace must really be a store)."""
    path = Path(path)
    return path.is_dir() and any((path / m).is_file() for m in ZARR_MARKERS)


@dataclass
class ZarrStack:
    """An opened zarr stack: ``array`` (a ``zarr.Array``, nothing read), its ``layout`` (axes;
    scales and units from OME metadata, none for a plain array) and whether it is an OME-Zarr
    image (``ome``, with the image's ``name`` if it has one)."""

    path: Path
    array: Any
    layout: StackLayout
    ome: bool = False
    name: str | None = None

    def canonical(self) -> CanonicalView:
        """The lazy S x C x (Z) x Y x X view."""
        return CanonicalView(self.array, self.layout.axes)

    @property
    def chunks(self) -> tuple[int, ...]:
        return tuple(self.array.chunks)


def open_zarr_stack(path: str | Path, axes: str | None = None) -> ZarrStack:
    """The zarr stack at ``path``. ``axes``: the layout when the store does not tell it (a plain
    array); for an OME-Zarr image it must agree with the metadata, or be None."""
    zarr = _zarr()
    path = Path(path)
    if not is_zarr(path):
        raise ImageReadError(f"{path}: not a zarr store (no {', '.join(ZARR_MARKERS)} inside)")
    try:
        node = zarr.open(store=str(path), mode="r")
    except Exception as error:  # noqa: BLE001 - zarr raises many kinds for a broken store
        raise ImageReadError(f"{path}: not a readable zarr store ({error})") from None
    if isinstance(node, zarr.Array):
        return ZarrStack(path, node, StackLayout(_plain_axes(path, node, axes)))
    stack = _ome_image(path, node)
    stack.layout.agree(axes, str(path))
    return stack


def _zarr() -> Any:
    try:
        import zarr
    except ImportError:
        raise ImageReadError(
            "zarr stores need the zarr extra: pip install 'restorekit[zarr]'"
        ) from None
    return zarr


def _plain_axes(path: Path, array: Any, axes: str | None) -> str:
    if axes is not None:
        return parse_axes(axes)
    names = getattr(array.metadata, "dimension_names", None)
    if names and all(isinstance(n, str) and n.upper() in ALLOWED for n in names):
        return parse_axes("".join(n.upper() for n in names))
    raise ImageFormatError(
        f"{path}: a zarr array of shape {tuple(array.shape)} without axis names; give its "
        "layout with --axes (or data.axes), e.g. ZYX or SYX"
    )


def _ome_image(path: Path, group: Any) -> ZarrStack:
    """The first level of the OME-Zarr image ``group`` (NGFF 0.5 or 0.4)."""
    multiscale = _ome_multiscale(path, group)
    letters = []
    for axis in multiscale.axes:
        letter = _OME_LETTERS.get(axis.name.lower())
        if letter is None:
            raise ImageFormatError(
                f"{path}: OME-Zarr axis {axis.name!r} ({axis.type}) is not one restorekit "
                f"knows (t, c, z, y, x)"
            )
        letters.append(letter)
    axes = parse_axes("".join(letters))
    dataset = multiscale.datasets[0]
    scales: dict[str, float] = {}
    for transform in dataset.coordinateTransformations:
        if getattr(transform, "type", None) == "scale" and hasattr(transform, "scale"):
            scales = dict(zip(axes, (float(v) for v in transform.scale), strict=True))
    units = {
        letter: str(axis.unit)
        for letter, axis in zip(axes, multiscale.axes, strict=True)
        if axis.unit is not None
    }
    array = group[dataset.path]
    return ZarrStack(path, array, StackLayout(axes, scales, units), True, multiscale.name)


def _ome_multiscale(path: Path, group: Any) -> Any:
    from ome_zarr_models.v04.image import Image as ImageV04
    from ome_zarr_models.v05.image import Image as ImageV05

    errors = []
    for version, image_class in (("0.5", ImageV05), ("0.4", ImageV04)):
        try:
            image = image_class.from_zarr(group)
        except Exception as error:  # noqa: BLE001 - the library's validation errors vary
            errors.append(f"NGFF {version}: {str(error).splitlines()[0]}")
            continue
        attributes = getattr(image, "ome_attributes", None) or image.attributes
        return attributes.multiscales[0]
    raise ImageFormatError(
        f"{path}: a zarr group that is not an OME-Zarr image ({'; '.join(errors)}); give the "
        "array inside it (e.g. PATH/0) with --axes"
    )


class ZarrStackWriter:
    """Write a stack like ``like`` (same axes, chunks, metadata kind and scales) to ``target``:
    blocks are assigned to ``array`` (a ``zarr.Array``; e.g. through a
    :class:`restorekit.io.axes.CanonicalView` of it); :meth:`finish` writes the metadata and
    moves the result into place; :meth:`abort` (or an exception inside ``with``) removes it."""

    def __init__(
        self, target: str | Path, like: ZarrStack, shape: tuple[int, ...], dtype: Any
    ) -> None:
        zarr = _zarr()
        self.target, self.like = Path(target), like
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.folder = temporary_path(self.target)
        chunks = tuple(min(c, n) for c, n in zip(like.chunks, shape, strict=True))
        axes = like.layout.axes
        names = [a.lower() for a in axes]
        if like.ome:
            self.group = zarr.open_group(store=str(self.folder), mode="w", zarr_format=3)
            self.array = self.group.create_array(
                "0", shape=shape, dtype=dtype, chunks=chunks, dimension_names=names
            )
        else:
            self.group = None
            self.array = zarr.create_array(
                store=str(self.folder),
                shape=shape,
                dtype=dtype,
                chunks=chunks,
                dimension_names=names,
                zarr_format=3,
            )

    def __enter__(self) -> ZarrStackWriter:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if error is not None:
            self.abort()

    def finish(self) -> None:
        """OME-Zarr: the pyramid's lower levels (:func:`add_pyramid`) and the metadata, last;
        then the store replaces the target."""
        if self.group is not None:
            levels = add_pyramid(self.group, self.array, self.like.layout.axes)
            self.group.attrs["ome"] = ome_attributes(levels, self.like)
        replace_folder(self.folder, self.target)

    def abort(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


PYRAMID_SMALLEST = 256
"""The pyramid's last level is the first whose Y or X side is below twice this."""

PYRAMID_BAND_VALUES = 1 << 22
"""Values of the finer level read at a time while a coarser one is made."""


def add_pyramid(group: Any, full: Any, axes: str) -> list[Any]:
    """Lower-resolution levels ``1``, ``2``, ... of the image at ``group['0']`` (``full``):
    each the mean of 2 x 2 pixels in Y and X of the one above (other axes kept; integers
    rounded), made band by band so that memory stays bounded, until Y or X would fall below
    :data:`PYRAMID_SMALLEST`. Returns every level's array, ``full`` first."""
    y, x = axes.index("Y"), axes.index("X")
    levels = [full]
    while min(levels[-1].shape[y], levels[-1].shape[x]) >= 2 * PYRAMID_SMALLEST:
        finer = levels[-1]
        shape = list(finer.shape)
        shape[y], shape[x] = shape[y] // 2, shape[x] // 2
        chunks = tuple(min(c, n) for c, n in zip(finer.chunks, shape, strict=True))
        coarser = group.create_array(
            str(len(levels)),
            shape=tuple(shape),
            dtype=finer.dtype,
            chunks=chunks,
            dimension_names=list(finer.metadata.dimension_names),
        )
        _downsample(finer, coarser, y, x)
        levels.append(coarser)
    return levels


def _downsample(finer: Any, coarser: Any, y: int, x: int) -> None:
    """``coarser`` = 2 x 2 means of ``finer`` in axes ``y`` and ``x``, in bands of rows."""
    others = [i for i in range(finer.ndim) if i not in (y, x)]
    row_values = finer.shape[x] * 2
    band = max(1, PYRAMID_BAND_VALUES // row_values)
    integer = np.dtype(finer.dtype).kind in "ui"
    for index in np.ndindex(*[finer.shape[i] for i in others]):
        for top in range(0, coarser.shape[y], band):
            rows = min(band, coarser.shape[y] - top)
            source: list[Any] = [0] * finer.ndim
            target: list[Any] = [0] * finer.ndim
            for axis, i in zip(others, index, strict=True):
                source[axis] = target[axis] = i
            source[y] = slice(2 * top, 2 * (top + rows))
            source[x] = slice(0, 2 * coarser.shape[x])
            target[y], target[x] = slice(top, top + rows), slice(None)
            block = np.asarray(finer[tuple(source)], dtype=np.float64)
            if y > x:  # the block's axes are in the array's order: put rows first
                block = block.T
            block = block.reshape(rows, 2, coarser.shape[x], 2).mean(axis=(1, 3))
            if y > x:
                block = block.T
            coarser[tuple(target)] = np.round(block) if integer else block


def ome_attributes(levels: list[Any], like: ZarrStack) -> dict:
    """The NGFF 0.5 ``ome`` attributes of an image whose resolution levels are ``levels`` (at
    paths ``0``, ``1``, ...; each halving Y and X) with the axes, units and scales of ``like``
    (built and validated by ``ome-zarr-models``)."""
    from ome_zarr_models.v05.axes import Axis
    from ome_zarr_models.v05.image import Image
    from pydantic_zarr.v3 import ArraySpec

    layout = like.layout
    axes = [Axis(name=a.lower(), type=_OME_TYPES[a], unit=layout.units.get(a)) for a in layout.axes]
    scales = []
    for level in range(len(levels)):
        factor = {"Y": 2.0**level, "X": 2.0**level}
        scales.append([layout.scales.get(a, 1.0) * factor.get(a, 1.0) for a in layout.axes])
    image = Image.new(
        array_specs=[ArraySpec.from_array(array) for array in levels],
        paths=[str(level) for level in range(len(levels))],
        axes=axes,
        scales=scales,
        translations=[None] * len(levels),
        name=like.name,
    )
    return image.ome_attributes.model_dump(mode="json", exclude_none=True)


def replace_folder(source: Path, target: Path) -> None:
    """Move the finished folder ``source`` to ``target``, replacing what is there (a previous
    output the caller may replace) only after the new one is complete."""
    if not target.exists():
        os.replace(source, target)
        return
    old = temporary_path(target)
    os.replace(target, old)
    try:
        os.replace(source, target)
    except OSError:
        os.replace(old, target)
        raise
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)
