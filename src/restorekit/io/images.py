"""Reading and writing images: PNG, JPEG, BMP, WebP (Pillow) and TIFF (tifffile).

WebP is written lossless (8-bit only).

Conventions:

* An :class:`Image` holds ``array`` as H x W x C in its native dtype (uint8, uint16 or float32),
  C = 1 (gray) or 3 (RGB), channels in R, G, B order. Alpha never enters ``array``: it is kept
  apart in ``alpha`` (H x W, same dtype) and re-attached on write for PNG and TIFF.
* :meth:`Image.to_float` gives C x H x W float32: uint8 / 255, uint16 / 65535, float32 as is.
  Float data is not clipped to [0, 1] (noisy data may lie outside); only NaN and inf are refused.
* EXIF orientation is applied on read (Pillow formats). TIFF orientation tags are not applied.
* The colour profile and EXIF data are read into :attr:`Image.metadata` and written back by
  :func:`write_image` where the format allows (:mod:`restorekit.io.metadata`).
* Only single 2D images are read; multi-page / 3D TIFFs raise :class:`ImageFormatError` (read
  them with :func:`restorekit.io.read_stack` and an axes string).
* Pixel limit (Pillow formats): an image of more than :func:`max_pixels` pixels is refused
  before it is decoded (Pillow's guard against decompression bombs, files that expand to huge
  images), with a message that says how to raise the limit: :func:`set_max_pixels`, the
  environment variable ``RESTOREKIT_MAX_PIXELS`` or the commands' ``--max-pixels``. The
  default is the size Pillow itself refuses (2 x ``PIL.Image.MAX_IMAGE_PIXELS``, about 179
  million pixels). TIFFs (tifffile) have no limit.

16-bit colour PNG: Pillow has only 8-bit colour modes and would silently keep the high byte of
each sample. Such files (IHDR bit depth 16, colour type 2, 4 or 6) are read at full depth by
running Pillow's own PNG decoder twice with other raw modes (see :func:`_decode_png16`).
Writing 16-bit colour data goes to TIFF only; PNG takes 16-bit grayscale without alpha.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from numpy.typing import DTypeLike
from PIL import Image as PILImage
from PIL import ImageOps

from restorekit.errors import ImageFormatError, ImageReadError, PixelLimitError
from restorekit.io.files import atomic_write
from restorekit.io.metadata import ImageMetadata, pillow_metadata
from restorekit.pixels import from_unit, image_to_unit

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_PILLOW_FORMATS = ["PNG", "JPEG", "BMP", "WEBP"]
_ICC_PROFILE_TAG = 34675  # TIFF's InterColorProfile
_WRITE_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 95, "subsampling": 0},
    "WEBP": {"lossless": True, "quality": 100, "method": 4, "exact": True},
}
_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
_SUPPORTED = ", ".join(IMAGE_EXTENSIONS)
_CHANNELS_HINT = "accepted: 1 (gray) or 3 (RGB) channels, each optionally with an alpha channel"

MAX_PIXELS_ENV = "RESTOREKIT_MAX_PIXELS"
# What Pillow refuses by default (it only warns between MAX_IMAGE_PIXELS and twice that).
DEFAULT_MAX_PIXELS = 2 * (PILImage.MAX_IMAGE_PIXELS or 89_478_485)
_max_pixels: int | None = None  # set_max_pixels'


def set_max_pixels(limit: int | None) -> None:
    """Read images of up to ``limit`` pixels (None: back to ``RESTOREKIT_MAX_PIXELS`` or the
    default). Raise it knowingly: the limit guards against decompression bombs."""
    global _max_pixels
    if limit is not None and limit < 1:
        raise ValueError(f"the pixel limit must be at least 1, not {limit}")
    _max_pixels = limit


def max_pixels() -> int:
    """The largest image (in pixels) :func:`read_image` reads from PNG, JPEG, BMP or WebP:
    :func:`set_max_pixels`'s, else ``RESTOREKIT_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`."""
    if _max_pixels is not None:
        return _max_pixels
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(text.replace("_", ""))
    except ValueError:
        limit = 0
    if limit < 1:
        raise ImageReadError(
            f"{MAX_PIXELS_ENV}={text!r} is not a pixel count; set it to a whole number such as "
            f"{DEFAULT_MAX_PIXELS}, or unset it"
        )
    return limit


@contextlib.contextmanager
def _pixel_limit_checked_here() -> Iterator[None]:
    """Pillow's own size guard off while restorekit opens a file: :func:`_check_pixel_limit`
    applies :func:`max_pixels` instead, with a message that says what to do."""
    saved = PILImage.MAX_IMAGE_PIXELS
    PILImage.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        PILImage.MAX_IMAGE_PIXELS = saved


def _check_pixel_limit(path: Path, size: tuple[int, int]) -> None:
    width, height = size
    pixels, limit = width * height, max_pixels()
    if pixels > limit:
        raise PixelLimitError(
            f"{path} is {width}x{height} = {pixels:,} pixels, more than the pixel limit of "
            f"{limit:,}; the file is not damaged. The limit guards against decompression bombs "
            "(small files that expand to huge images); restorekit itself handles any size by "
            f"tiling. If you trust the file, raise the limit: --max-pixels {pixels} (or the "
            f"environment variable {MAX_PIXELS_ENV}={pixels}; in Python "
            f"restorekit.io.set_max_pixels({pixels}))."
        )


@dataclass(frozen=True, eq=False)
class Image:
    """A decoded image.

    ``array`` is H x W x C (C = 1 gray or 3 RGB) in the file's dtype: uint8, uint16 or float32.
    ``alpha`` is H x W with the same dtype, or None. ``format`` is "PNG", "JPEG", "BMP",
    "WEBP" or "TIFF". ``metadata``: its colour profile and EXIF data
    (:mod:`restorekit.io.metadata`), which results written from it keep.
    """

    array: np.ndarray
    alpha: np.ndarray | None
    path: Path | None
    format: str
    metadata: ImageMetadata = field(default_factory=ImageMetadata)

    @property
    def bit_depth(self) -> int:
        """Bits per sample: 8, 16, or 32 (float)."""
        return self.array.dtype.itemsize * 8

    @property
    def channels(self) -> int:
        """Colour channels, alpha excluded: 1 or 3."""
        return self.array.shape[2]

    def to_float(self) -> np.ndarray:
        """C x H x W float32 copy: uint8 / 255, uint16 / 65535, float32 unchanged."""
        return array_to_float(self.array)


def convert_depth(array: np.ndarray, bits: int) -> np.ndarray:
    """H x W x C array as 8-bit, 16-bit or (32) float32 samples, rescaled to the new range."""
    dtype = {8: np.uint8, 16: np.uint16, 32: np.float32}[bits]
    return array if array.dtype == dtype else float_to_array(array_to_float(array), dtype)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """H x W x C array of any supported dtype as uint8 (the 8-bit benchmark convention)."""
    return convert_depth(array, 8)


def array_to_float(array: np.ndarray) -> np.ndarray:
    """H x W x C uint8 / uint16 / float array -> C x H x W float32 (integers scaled to [0, 1])."""
    return image_to_unit(array)


def read_image(path: str | Path) -> Image:
    """Read a PNG, JPEG, BMP, WebP or TIFF file into an :class:`Image` (see the module conventions).

    Raises ImageReadError for missing, empty, unreadable or truncated files and unsupported
    extensions; ImageFormatError for readable images that do not fit (channels, dtype, NaN, 3D).
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"image file not found: {path}. Check the path and the file name.")
    if path.is_dir():
        raise ImageReadError(f"{path} is a folder, not an image file. Give an image file.")
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ImageReadError(
            f"unsupported image type '{path.suffix}' for {path}. Supported: {_SUPPORTED}; "
            "convert the image to one of these."
        )
    if path.stat().st_size == 0:
        raise ImageReadError(
            f"image file is empty (0 bytes): {path}. It was probably not fully written or "
            "copied; create or copy it again."
        )
    if kind == "TIFF":
        pixels, has_alpha, metadata = _read_tiff(path)
    else:
        pixels, has_alpha, kind, metadata = _read_pillow(path, kind)
    if has_alpha:
        array, alpha = pixels[..., :-1], np.ascontiguousarray(pixels[..., -1])
    else:
        array, alpha = pixels, None
    if array.shape[2] not in (1, 3):
        raise ImageFormatError(
            f"{path} has {array.shape[2]} channels (alpha excluded); {_CHANNELS_HINT}. "
            "Save it as a grayscale or RGB image."
        )
    return Image(np.ascontiguousarray(array), alpha, path, kind, metadata)


def image_pixels(path: str | Path) -> int | None:
    """Height x width of an image file from its header (nothing decoded), or None when it
    cannot be read that way (:func:`read_image` then says why)."""
    path = Path(path)
    try:
        if _FORMATS.get(path.suffix.lower()) == "TIFF":
            with tifffile.TiffFile(path) as tiff:
                page = tiff.pages[0]
                return int(page.imagelength) * int(page.imagewidth)
        with PILImage.open(path) as image:
            return image.width * image.height
    except Exception:  # noqa: BLE001 - any unreadable header: the caller reads the file anyway
        return None


def _cannot_read(path: Path, kind: str, exc: Exception) -> ImageReadError:
    return ImageReadError(
        f"cannot read image {path}: {exc}. The file may be truncated, damaged or not a "
        f"{kind} file; export or copy it again."
    )


def _read_pillow(path: Path, expected: str) -> tuple[np.ndarray, bool, str, ImageMetadata]:
    """H x W x C pixels (alpha last if any), whether alpha is present, the actual format and
    the metadata."""
    try:
        with _pixel_limit_checked_here(), PILImage.open(path, formats=_PILLOW_FORMATS) as im:
            _check_pixel_limit(path, im.size)
            kind = "JPEG" if im.format == "MPO" else im.format
            bit_depth, color_type = _png_header(path) if kind == "PNG" else (8, 0)
            if bit_depth == 16 and color_type in (2, 4, 6):
                pixels16 = _decode_png16(path, color_type)
                return pixels16, color_type != 2, kind, pillow_metadata(im)
            im.load()  # Pillow decodes lazily: force it here so truncation is caught
            metadata = pillow_metadata(im)
            im = ImageOps.exif_transpose(im)
    except ImageReadError:
        raise
    except Exception as exc:
        raise _cannot_read(path, expected, exc) from exc

    if im.mode in ("I;16", "I;16L", "I;16B", "I"):
        pixels = np.asarray(im)
        if pixels.min() < 0 or pixels.max() > 65535:
            raise ImageFormatError(
                f"{path} holds 32-bit integer samples outside 0..65535; only 8- and 16-bit "
                "integer images are read. Save it as 16-bit or as a float32 TIFF."
            )
        return pixels.astype(np.uint16)[..., None], False, kind, metadata
    has_alpha = "A" in im.mode or "a" in im.mode or "transparency" in im.info
    if im.mode in ("1", "L", "LA", "La"):
        target = "LA" if has_alpha else "L"
    elif im.mode in ("P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"):
        target = "RGBA" if has_alpha else "RGB"
    else:
        raise ImageFormatError(
            f"{path} uses the unsupported Pillow mode '{im.mode}'; save it as 8-bit gray or RGB."
        )
    pixels = np.asarray(im.convert(target))
    return pixels.reshape(pixels.shape[0], pixels.shape[1], -1), has_alpha, kind, metadata


def _png_header(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) from the IHDR chunk, which always follows the PNG signature."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[12:16] != b"IHDR":
        return 0, 0
    return head[24], head[25]


def _decode_png16(path: Path, color_type: int) -> np.ndarray:
    """Full-depth H x W x C uint16 pixels of a 16-bit gray+alpha, RGB or RGBA PNG.

    Pillow keeps only the high byte of 16-bit colour samples (raw mode "RGB;16B"). Its decoder
    (unfiltering, interlacing, checksums) is reused with other raw modes of the same pixel size:
    "RGB;16L" reads the samples as little-endian, so it keeps the low bytes; 16-bit gray+alpha
    (4 bytes a pixel) decodes byte for byte as 8-bit "RGBA". EXIF orientation is applied.
    """

    def decode(rawmode: str) -> np.ndarray:
        with PILImage.open(path, formats=["PNG"]) as im:
            im.tile = [(tile[0], tile[1], tile[2], rawmode) for tile in im.tile]
            im.load()
            return np.asarray(ImageOps.exif_transpose(im))

    if color_type == 4:
        return np.ascontiguousarray(decode("RGBA")).view(">u2").astype(np.uint16)
    mode = "RGB" if color_type == 2 else "RGBA"
    high = decode(f"{mode};16B").astype(np.uint16)
    low = decode(f"{mode};16L").astype(np.uint16)
    return high << 8 | low


def _read_tiff(path: Path) -> tuple[np.ndarray, bool, ImageMetadata]:
    """H x W x C pixels (alpha last if any) of a single-image TIFF, whether alpha is there,
    and its metadata (the ICC profile)."""
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            page = tif.pages[0]
            axes, photometric, extrasamples = series.axes, page.photometric, page.extrasamples
            profile = page.tags.get(_ICC_PROFILE_TAG)
            metadata = ImageMetadata(bytes(profile.value) if profile is not None else None)
            if axes not in ("YX", "YXS", "SYX"):
                raise _stack_error(path, tuple(series.shape), axes)
            pixels = series.asarray()
    except ImageFormatError:
        raise
    except Exception as exc:
        raise _cannot_read(path, "TIFF", exc) from exc

    if photometric not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
        name = getattr(photometric, "name", photometric)
        raise ImageFormatError(
            f"{path} uses TIFF photometric interpretation {name}; only grayscale (min-is-black) "
            "and RGB TIFFs are read. Convert it to grayscale or RGB."
        )
    if axes == "SYX":
        pixels = np.moveaxis(pixels, 0, -1)
    elif axes == "YX":
        pixels = pixels[..., None]

    dtype = {"u1": np.uint8, "u2": np.uint16, "f2": np.float32, "f4": np.float32, "f8": np.float32}
    target = dtype.get(f"{pixels.dtype.kind}{pixels.dtype.itemsize}")
    if target is None:
        raise ImageFormatError(
            f"{path} has samples of type {pixels.dtype}; supported: uint8, uint16 and float "
            "(read as float32). Convert the image to one of these."
        )
    pixels = pixels.astype(target)
    if target == np.float32:
        bad = int(np.count_nonzero(~np.isfinite(pixels)))
        if bad:
            raise ImageFormatError(
                f"{path} contains {bad} NaN or infinite value(s); only finite values can be "
                "processed. Replace them (e.g. with numpy.nan_to_num) and save the file again."
            )

    alpha_kinds = (tifffile.EXTRASAMPLE.ASSOCALPHA, tifffile.EXTRASAMPLE.UNASSALPHA)
    rgba = photometric == tifffile.PHOTOMETRIC.RGB and pixels.shape[2] == 4
    has_alpha = rgba or (len(extrasamples) == 1 and extrasamples[0] in alpha_kinds)
    return pixels, has_alpha, metadata


def _stack_error(path: Path, shape: tuple[int, ...], axes: str) -> ImageFormatError:
    """What a multi-page / 3D TIFF given as an image is, and the ``--axes`` that reads it."""
    # tifffile's S is samples of a pixel (colour): restorekit's C; its Q, I, ... (unnamed or
    # image sequences) are separate images: restorekit's S (see restorekit.io.axes).
    suggested = axes.replace("S", "C")
    unknown = [a for a in suggested if a not in "STCZYX"]
    if len(unknown) == 1 and "S" not in suggested:
        suggested = suggested.replace(unknown[0], "S")
    elif unknown:
        suggested = "SYX" if len(shape) == 3 else ""
    pages = int(np.prod([n for n, a in zip(shape, axes, strict=True) if a not in "YXS"]))
    use = (
        f"pass --axes {suggested} to `restorekit denoise` (in Python: "
        f"restorekit.io.read_stack(path, {suggested!r}))"
        if suggested
        else "pass --axes to `restorekit denoise` with one letter per dimension"
    )
    return ImageFormatError(
        f"{path} is a stack of {pages} pages (shape {shape}, axes {axes} as tifffile reports "
        "them), not a single 2D image; without --axes only one-page gray or RGB images are "
        f"read. To denoise it as a stack, {use}. Axes letters: S separate images (each denoised "
        "by a 2D model), Z a volume's depth (3D models), C channels, Y X the plane; e.g. "
        "--axes SYX or --axes ZYX."
    )


def float_to_array(pixels: np.ndarray, dtype: DTypeLike) -> np.ndarray:
    """C x H x W (or H x W) float pixels -> H x W x C array of ``dtype``.

    uint8 / uint16: scaled by 255 / 65535, rounded half up and clipped to the dtype's range
    (``clip(x * 255 + 0.5, 0, 255)`` then truncation, as in the Neighbor2Neighbor code).
    float32: values unchanged.
    """
    dtype = np.dtype(dtype)
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be uint8, uint16 or float32, not {dtype}")
    x = np.asarray(pixels, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ImageFormatError(
            f"pixels must be C x H x W or H x W, got shape {x.shape}; remove the batch axis."
        )
    x = x.transpose(1, 2, 0)
    if dtype == np.float32:
        return x.copy()
    if np.isnan(x).any():
        raise ImageFormatError(
            f"pixels contain {int(np.isnan(x).sum())} NaN value(s) and cannot be converted to "
            f"{dtype}; the result that produced them is invalid."
        )
    return from_unit(x, dtype)


def write_image(
    path: str | Path,
    array: np.ndarray,
    alpha: np.ndarray | None = None,
    metadata: ImageMetadata | None = None,
) -> None:
    """Write ``array`` (H x W x C with C in 1, 3, or H x W) to ``path``; format from extension.

    dtype uint8 goes to any format; uint16 to TIFF, or PNG when gray without alpha; float32 to
    TIFF only. ``alpha`` (H x W, same dtype) is stored in PNG and TIFF and dropped with a
    warning for JPEG and BMP. JPEG is written at quality 95 without chroma subsampling, WebP
    lossless. ``metadata`` (an input's colour profile and EXIF data) is stored as the format
    allows (:mod:`restorekit.io.metadata`).
    Parent folders are created; the file is written to a temporary file in the same folder,
    then renamed over ``path``, so a crash never leaves a half-written image.
    """
    path = Path(path)
    kind = image_kind(path)
    pixels = check_pixels(path, kind, array, alpha)
    if alpha is not None and kind in ("JPEG", "BMP"):
        msg = (
            f"{kind} has no alpha channel: alpha dropped when writing {path} (PNG and TIFF keep it)"
        )
        warnings.warn(msg, stacklevel=2)
        alpha = None
    if alpha is not None:
        pixels = np.concatenate([pixels, alpha[..., None]], axis=2)

    metadata = (metadata or ImageMetadata()).for_channels(pixels.shape[2] - (alpha is not None))

    def write(tmp: Path) -> None:
        if kind == "TIFF":
            _write_tiff(tmp, pixels, alpha is not None, metadata)
        else:
            image = PILImage.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
            options = _WRITE_OPTIONS.get(kind, {}) | metadata.pillow_options(kind)
            image.save(tmp, format=kind, **options)

    atomic_write(path, write)


def image_kind(path: Path) -> str:
    """The format written for ``path``'s extension ("PNG", "JPEG", "TIFF", ...); an unknown
    extension is an :class:`ImageFormatError` naming the ones supported."""
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ImageFormatError(
            f"cannot write {path}: unsupported extension '{path.suffix}'. Use one of {_SUPPORTED}."
        )
    return kind


def check_pixels(path: Path, kind: str, array: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Validate what write_image is given; return the pixels as H x W x C."""
    array = np.asarray(array)
    pixels = array[..., None] if array.ndim == 2 else array
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise ImageFormatError(
            f"cannot write {path}: array has shape {array.shape}; expected H x W or H x W x C "
            "with C = 1 (gray) or 3 (RGB). Pass alpha separately with alpha=."
        )
    if pixels.dtype not in _DTYPES:
        raise ImageFormatError(
            f"cannot write {path}: array dtype is {pixels.dtype}; expected uint8, uint16 or "
            "float32. Convert float pixels with float_to_array()."
        )
    if alpha is not None and (alpha.shape != pixels.shape[:2] or alpha.dtype != pixels.dtype):
        raise ImageFormatError(
            f"cannot write {path}: alpha must be H x W {pixels.dtype} {pixels.shape[:2]}, got "
            f"{alpha.dtype} {alpha.shape}."
        )
    if pixels.dtype == np.uint16 and kind != "TIFF":
        gray_png = kind == "PNG" and pixels.shape[2] == 1 and alpha is None
        if not gray_png:
            raise ImageFormatError(
                f"cannot write 16-bit data to {path}: {kind} cannot store it here. 16-bit images "
                "can be saved as TIFF (.tif, .tiff), or as PNG if grayscale without alpha."
            )
    if pixels.dtype == np.float32:
        if kind != "TIFF":
            raise ImageFormatError(
                f"cannot write float32 data to {path}: only TIFF (.tif, .tiff) stores floats. "
                "Use a .tif path, or convert with float_to_array(pixels, np.uint8)."
            )
        bad = int(np.count_nonzero(~np.isfinite(pixels)))
        if bad:
            raise ImageFormatError(
                f"cannot write {path}: the array contains {bad} NaN or infinite value(s)."
            )
    return pixels


def _write_tiff(f: Path, pixels: np.ndarray, has_alpha: bool, metadata: ImageMetadata) -> None:
    samples = pixels.shape[2]
    tifffile.imwrite(
        f,
        pixels[..., 0] if samples == 1 else pixels,
        **tiff_layout(samples, has_alpha),
        **metadata.tiff_options(),
    )


def tiff_layout(samples: int, has_alpha: bool) -> dict[str, Any]:
    """tifffile's layout arguments for ``samples`` channels per pixel, the last one alpha if
    ``has_alpha``: RGB or grey, interleaved, unassociated alpha."""
    colour = samples - has_alpha
    return {
        "photometric": "rgb" if colour == 3 else "minisblack",
        "planarconfig": "contig" if samples > 1 else None,
        "extrasamples": ["unassalpha"] if has_alpha else None,
    }


def _warn_skipped(folder: Path) -> None:
    """Say which subfolders and files of other types a folder input leaves out (never silent)."""
    subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name[0] != ".")
    others = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file() and p.name[0] != "." and p.suffix.lower() not in IMAGE_EXTENSIONS
    )
    for kind, names, hint in (
        ("subfolder(s)", subfolders, "give them as inputs too to process them"),
        ("file(s) of other types", others, f"only {_SUPPORTED} are read"),
    ):
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            warnings.warn(
                f"{folder}: left out {len(names)} {kind}: {shown}; {hint}",
                InputSkippedWarning,
                stacklevel=3,
            )


class InputSkippedWarning(UserWarning):
    """A folder input held subfolders or non-image files that were not read."""


def list_images(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Image files named by ``inputs``: files as given, folders expanded.

    Folders are not searched recursively; their files are sorted by name, filtered to
    IMAGE_EXTENSIONS (any case), hidden files skipped; the subfolders and other files left out
    are named in an :class:`InputSkippedWarning`. Raises ImageReadError if a path does not
    exist, a given file has an unsupported extension, or a folder holds no image.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise ImageReadError(f"input not found: {path}. Check the path.")
        if path.is_dir():
            files = sorted((p for p in path.iterdir() if _is_listed_image(p)), key=lambda p: p.name)
            if not files:
                raise ImageReadError(
                    f"no images found in folder {path} (looked for {_SUPPORTED}, not in "
                    "subfolders). Check the folder or give image files directly."
                )
            found.extend(files)
            _warn_skipped(path)
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            found.append(path)
        else:
            raise ImageReadError(
                f"unsupported image type '{path.suffix}' for {path}. Supported: {_SUPPORTED}."
            )
    if not found:
        raise ImageReadError("no input images given. Give image files or folders.")
    return found


def _is_listed_image(path: Path) -> bool:
    return (
        path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()
    )
