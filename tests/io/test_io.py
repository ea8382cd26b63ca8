"""Tests of restorekit.io: reading, writing and listing images."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageFile

from restorekit.errors import ImageFormatError, ImageReadError
from restorekit.io import (
    IMAGE_EXTENSIONS,
    Image,
    float_to_array,
    list_images,
    read_image,
    write_image,
)

H, W = 16, 24


def random_pixels(channels: int, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        return rng.uniform(-0.2, 1.2, (H, W, channels)).astype(np.float32)
    return rng.integers(0, np.iinfo(dtype).max + 1, (H, W, channels), dtype=dtype)


def write_png16(path: Path, pixels: np.ndarray) -> None:
    """A 16-bit PNG written by hand (Pillow cannot), rows cycling through all 5 filter types."""
    h, w, c = pixels.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    bpp = 2 * c
    rows = [pixels[y].astype(">u2").tobytes() for y in range(h)]
    raw, prev = b"", bytes(len(rows[0]))
    for y, row in enumerate(rows):
        kind = y % 5
        encoded = bytearray()
        for i, value in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c_ = prev[i - bpp] if i >= bpp else 0
            p = a + b - c_
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c_)
            paeth = a if pa <= pb and pa <= pc else (b if pb <= pc else c_)
            predictor = (0, a, b, (a + b) // 2, paeth)[kind]
            encoded.append((value - predictor) % 256)
        raw += bytes([kind]) + bytes(encoded)
        prev = row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif"])
@pytest.mark.parametrize("channels", [1, 3])
def test_uint8_gray_and_rgb_round_trip_exactly(tmp_path, ext, channels):
    pixels = random_pixels(channels)
    path = tmp_path / f"img{ext}"
    write_image(path, pixels)
    img = read_image(path)
    assert img.array.dtype == np.uint8
    assert img.array.shape == (H, W, channels)
    np.testing.assert_array_equal(img.array, pixels)
    assert img.alpha is None
    assert img.bit_depth == 8 and img.channels == channels
    assert img.path == path


def test_webp_is_written_lossless_with_its_alpha(tmp_path):
    """WebP (RGB or RGBA only: grey is stored as RGB) round-trips exactly."""
    pixels, alpha = random_pixels(3), random_pixels(1, seed=1)[..., 0]
    write_image(tmp_path / "a.webp", pixels, alpha)
    img = read_image(tmp_path / "a.webp")
    assert img.format == "WEBP" and img.array.dtype == np.uint8
    np.testing.assert_array_equal(img.array, pixels)
    np.testing.assert_array_equal(img.alpha, alpha)
    write_image(tmp_path / "b.webp", pixels)
    np.testing.assert_array_equal(read_image(tmp_path / "b.webp").array, pixels)


def test_two_dimensional_array_is_written_as_gray(tmp_path):
    pixels = random_pixels(1)[..., 0]
    write_image(tmp_path / "gray.png", pixels)
    np.testing.assert_array_equal(read_image(tmp_path / "gray.png").array[..., 0], pixels)


def test_uint16_gray_png_reads_back_as_uint16(tmp_path):
    pixels = random_pixels(1, np.uint16)
    write_image(tmp_path / "deep.png", pixels)
    img = read_image(tmp_path / "deep.png")
    assert img.array.dtype == np.uint16 and img.bit_depth == 16 and img.format == "PNG"
    np.testing.assert_array_equal(img.array, pixels)


@pytest.mark.parametrize("channels", [1, 3])
def test_uint16_tiff_round_trips_exactly(tmp_path, channels):
    pixels = random_pixels(channels, np.uint16)
    write_image(tmp_path / "deep.tiff", pixels)
    img = read_image(tmp_path / "deep.tiff")
    assert img.array.dtype == np.uint16 and img.format == "TIFF"
    np.testing.assert_array_equal(img.array, pixels)


def test_float32_tiff_round_trips_values_outside_0_1(tmp_path):
    pixels = random_pixels(3, np.float32)
    assert pixels.min() < 0 and pixels.max() > 1
    write_image(tmp_path / "noisy.tif", pixels)
    img = read_image(tmp_path / "noisy.tif")
    assert img.array.dtype == np.float32 and img.bit_depth == 32
    np.testing.assert_array_equal(img.array, pixels)
    np.testing.assert_array_equal(img.to_float(), pixels.transpose(2, 0, 1))


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 3])
def test_alpha_is_kept_apart_and_round_trips(tmp_path, ext, channels):
    pixels, alpha = random_pixels(channels), random_pixels(1, seed=1)[..., 0]
    write_image(tmp_path / f"a{ext}", pixels, alpha)
    img = read_image(tmp_path / f"a{ext}")
    assert img.channels == channels
    np.testing.assert_array_equal(img.array, pixels)
    np.testing.assert_array_equal(img.alpha, alpha)


def test_uint16_rgba_tiff_keeps_alpha(tmp_path):
    pixels, alpha = random_pixels(3, np.uint16), random_pixels(1, np.uint16, seed=1)[..., 0]
    write_image(tmp_path / "a.tif", pixels, alpha)
    img = read_image(tmp_path / "a.tif")
    np.testing.assert_array_equal(img.array, pixels)
    np.testing.assert_array_equal(img.alpha, alpha)


@pytest.mark.parametrize("ext", [".jpg", ".jpeg"])
def test_jpeg_round_trip_is_close(tmp_path, ext):
    yy, xx = np.mgrid[0:H, 0:W]
    pixels = np.stack([xx * 10, yy * 15, 255 - xx * 10], axis=2).astype(np.uint8)
    write_image(tmp_path / f"smooth{ext}", pixels)
    img = read_image(tmp_path / f"smooth{ext}")
    assert img.format == "JPEG" and img.array.shape == (H, W, 3)
    assert np.abs(img.array.astype(int) - pixels).mean() < 3


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16bit_color_png_is_read_at_full_depth(tmp_path, channels):
    pixels = random_pixels(channels, np.uint16)
    write_png16(tmp_path / "deep.png", pixels)
    img = read_image(tmp_path / "deep.png")
    has_alpha = channels in (2, 4)
    assert img.array.dtype == np.uint16
    np.testing.assert_array_equal(img.array, pixels[..., : channels - has_alpha])
    if has_alpha:
        np.testing.assert_array_equal(img.alpha, pixels[..., -1])


# --- Pillow modes and orientation ----------------------------------------------------------------


def test_one_bit_png_reads_as_uint8_0_and_255(tmp_path):
    mask = random_pixels(1)[..., 0] > 127
    PILImage.fromarray(mask).save(tmp_path / "mask.png")
    img = read_image(tmp_path / "mask.png")
    assert img.array.dtype == np.uint8
    np.testing.assert_array_equal(img.array[..., 0], np.where(mask, 255, 0))


def test_palette_png_reads_as_rgb_and_transparency_as_alpha(tmp_path):
    index = (random_pixels(1)[..., 0] % 3).astype(np.uint8)
    palette = [[0, 0, 0], [255, 0, 0], [0, 0, 255]]
    im = PILImage.fromarray(index, mode="P")
    im.putpalette(sum(palette, []))
    im.save(tmp_path / "opaque.png")
    im.save(tmp_path / "holes.png", transparency=0)

    opaque = read_image(tmp_path / "opaque.png")
    np.testing.assert_array_equal(opaque.array, np.array(palette, np.uint8)[index])
    assert opaque.alpha is None
    holes = read_image(tmp_path / "holes.png")
    assert holes.channels == 3
    np.testing.assert_array_equal(holes.alpha, np.where(index == 0, 0, 255))


def test_cmyk_jpeg_reads_as_rgb(tmp_path):
    PILImage.new("CMYK", (W, H), (255, 0, 0, 0)).save(tmp_path / "cyan.jpg", quality=95)
    img = read_image(tmp_path / "cyan.jpg")
    assert img.array.shape == (H, W, 3)
    assert np.abs(img.array.astype(int) - [0, 255, 255]).max() < 8


@pytest.mark.parametrize(("orientation", "turns"), [(6, -1), (8, 1)])
def test_exif_orientation_is_applied_on_read(tmp_path, orientation, turns):
    pixels = np.zeros((H, W, 3), np.uint8)
    pixels[:8, :8] = 255  # a bright top-left block shows where the image was turned
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    PILImage.fromarray(pixels).save(tmp_path / "turned.jpg", exif=exif.tobytes(), quality=95)
    img = read_image(tmp_path / "turned.jpg")
    assert img.array.shape == (W, H, 3)
    assert np.abs(img.array.astype(int) - np.rot90(pixels, turns)).mean() < 4


# --- read errors -----------------------------------------------------------------------------


def assert_names_file(excinfo: pytest.ExceptionInfo, path: Path) -> None:
    assert str(path) in str(excinfo.value)


def test_missing_file_raises_read_error(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(ImageReadError, match="not found") as excinfo:
        read_image(path)
    assert_names_file(excinfo, path)


def test_empty_file_raises_read_error(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(ImageReadError, match="empty") as excinfo:
        read_image(path)
    assert_names_file(excinfo, path)


@pytest.mark.parametrize("name", ["notes.png", "notes.tif"])
def test_text_file_with_image_extension_raises_read_error(tmp_path, name):
    path = tmp_path / name
    path.write_text("this is not an image\n")
    with pytest.raises(ImageReadError) as excinfo:
        read_image(path)
    assert_names_file(excinfo, path)


def test_folder_and_unsupported_extension_raise_read_error(tmp_path):
    with pytest.raises(ImageReadError, match="folder") as excinfo:
        read_image(tmp_path)
    assert_names_file(excinfo, tmp_path)
    gif = tmp_path / "anim.gif"
    PILImage.new("L", (W, H)).save(gif)
    with pytest.raises(ImageReadError, match=r"\.png") as excinfo:
        read_image(gif)
    assert_names_file(excinfo, gif)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_truncated_file_raises_read_error(tmp_path, ext):
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    path = tmp_path / f"cut{ext}"
    write_image(path, random_pixels(3))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated") as excinfo:
        read_image(path)
    assert_names_file(excinfo, path)


def test_truncated_16bit_color_png_raises_read_error(tmp_path):
    path = tmp_path / "cut.png"
    write_png16(path, random_pixels(3, np.uint16))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as excinfo:
        read_image(path)
    assert_names_file(excinfo, path)


def test_float_tiff_with_nan_or_inf_raises_format_error_with_count(tmp_path):
    pixels = random_pixels(1, np.float32)
    pixels[0, :2] = np.nan
    pixels[1, 0] = np.inf
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, pixels[..., 0])
    with pytest.raises(ImageFormatError, match="3 NaN or infinite") as excinfo:
        read_image(path)
    assert_names_file(excinfo, path)


@pytest.mark.parametrize("channels", [2, 5])
def test_tiff_with_unusable_channel_count_raises_format_error(tmp_path, channels):
    path = tmp_path / "odd.tif"
    pixels = random_pixels(channels)
    tifffile.imwrite(path, pixels, photometric="minisblack", planarconfig="contig")
    with pytest.raises(ImageFormatError, match=f"{channels} channels") as excinfo:
        read_image(path)
    assert_names_file(excinfo, path)
    assert "accepted" in str(excinfo.value)


def test_multi_page_tiff_raises_format_error(tmp_path):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros((3, H, W), np.uint8), photometric="minisblack")
    with pytest.raises(ImageFormatError, match=r"is a stack of 3 pages .*--axes SYX") as excinfo:
        read_image(path)
    assert_names_file(excinfo, path)


# --- write rules -----------------------------------------------------------------------------


def test_write_creates_parent_folders_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "a" / "b" / "out.png"
    write_image(path, random_pixels(3))
    assert os.listdir(path.parent) == ["out.png"]


def test_failed_write_keeps_previous_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    write_image(path, random_pixels(3))
    before = path.read_bytes()

    def crashing_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"half an image")
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(PILImage.Image, "save", crashing_save)
    with pytest.raises(RuntimeError):
        write_image(path, random_pixels(3, seed=1))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.png"]


@pytest.mark.parametrize("name", ["out.gif", "out.jp2", "out"])
def test_write_with_unsupported_extension_raises_format_error(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(ImageFormatError, match=r"\.tif") as excinfo:
        write_image(path, random_pixels(3))
    assert_names_file(excinfo, path)
    assert not path.exists()


@pytest.mark.parametrize(("name", "channels"), [("out.jpg", 1), ("out.bmp", 1), ("out.png", 3)])
def test_uint16_to_format_that_cannot_hold_it_raises_format_error(tmp_path, name, channels):
    path = tmp_path / name
    with pytest.raises(ImageFormatError, match="TIFF") as excinfo:
        write_image(path, random_pixels(channels, np.uint16))
    assert_names_file(excinfo, path)


@pytest.mark.parametrize("name", ["out.png", "out.jpg", "out.bmp"])
def test_float32_to_non_tiff_raises_format_error(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(ImageFormatError, match="TIFF") as excinfo:
        write_image(path, random_pixels(3, np.float32))
    assert_names_file(excinfo, path)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((H, W, 4), np.uint8),
        np.zeros((H, W, 2), np.uint8),
        np.zeros((2, H, W, 3), np.uint8),
        np.zeros((H, W, 3), np.float64),
        np.zeros((H, W, 3), np.int32),
    ],
)
def test_write_rejects_bad_shape_or_dtype(tmp_path, array):
    with pytest.raises(ImageFormatError, match="out.tif"):
        write_image(tmp_path / "out.tif", array)


def test_write_rejects_alpha_of_wrong_shape_or_dtype(tmp_path):
    with pytest.raises(ImageFormatError, match="alpha"):
        write_image(tmp_path / "o.png", random_pixels(3), np.zeros((H, W + 1), np.uint8))
    with pytest.raises(ImageFormatError, match="alpha"):
        write_image(tmp_path / "o.png", random_pixels(3), np.zeros((H, W), np.uint16))


@pytest.mark.parametrize("ext", [".jpg", ".bmp"])
def test_alpha_is_dropped_with_warning_for_jpeg_and_bmp(tmp_path, ext):
    with pytest.warns(UserWarning, match="alpha dropped"):
        write_image(tmp_path / f"o{ext}", random_pixels(3), random_pixels(1)[..., 0])
    assert read_image(tmp_path / f"o{ext}").alpha is None


# --- float conversion ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_to_float_and_float_to_array_round_trip_exactly(dtype):
    top = np.iinfo(dtype).max
    every_value = np.arange(top + 1, dtype=dtype).reshape(-1, 256, 1)
    img = Image(every_value, None, None, "PNG")
    pixels = img.to_float()
    assert pixels.dtype == np.float32 and pixels.shape == (1, every_value.shape[0], 256)
    assert pixels.min() == 0.0 and pixels.max() == 1.0
    np.testing.assert_array_equal(float_to_array(pixels, dtype), every_value)


def test_float_to_array_rounds_half_up_and_clips():
    pixels = np.array([[-0.1, 0.0, 0.5, 1.0, 1.3]], np.float32)
    np.testing.assert_array_equal(float_to_array(pixels, np.uint8)[..., 0], [[0, 0, 128, 255, 255]])
    noisy = np.random.default_rng(0).uniform(-0.2, 1.2, (3, H, W)).astype(np.float32)
    reference = np.clip(noisy * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    np.testing.assert_array_equal(float_to_array(noisy, np.uint8), reference)


def test_float_to_array_moves_channels_last_and_keeps_float_values():
    pixels = np.random.default_rng(0).uniform(-0.2, 1.2, (3, H, W)).astype(np.float32)
    out = float_to_array(pixels, np.float32)
    assert out.shape == (H, W, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, pixels.transpose(1, 2, 0))
    assert float_to_array(pixels[0], np.uint8).shape == (H, W, 1)


def test_float_to_array_rejects_nan_for_integer_output():
    pixels = np.zeros((1, H, W), np.float32)
    pixels[0, 0, 0] = np.nan
    with pytest.raises(ImageFormatError, match="1 NaN"):
        float_to_array(pixels, np.uint8)


# --- listing ---------------------------------------------------------------------------------


def test_list_images_of_folder_is_sorted_filtered_and_not_recursive(tmp_path):
    for name in ["b.png", "a.JPG", "c.tif", ".hidden.png", "notes.txt", "sub/d.png"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert list_images(tmp_path) == [tmp_path / "a.JPG", tmp_path / "b.png", tmp_path / "c.tif"]


def test_list_images_keeps_order_of_files_and_folders(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "x.bmp").write_bytes(b"x")
    (tmp_path / "z.tiff").write_bytes(b"x")
    found = list_images([str(tmp_path / "z.tiff"), tmp_path / "dir"])
    assert found == [tmp_path / "z.tiff", tmp_path / "dir" / "x.bmp"]


def test_list_images_of_missing_path_raises_read_error(tmp_path):
    with pytest.raises(ImageReadError, match="not found") as excinfo:
        list_images([tmp_path / "missing"])
    assert_names_file(excinfo, tmp_path / "missing")


def test_list_images_of_folder_without_images_names_folder_and_extensions(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(ImageReadError) as excinfo:
        list_images(tmp_path)
    assert_names_file(excinfo, tmp_path)
    assert all(ext in str(excinfo.value) for ext in IMAGE_EXTENSIONS)


def test_list_images_rejects_file_with_unsupported_extension(tmp_path):
    path = tmp_path / "clip.gif"
    path.write_bytes(b"x")
    with pytest.raises(ImageReadError, match="unsupported") as excinfo:
        list_images(path)
    assert_names_file(excinfo, path)
