"""Uploaded files to checked files on disk: names made safe (no path traversal), bytes counted
as they arrive (a request over the limit stops at the limit), every image decoded once before
a job is queued, so that a truncated file, a non-image or a decompression bomb is a 4xx naming
the file, not a failed job."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import UploadFile

from restorekit.errors import ImageFormatError, ImageReadError, PixelLimitError, RestorekitError
from restorekit.io import IMAGE_EXTENSIONS, read_image
from restorekit.io.images import Image

CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()-]+")


class UploadError(RestorekitError):
    """A bad upload, with the HTTP status that says which kind (400, 413, 415, 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def safe_name(name: str | None, index: int) -> str:
    """The file name a client sent, reduced to a plain name: its last path part, characters
    other than letters, digits and ``._ ()-`` replaced, at most 100 characters; an image
    extension is required."""
    base = re.split(r"[\\/]", name or "")[-1].strip().lstrip(".")
    base = _UNSAFE.sub("_", base)[-100:] or f"image{index}"
    if Path(base).suffix.lower() not in IMAGE_EXTENSIONS:
        raise UploadError(
            415,
            f"{name!r}: not an image file name (accepted: {', '.join(IMAGE_EXTENSIONS)})",
        )
    return base


async def save_uploads(files: list[UploadFile], folder: Path, max_bytes: int) -> list[Path]:
    """Write ``files`` into ``folder`` as ``NNN-name``; at most ``max_bytes`` in all."""
    if not files:
        raise UploadError(400, "no files: send one or more images in fields named 'files'")
    folder.mkdir(parents=True, exist_ok=True)
    total, paths = 0, []
    for index, upload in enumerate(files):
        path = folder / f"{index:03d}-{safe_name(upload.filename, index)}"
        with open(path, "wb") as out:
            while chunk := await upload.read(CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise UploadError(
                        413,
                        f"upload larger than the limit of {max_bytes:,} bytes; send fewer "
                        "or smaller files (restorekit serve --max-upload sets the limit)",
                    )
                out.write(chunk)
        if path.stat().st_size == 0:
            raise UploadError(400, f"{upload.filename}: empty file")
        paths.append(path)
    return paths


def check_image(path: Path, shown: str) -> Image:
    """``path`` decoded (see :func:`restorekit.io.read_image`); errors name ``shown``, the name
    the client sent, never the server's folder."""
    try:
        return read_image(path)
    except PixelLimitError as error:
        raise UploadError(413, _named(error, path, shown)) from None
    except (ImageReadError, ImageFormatError) as error:
        raise UploadError(422, _named(error, path, shown)) from None


def check_stack(path: Path, shown: str, axes: str) -> None:
    """``path`` is a TIFF stack whose shape fits ``axes`` (read memory-mapped where it can be);
    errors name ``shown``."""
    from restorekit.io import read_tiff
    from restorekit.io.axes import to_canonical

    if path.suffix.lower() not in (".tif", ".tiff"):
        raise UploadError(415, f"{shown}: stacks (axes) are TIFF files")
    try:
        to_canonical(read_tiff(path), axes)
    except (ImageReadError, ImageFormatError) as error:
        message = _named(error, path, shown)
        raise UploadError(422, message if shown in message else f"{shown}: {message}") from None


def _named(error: Exception, path: Path, shown: str) -> str:
    return str(error).replace(str(path), shown).replace(str(path.parent), "the upload")


def shown_name(path: Path) -> str:
    """The client's name of an uploaded file (without the ``NNN-`` prefix)."""
    return path.name.split("-", 1)[1]
