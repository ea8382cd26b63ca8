"""Streaming inference: tiles read lazily, output rows blended band by band and written as they
come, so that a file of any size is restored within a bound on the whole process's memory."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from restorekit.errors import ConfigError, ImageFormatError
from restorekit.infer.files import FileOptions, restore_file
from restorekit.infer.model import load_model
from restorekit.infer.process_memory import working_budget
from restorekit.infer.tiling import ArraySource, pad_to_multiple, tiled_apply, tiled_blocks
from restorekit.io import read_image, write_image
from restorekit.io.streaming import held_bytes, write_image_rows


def box_filter(batch: np.ndarray) -> np.ndarray:
    """A 5 x 5 mean: a network of reach 2 (any tiling with overlap >= 8 equals the whole)."""
    padded = np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    out = np.zeros_like(batch)
    for dy in range(5):
        for dx in range(5):
            out += padded[:, :, dy : dy + batch.shape[2], dx : dx + batch.shape[3]]
    return out / 25


@pytest.fixture(scope="module")
def tiny_model(tiny_model_files):
    return tiny_model_files["denoise"]  # an untrained 8-feature unet-n2n (conftest)


def test_blocks_come_in_order_band_by_band_and_equal_the_whole():
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 150, 90), dtype=np.float32)
    blocks = list(tiled_blocks(box_filter, ArraySource(x, 8), 8, tile=48, overlap=16))
    rows = [first for first, _ in blocks]
    assert rows == sorted(rows) and rows[0] == 0 and len(blocks) > 2
    assert all(block.shape[2] <= 48 for _, block in blocks)  # at most one band of rows
    out = np.concatenate([block for _, block in blocks], axis=2)
    whole = box_filter(pad_to_multiple(x, 8))[:, :, :150, :90]
    np.testing.assert_allclose(out, whole, atol=1e-5)
    np.testing.assert_allclose(tiled_apply(box_filter, x, 8, 48, 16), whole, atol=1e-5)


def test_tiles_are_read_from_the_caller_s_dtype_and_views_without_a_float_copy(tiny_model):
    """uint8 pixels (here a memory map of a raw file) are read tile by tile and give the same
    result as the float image; the source never converts the whole array."""
    model = load_model(tiny_model, "cpu", tile=64, overlap=32)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (100, 130, 3), dtype=np.uint8)
    reads = []
    source = ArraySource(np.moveaxis(image, 2, 0)[None], 32, lambda b: reads.append(b.shape) or b)
    source.read(0, (slice(0, 64), slice(96, 160)))  # beyond the right edge: padded by index
    assert reads == [(3, 64, 64)]
    mapped = np.memmap(Path(tiny_model).with_suffix(".raw"), np.uint8, "w+", shape=image.shape)
    mapped[:] = image
    as_uint8 = model.denoise(mapped, check=False)
    as_float = model.denoise(image.astype(np.float32) / 255, check=False)
    assert as_uint8.dtype == np.uint8
    assert np.abs(as_uint8.astype(int) - np.clip(np.round(as_float * 255), 0, 255)).max() <= 1


@pytest.mark.parametrize(
    ("suffix", "dtype", "channels", "alpha"),
    [
        (".png", np.uint8, 3, False),
        (".png", np.uint8, 3, True),
        (".png", np.uint16, 1, False),
        (".tif", np.uint16, 3, True),
        (".tif", np.float32, 1, False),
        (".jpg", np.uint8, 3, False),
    ],
)
def test_rows_written_as_they_come_read_back_as_the_whole_image(
    tmp_path, suffix, dtype, channels, alpha
):
    rng = np.random.default_rng(2)
    shape = (150, 70, channels)
    if dtype == np.float32:
        image = rng.random(shape, dtype=np.float32)
    else:
        image = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    mask = rng.integers(0, 256, shape[:2]).astype(dtype) if alpha else None
    rows = [(first, image[first : first + 41]) for first in range(0, 150, 41)]
    target = tmp_path / f"out{suffix}"
    write_image_rows(target, shape, np.dtype(dtype), rows, mask)
    back = read_image(target)
    if suffix == ".jpg":
        assert back.array.shape == shape and np.abs(back.array.astype(int) - image).mean() < 8
        return
    np.testing.assert_array_equal(back.array, image)
    if alpha:
        np.testing.assert_array_equal(back.alpha, mask)
    if suffix == ".tif":
        with tifffile.TiffFile(target) as tiff:
            assert tiff.pages[0].rowsperstrip == 64  # written in strips, not in one piece
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left


def test_rows_out_of_order_or_short_are_refused_and_leave_no_file(tmp_path):
    image = np.zeros((20, 10, 3), np.uint8)
    target = tmp_path / "out.png"
    with pytest.raises(ValueError, match="out of order"):
        write_image_rows(target, image.shape, image.dtype, [(10, image[10:]), (0, image[:10])])
    with pytest.raises(ValueError, match="ended at 10 of 20"):
        write_image_rows(target, image.shape, image.dtype, [(0, image[:10])])
    with pytest.raises(ImageFormatError, match="16-bit"):
        write_image_rows(target, image.shape, np.dtype(np.uint16), [])
    assert list(tmp_path.iterdir()) == []
    assert held_bytes(target, (20, 10, 3), np.dtype(np.uint8)) == 30  # one PNG row
    assert held_bytes(tmp_path / "o.jpg", (20, 10, 3), np.dtype(np.uint8)) == 600  # whole


def test_a_file_restored_streaming_equals_the_array_api(tiny_model, tmp_path):
    model = load_model(tiny_model, "cpu", tile=96, overlap=32)  # 200 x 150 in tiles of 96
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (150, 200), dtype=np.uint8)
    write_image(tmp_path / "in.png", image, alpha=alpha)
    restore_file(model, tmp_path / "in.png", tmp_path / "out.png")
    out = read_image(tmp_path / "out.png")
    np.testing.assert_array_equal(out.array, model.denoise(image, check=False))
    np.testing.assert_array_equal(out.alpha, alpha)
    restore_file(model, tmp_path / "in.png", tmp_path / "out16.tif", FileOptions(bit_depth=16))
    assert read_image(tmp_path / "out16.tif").array.dtype == np.uint16


def test_the_memory_limit_is_refused_when_the_process_already_holds_more():
    with pytest.raises(ConfigError, match=r"--max-memory .* too low .* give at least"):
        working_budget(100 * 2**20, 0)
    assert working_budget(64 * 2**30, 2**30) > 60 * 2**30


PEAK_SCRIPT = """
import json, sys
from pathlib import Path
from restorekit.infer.files import FileOptions, restore_file
from restorekit.infer.model import load_model
model = load_model(sys.argv[1], "cpu")
options = FileOptions(memory_limit=float(sys.argv[4]))
restore_file(model, Path(sys.argv[2]), Path(sys.argv[3]), options)
peak = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM")]
print(json.dumps({"peak": int(peak[0].split()[1]) * 1024}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_a_large_image_is_restored_within_the_whole_process_limit(tiny_model, tmp_path):
    """A 4000 x 3000 RGB photo through a U-Net with a 900 MiB bound on the whole process: the
    peak resident memory (runtime, model, decoded input, tiles, writer) stays under it. Held
    whole in float32, the input, its padded copy, the output and its weights alone would add
    about 480 MB to the ~350 MB the runtime and the decoded image take."""
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "big.png", compress_level=1)
    limit = 900 * 2**20
    command = [sys.executable, "-c", PEAK_SCRIPT, str(tiny_model), str(tmp_path / "big.png")]
    done = subprocess.run(
        [*command, str(tmp_path / "out.png"), str(limit)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    peak = json.loads(done.stdout.strip().splitlines()[-1])["peak"]
    assert peak < limit, f"peak {peak / 2**20:.0f} MiB over the {limit / 2**20:.0f} MiB limit"
    assert read_image(tmp_path / "out.png").array.shape == image.shape
