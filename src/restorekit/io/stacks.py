"""TIFF stacks and volumes (multi-page / 3D), read with tifffile.

``read_stack(path, axes)`` gives the canonical S x C x (Z) x Y x X array (see
:mod:`restorekit.io.axes`) in the file's dtype, **not** scaled: an uncompressed, contiguous file
is memory-mapped (``np.memmap``; only the pages that are touched are read), others are read whole
with ``tifffile.imread``. Float data containing NaN or infinity are refused with their count
(checked slice by slice, so a memory-mapped file is not loaded whole). 2D images keep
:func:`restorekit.io.read_image`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from restorekit.errors import ImageFormatError, ImageReadError
from restorekit.io.axes import parse_axes, to_canonical
from restorekit.io.files import atomic_write

STACK_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff")


def read_stack(path: str | Path, axes: str) -> np.ndarray:
    """The stack at ``path`` as S x C x (Z) x Y x X in its own dtype (memory-mapped if possible)."""
    parse_axes(axes)
    path = Path(path)
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


def check_finite(array: np.ndarray, where: str) -> None:
    """Refuse NaN / infinite values of a float array, naming their count (sliced: no full copy)."""
    if array.dtype.kind != "f":
        return
    nan = inf = 0
    for part in array.reshape(-1, *array.shape[-2:]):
        nan += int(np.isnan(part).sum())
        inf += int(np.isinf(part).sum())
    if nan or inf:
        raise ImageFormatError(
            f"{where}: {nan} NaN and {inf} infinite value(s) of {array.size}; replace them "
            "(e.g. with the image's median) before training or denoising"
        )


def write_stack(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` (any layout; the caller's axes) to an uncompressed TIFF, atomically."""
    atomic_write(
        path, lambda tmp: tifffile.imwrite(tmp, np.asarray(array), photometric="minisblack")
    )
