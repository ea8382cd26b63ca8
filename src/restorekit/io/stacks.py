"""Stacks and volumes (multi-page / 3D): TIFF read with tifffile, zarr stores through
:mod:`restorekit.io.zarr_stacks`.

``read_stack(path, axes)`` gives the canonical S x C x (Z) x Y x X array (see
:mod:`restorekit.io.axes`) in the file's dtype, **not** scaled: an uncompressed, contiguous TIFF
is memory-mapped (``np.memmap``; only the pages that are touched are read), others are read whole
with ``tifffile.imread``; a zarr store is a lazy view. An OME-TIFF's axes and physical pixel
sizes are read from its OME-XML (:func:`read_ome_tiff`) and written back to its output
(:func:`write_stack`). Float data containing NaN or infinity are refused with their count
(checked plane by plane, so a memory-mapped file is not loaded whole). 2D images keep
:func:`restorekit.io.read_image`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from restorekit.errors import ImageFormatError, ImageReadError
from restorekit.io.axes import UNIT_SYMBOLS, StackLayout, parse_axes, to_canonical
from restorekit.io.files import atomic_write

STACK_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff")

FINITE_CHECK_VALUES = 1 << 20
"""Values :func:`check_finite` reads at a time."""


def read_stack(path: str | Path, axes: str | None) -> Any:
    """The stack at ``path`` as S x C x (Z) x Y x X in its own dtype, not loaded: a TIFF
    memory-mapped when it can be (else read whole), a zarr store as a lazy view
    (:mod:`restorekit.io.zarr_stacks`; ``axes`` None: from its metadata)."""
    from restorekit.io.zarr_stacks import is_zarr, open_zarr_stack

    path = Path(path)
    if is_zarr(path):
        canonical: Any = open_zarr_stack(path, axes).canonical()
    else:
        ome = read_ome_tiff(path)
        if ome is not None:
            axes = ome.layout.agree(axes, str(path))
        if axes is None:
            raise ImageFormatError(f"{path}: give the TIFF stack's layout with --axes (data.axes)")
        parse_axes(axes)
        array = read_tiff(path)
        try:
            canonical = to_canonical(array, axes)
        except ImageFormatError as error:
            raise ImageFormatError(f"{path}: {error}") from None
    check_finite(canonical, str(path))
    return canonical


def read_tiff(path: str | Path) -> np.ndarray:
    """The TIFF's array as stored (its own axes and dtype): ``np.memmap`` when uncompressed and
    contiguous, else read whole."""
    path = Path(path)
    if path.suffix.lower() not in STACK_EXTENSIONS:
        raise ImageReadError(f"{path}: stacks are read from TIFF files (.tif, .tiff)")
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    try:
        try:
            return tifffile.memmap(path, mode="r")
        except ValueError:  # compressed or not contiguous: read it whole
            return tifffile.imread(path)
    except (OSError, tifffile.TiffFileError) as error:
        raise ImageReadError(f"{path}: not a readable TIFF ({error})") from None


def check_finite(array: Any, where: str) -> None:
    """Refuse NaN / infinite values of a float array, naming their count; read in bands of
    rows of at most :data:`FINITE_CHECK_VALUES` values, so a memory map or a lazy view
    (:class:`restorekit.io.axes.CanonicalView`) is never loaded whole."""
    if np.dtype(array.dtype).kind != "f":
        return
    nan = inf = 0
    rows = array.shape[-2]
    band = max(1, min(rows, FINITE_CHECK_VALUES // max(1, array.shape[-1])))
    for index in np.ndindex(*array.shape[:-2]):
        for top in range(0, rows, band):
            key: tuple = (*index, slice(top, top + band))
            part = np.asarray(array[key])
            nan += int(np.isnan(part).sum())
            inf += int(np.isinf(part).sum())
    if nan or inf:
        raise ImageFormatError(
            f"{where}: {nan} NaN and {inf} infinite value(s) of {array.size}; replace them "
            "(e.g. with the image's median) before training or denoising"
        )


_TIFFFILE_TO_AXES = {"T": "T", "C": "C", "Z": "Z", "Y": "Y", "X": "X", "S": "C"}
"""tifffile's axis letters of an OME-TIFF series -> restorekit's (its ``S``: colour samples)."""


@dataclass
class OmeTiff:
    """An OME-TIFF's layout (:class:`StackLayout`) and its axes as tifffile names them (written
    back unchanged)."""

    layout: StackLayout
    tiff_axes: str


def read_ome_tiff(path: str | Path) -> OmeTiff | None:
    """The axes and physical pixel sizes of an OME-TIFF's first series (None: not OME)."""
    try:
        with tifffile.TiffFile(path) as tiff:
            if not tiff.is_ome or not tiff.ome_metadata:
                return None
            tiff_axes = tiff.series[0].axes
            pixels = tifffile.xml2dict(tiff.ome_metadata)["OME"]["Image"]
            pixels = (pixels[0] if isinstance(pixels, list) else pixels)["Pixels"]
    except (OSError, tifffile.TiffFileError, KeyError, IndexError, TypeError):
        return None
    letters = [_TIFFFILE_TO_AXES.get(a) for a in tiff_axes]
    if None in letters or len(set(letters)) != len(letters):
        return None  # axes restorekit cannot name (e.g. tiles, phases): --axes decides
    layout = StackLayout("".join(letters))  # type: ignore[arg-type]
    symbols = {symbol: name for name, symbol in UNIT_SYMBOLS.items()}
    for letter in "XYZ":
        size = pixels.get(f"PhysicalSize{letter}")
        if letter in layout.axes and size is not None:
            layout.scales[letter] = float(size)
            unit = str(pixels.get(f"PhysicalSize{letter}Unit", "µm"))
            layout.units[letter] = symbols.get(unit, unit)
    return OmeTiff(layout, tiff_axes)


def write_stack(path: str | Path, array: np.ndarray, ome: OmeTiff | None = None) -> None:
    """Write ``array`` (any layout; the caller's axes) to an uncompressed TIFF, atomically;
    ``ome``: as an OME-TIFF with those axes and physical pixel sizes (the input's)."""
    metadata: dict | None = None
    if ome is not None:
        metadata = {"axes": ome.tiff_axes}
        for letter, size in ome.layout.scales.items():
            metadata[f"PhysicalSize{letter}"] = size
            unit = ome.layout.units.get(letter)
            if unit is not None:
                metadata[f"PhysicalSize{letter}Unit"] = UNIT_SYMBOLS.get(unit, unit)

    def write(tmp: Path) -> None:
        if metadata is None:  # tifffile's own shape record, so the array reads back as written
            tifffile.imwrite(tmp, np.asarray(array), photometric="minisblack")
        else:
            tifffile.imwrite(
                tmp, np.asarray(array), photometric="minisblack", ome=True, metadata=metadata
            )

    atomic_write(path, write)
