"""Images written as their rows are made, so that a result never has to be held whole.

:func:`write_image_rows` takes the result as blocks of rows (``(first_row, rows x W x C)``, in
order, as :meth:`restorekit.infer.array_model.ArrayModel.image_rows` yields them) and writes:

* PNG row by row (pypng; 8-bit, and 16-bit grey as :func:`restorekit.io.write_image` allows),
* TIFF in strips of :data:`TIFF_ROWS_PER_STRIP` rows (tifffile, uncompressed, as
  :func:`restorekit.io.write_image` writes it),
* any other format (JPEG, WebP, BMP) through :func:`restorekit.io.write_image`: their encoders
  take the whole image, so the rows are gathered first (:func:`held_bytes` says how much).

Same checks, atomic write (a temporary file renamed over the target) and alpha rules as
:func:`restorekit.io.write_image`. ``alpha`` (H x W, the image's dtype) is given whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from restorekit.errors import ImageFormatError
from restorekit.io.files import atomic_write
from restorekit.io.images import check_pixels, image_kind, tiff_layout, write_image
from restorekit.io.metadata import ImageMetadata

TIFF_ROWS_PER_STRIP = 64
"""Rows per TIFF strip: the most rows the TIFF writer holds beyond the block it is given."""

Rows = Iterable[tuple[int, np.ndarray]]


def held_bytes(path: str | Path, shape: tuple[int, int, int], dtype: np.dtype) -> int:
    """Bytes the writer of ``path``'s format holds beyond the blocks it is given, for an image
    of ``shape`` (H x W x C) and ``dtype``: one TIFF strip, nothing for PNG, the whole image for
    formats written whole."""
    height, width, channels = shape
    row = width * channels * np.dtype(dtype).itemsize
    kind = image_kind(Path(path))
    if kind == "PNG":
        return row
    if kind == "TIFF":
        return row * TIFF_ROWS_PER_STRIP
    return row * height


def write_image_rows(
    path: str | Path,
    shape: tuple[int, int, int],
    dtype: np.dtype,
    rows: Rows,
    alpha: np.ndarray | None = None,
    metadata: ImageMetadata | None = None,
) -> None:
    """Write the H x W x C image of ``shape`` and ``dtype`` given as ``rows`` (see the module
    docstring) to ``path``; format from the extension; ``metadata`` as
    :func:`restorekit.io.write_image` stores it."""
    metadata = (metadata or ImageMetadata()).for_channels(shape[2])
    path = Path(path)
    kind = image_kind(path)
    height, width, channels = shape
    probe = np.zeros((1, width, channels), dtype)
    check_pixels(path, kind, probe, None if alpha is None else alpha[:1])
    if alpha is not None and alpha.shape != (height, width):
        raise ImageFormatError(f"cannot write {path}: alpha {alpha.shape} for an image {shape}")
    if kind not in ("PNG", "TIFF"):
        image = np.empty(shape, dtype)
        for first, block in _checked(rows, shape, dtype):
            image[first : first + len(block)] = block
        write_image(path, image, alpha, metadata)
        return
    with_alpha = _with_alpha(_checked(rows, shape, dtype), alpha)
    write = _write_png if kind == "PNG" else _write_tiff
    atomic_write(
        path, lambda tmp: write(tmp, shape, dtype, with_alpha, alpha is not None, metadata)
    )


def _checked(rows: Rows, shape: tuple[int, int, int], dtype: np.dtype) -> Rows:
    """``rows`` checked to come in order, of the right width, channels and dtype, and to cover
    the image exactly."""
    expected = 0
    for first, block in rows:
        if first != expected or block.shape[1:] != shape[1:] or block.dtype != dtype:
            raise ValueError(
                f"rows out of order or of the wrong shape: block {block.shape} {block.dtype} at "
                f"row {first}, expected row {expected} of {shape} {np.dtype(dtype)}"
            )
        expected += len(block)
        yield first, block
    if expected != shape[0]:
        raise ValueError(f"the rows ended at {expected} of {shape[0]}")


def _with_alpha(rows: Rows, alpha: np.ndarray | None) -> Iterator[np.ndarray]:
    """Each block of ``rows`` with its rows of ``alpha`` appended as the last channel."""
    for first, block in rows:
        if alpha is None:
            yield block
        else:
            yield np.concatenate([block, alpha[first : first + len(block), :, None]], axis=2)


def _write_png(
    tmp: Path,
    shape: tuple[int, int, int],
    dtype: np.dtype,
    blocks: Iterator[np.ndarray],
    has_alpha: bool,
    metadata: ImageMetadata,
) -> None:
    import png  # pypng

    class Writer(png.Writer):
        """pypng's writer, with the colour profile and EXIF chunks after the header."""

        def write_preamble(self, outfile: Any) -> None:
            super().write_preamble(outfile)
            for tag, data in metadata.png_chunks():
                png.write_chunk(outfile, tag, data)

    height, width, channels = shape
    writer = Writer(
        width,
        height,
        greyscale=channels == 1,
        alpha=has_alpha,
        bitdepth=8 * np.dtype(dtype).itemsize,
    )
    with open(tmp, "wb") as file:
        writer.write(file, (row.reshape(-1) for block in blocks for row in block))


def _write_tiff(
    tmp: Path,
    shape: tuple[int, int, int],
    dtype: np.dtype,
    blocks: Iterator[np.ndarray],
    has_alpha: bool,
    metadata: ImageMetadata,
) -> None:
    height, width, channels = shape
    samples = channels + has_alpha
    tifffile.imwrite(
        tmp,
        data=_strips(blocks, TIFF_ROWS_PER_STRIP),
        shape=(height, width, samples) if samples > 1 else (height, width),
        dtype=dtype,
        rowsperstrip=TIFF_ROWS_PER_STRIP,
        **tiff_layout(samples, has_alpha),
        **metadata.tiff_options(),
    )


def _strips(blocks: Iterator[np.ndarray], rows: int) -> Iterator[bytes]:
    """The pixels of ``blocks`` regrouped as strips of ``rows`` rows (the last one shorter), as
    bytes: what tifffile takes from an iterator for a non-tiled image."""
    pending: list[np.ndarray] = []
    count = 0
    for block in blocks:
        pending.append(block)
        count += len(block)
        while count >= rows:
            joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
            yield np.ascontiguousarray(joined[:rows]).tobytes()
            rest = joined[rows:]
            pending, count = ([rest] if len(rest) else []), len(rest)
    if count:
        yield np.ascontiguousarray(np.concatenate(pending)).tobytes()
