"""A photograph's colour profile and camera data, carried from an input file to its result.

:class:`ImageMetadata` holds what :func:`restorekit.io.read_image` found besides the pixels:

* the ICC colour profile (JPEG, PNG, WebP, TIFF): without it a wide-gamut (Adobe RGB, Display
  P3) photograph's colours shift when its result is shown;
* the EXIF data (JPEG, PNG, WebP): camera, lens, exposure, date. Its orientation tag is
  dropped, since the pixels were turned upright when read (a kept tag would turn them again).

Writers store the profile in JPEG, PNG, WebP and TIFF results and the EXIF data in JPEG, PNG
and WebP ones (BMP holds neither); :meth:`ImageMetadata.sized` sets EXIF's pixel dimensions to
the result's (upright, and upscaled where it was).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from PIL import Image as PILImage

_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_PIXEL_X, _PIXEL_Y = 0xA002, 0xA003  # EXIF's PixelXDimension, PixelYDimension


_JPEG_EXIF_LIMIT = 65533 - 8
"""The most EXIF bytes a JPEG's APP1 segment holds (beyond it, the EXIF is left out)."""


@dataclass(frozen=True)
class ImageMetadata:
    """An image's ICC profile and EXIF data (``b"Exif\\0\\0"`` + TIFF structure), either None."""

    icc_profile: bytes | None = None
    exif: bytes | None = None

    def sized(self, width: int, height: int) -> ImageMetadata:
        """The metadata of a result ``width`` x ``height`` pixels: EXIF's pixel dimensions
        (when it has them) set to that size; EXIF that cannot be rewritten is left out."""
        if self.exif is None:
            return self
        try:
            exif = PILImage.Exif()
            exif.load(self.exif)
            ifd = exif.get_ifd(_EXIF_IFD)
            if _PIXEL_X not in ifd and _PIXEL_Y not in ifd:
                return self
            ifd[_PIXEL_X], ifd[_PIXEL_Y] = width, height
            return ImageMetadata(self.icc_profile, exif.tobytes())
        except Exception:  # noqa: BLE001 - Pillow fails on some odd tags: the pixels matter
            return ImageMetadata(self.icc_profile)

    def for_channels(self, channels: int) -> ImageMetadata:
        """This metadata for an image of ``channels`` colour channels: a profile of another
        colour space (a CMYK JPEG's, read as RGB) is left out, never written to wrong pixels."""
        space = self.icc_profile[16:20] if self.icc_profile else None
        if space is None or space == {1: b"GRAY", 3: b"RGB "}.get(channels):
            return self
        return ImageMetadata(None, self.exif)

    def pillow_options(self, kind: str) -> dict[str, Any]:
        """Pillow's ``save`` arguments that store this metadata in a ``kind`` file."""
        if kind not in ("JPEG", "PNG", "WEBP"):
            return {}
        options: dict[str, Any] = {}
        if self.icc_profile:
            options["icc_profile"] = self.icc_profile
        if self.exif and (kind != "JPEG" or len(self.exif) <= _JPEG_EXIF_LIMIT):
            options["exif"] = self.exif
        return options

    def tiff_options(self) -> dict[str, Any]:
        """tifffile's ``imwrite`` arguments that store this metadata (the profile) in a TIFF."""
        return {"iccprofile": self.icc_profile} if self.icc_profile else {}

    def png_chunks(self) -> list[tuple[bytes, bytes]]:
        """The PNG chunks that store this metadata, for a writer that makes its own (the
        streamed one): ``iCCP`` (the profile, zlib-compressed) and ``eXIf`` (the EXIF data
        without its ``Exif\\0\\0`` prefix), both to go before the image data."""
        chunks = []
        if self.icc_profile:
            chunks.append((b"iCCP", b"ICC profile\0\0" + zlib.compress(self.icc_profile)))
        if self.exif:
            chunks.append((b"eXIf", self.exif.removeprefix(b"Exif\0\0")))
        return chunks


def pillow_metadata(image: PILImage.Image) -> ImageMetadata:
    """The metadata of an image Pillow opened; the image itself is left as it is (its
    orientation tag included, for the transposition that follows). EXIF that Pillow cannot
    rewrite is left out: the image is read all the same."""
    profile = image.info.get("icc_profile") or None
    try:
        found = image.getexif()
        if not len(found):
            return ImageMetadata(profile)
        exif = PILImage.Exif()
        exif.load(found.tobytes())  # a copy: the image's own EXIF keeps its orientation
        exif.pop(_ORIENTATION, None)
        return ImageMetadata(profile, exif.tobytes())
    except Exception:  # noqa: BLE001 - Pillow fails on some odd tags: the pixels matter
        return ImageMetadata(profile)
