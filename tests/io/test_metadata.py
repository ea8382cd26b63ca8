"""A photograph's colour profile and EXIF data reach its result (restorekit.io.metadata)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image as PILImage
from PIL import ImageCms

from restorekit.cli import main
from restorekit.io import read_image, write_image

MAKE, MODEL, ORIENTATION, EXIF_IFD, PIXEL_X, PIXEL_Y = (
    0x010F,
    0x0110,
    0x0112,
    0x8769,
    0xA002,
    0xA003,
)


@pytest.fixture(scope="module")
def profile() -> bytes:
    """An RGB ICC profile (its header names the colour space, bytes 16-20: ``RGB ``)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def camera_jpeg(tmp_path, astronaut, profile):
    """A JPEG as a camera writes it: stored 80 wide x 64 high, EXIF orientation 6 (turn 90
    degrees to view: upright 64 x 80), make, model and pixel dimensions, and a colour profile."""
    exif = PILImage.Exif()
    exif[MAKE], exif[MODEL], exif[ORIENTATION] = "Canon", "EOS R5", 6
    ifd = exif.get_ifd(EXIF_IFD)
    ifd[PIXEL_X], ifd[PIXEL_Y] = 80, 64
    path = tmp_path / "photo.jpg"
    PILImage.fromarray(astronaut[:64, :80]).save(path, icc_profile=profile, exif=exif.tobytes())
    return path


def _run(args: list[str]) -> None:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("out_format", ["jpg", "png", "tif"])
def test_denoise_keeps_the_colour_profile_and_the_exif_data(
    tmp_path, tiny_model_files, camera_jpeg, profile, out_format
):
    out = tmp_path / "out"
    _run(["denoise", camera_jpeg, "-o", out, "--model", tiny_model_files["denoise"], "--format",
          out_format])  # fmt: skip
    result = out / f"photo.{out_format}"
    if out_format == "tif":  # TIFF keeps the profile (EXIF is not written there)
        with tifffile.TiffFile(result) as tif:
            assert tif.pages[0].tags[34675].value == profile
            assert tif.pages[0].shape[:2] == (80, 64)
        return
    with PILImage.open(result) as written:
        assert written.size == (64, 80)  # upright, as read
        assert written.info.get("icc_profile") == profile
        exif = written.getexif()
        assert exif[MAKE] == "Canon" and exif[MODEL] == "EOS R5"
        assert ORIENTATION not in exif  # the pixels are upright: no second turn
        ifd = exif.get_ifd(EXIF_IFD)
        assert (ifd[PIXEL_X], ifd[PIXEL_Y]) == (64, 80)


def test_upscale_sets_the_exif_pixel_dimensions_to_the_result(
    tmp_path, tiny_model_files, camera_jpeg, profile
):
    out = tmp_path / "big"
    _run(["upscale", camera_jpeg, "-o", out, "--model", tiny_model_files["upscale"]])
    with PILImage.open(out / "photo.jpg") as written:
        ifd = written.getexif().get_ifd(EXIF_IFD)
        assert written.size == (128, 160) and (ifd[PIXEL_X], ifd[PIXEL_Y]) == (128, 160)
        assert written.info.get("icc_profile") == profile


def test_read_and_write_image_carry_the_metadata(tmp_path, astronaut, profile):
    """The Python API: read_image's metadata written back by write_image; a TIFF's profile is
    read too; an image without metadata gets none."""
    pixels = astronaut[:32, :40]
    tifffile.imwrite(tmp_path / "a.tif", pixels, photometric="rgb", iccprofile=profile)
    image = read_image(tmp_path / "a.tif")
    assert image.metadata.icc_profile == profile and image.metadata.exif is None
    write_image(tmp_path / "b.png", image.array, metadata=image.metadata)
    assert read_image(tmp_path / "b.png").metadata.icc_profile == profile
    write_image(tmp_path / "c.webp", image.array, metadata=image.metadata)
    assert read_image(tmp_path / "c.webp").metadata.icc_profile == profile
    write_image(tmp_path / "plain.png", pixels)
    plain = read_image(tmp_path / "plain.png").metadata
    assert plain.icc_profile is None and plain.exif is None
    np.testing.assert_array_equal(read_image(tmp_path / "b.png").array, pixels)


def test_metadata_that_does_not_fit_the_result_is_left_out(profile):
    """A profile of another colour space (a CMYK JPEG's is read as RGB; here a Lab one) is
    never written to RGB pixels; EXIF too large for a JPEG's segment is left out of JPEGs only;
    EXIF that cannot be parsed does not stop the write."""
    from restorekit.io.metadata import ImageMetadata

    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert ImageMetadata(lab).for_channels(3).icc_profile is None
    assert ImageMetadata(profile).for_channels(3).icc_profile == profile
    assert ImageMetadata(profile).for_channels(1).icc_profile is None  # RGB profile, grey image
    huge = ImageMetadata(None, b"Exif\0\0" + b"\0" * 70_000)
    assert "exif" not in huge.pillow_options("JPEG") and "exif" in huge.pillow_options("PNG")
    broken = ImageMetadata(profile, b"Exif\0\0not a tiff structure")
    assert broken.sized(10, 20).exif in (None, broken.exif)
