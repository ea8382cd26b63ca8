"""zarr / OME-Zarr and OME-TIFF stacks: lazy axes views, metadata kept from input to output,
streaming denoising equal to the in-memory result, and a stack larger than the memory limit
trained on and denoised within it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from conftest import write_tiny_n2v

import restorekit
from restorekit.cli import main
from restorekit.errors import ImageFormatError
from restorekit.io.axes import CanonicalView, SliceView, StackLayout, to_canonical
from restorekit.io.stacks import read_ome_tiff, read_stack, write_stack
from restorekit.io.zarr_stacks import ZarrStack, ZarrStackWriter, ome_attributes, open_zarr_stack

zarr = pytest.importorskip("zarr", reason="the zarr extra is not installed")
Image = pytest.importorskip(
    "ome_zarr_models.v05.image", reason="the zarr extra is not installed"
).Image

LAYOUTS = [
    ("YX", (5, 6)),
    ("ZYX", (3, 5, 6)),
    ("YXC", (5, 6, 2)),
    ("TCZYX", (2, 3, 4, 5, 6)),
    ("XYZC", (6, 5, 4, 3)),
    ("TSYX", (2, 3, 5, 6)),
    ("YXT", (5, 6, 3)),
]


@pytest.mark.parametrize(("axes", "shape"), LAYOUTS)
def test_the_lazy_view_reads_and_writes_what_to_canonical_gives(axes, shape):
    array = np.random.default_rng(0).random(shape)
    view, canonical = CanonicalView(array, axes), to_canonical(array, axes)
    assert view.shape == canonical.shape and len(view) == canonical.shape[0]
    written = np.zeros_like(array)
    out = CanonicalView(written, axes)
    for s in range(canonical.shape[0]):
        np.testing.assert_array_equal(view[s], canonical[s])
        region = (slice(None), *(slice(1, 3) for _ in canonical.shape[2:]))
        np.testing.assert_array_equal(SliceView(view, s)[(0, *region)], canonical[s][region])
        np.testing.assert_array_equal(view[(slice(s, s + 1), 0)], canonical[s : s + 1, 0])
        out[(s, *region)] = canonical[(s, *region)] + 1
    expected = np.zeros_like(canonical)
    expected[(slice(None), slice(None), *(slice(1, 3) for _ in canonical.shape[2:]))] = (
        canonical[(slice(None), slice(None), *(slice(1, 3) for _ in canonical.shape[2:]))] + 1
    )
    np.testing.assert_array_equal(to_canonical(written, axes), expected)


def test_the_lazy_view_refuses_what_it_cannot_read_lazily():
    view = CanonicalView(np.zeros((2, 3, 4, 5)), "STYX")
    with pytest.raises(IndexError, match="one at a time"):
        view[0:2]
    with pytest.raises(IndexError, match="ints and slices"):
        view[[0, 1]]


def _n2v_model(folder: Path, dims: int = 2) -> Path:
    return write_tiny_n2v(folder / f"n2v{dims}d.safetensors", dims)


def _ome_zarr(path: Path, data: np.ndarray, layout: StackLayout, chunks: tuple[int, ...]) -> None:
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    names = [a.lower() for a in layout.axes]
    array = group.create_array("0", data=data, chunks=chunks, dimension_names=names)
    group.attrs["ome"] = ome_attributes([array], ZarrStack(path, array, layout, True, "cells"))


LAYOUT = StackLayout(
    "TZYX",
    {"T": 2.5, "Z": 1.5, "Y": 0.25, "X": 0.25},
    {"T": "second", "Z": "micrometer", "Y": "micrometer", "X": "micrometer"},
)


def test_an_ome_zarr_is_denoised_chunk_by_chunk_as_in_memory_keeping_its_metadata(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 65535, (2, 3, 150, 260), dtype=np.uint16)
    _ome_zarr(tmp_path / "cells.ome.zarr", data, LAYOUT, (1, 1, 64, 128))
    model_path = _n2v_model(tmp_path)
    args = ["denoise", str(tmp_path / "cells.ome.zarr"), "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*args, "--model", str(model_path), "--tile", "128"])
    assert result.exit_code == 0, result.output
    out = open_zarr_stack(tmp_path / "out" / "cells.ome.zarr")
    assert out.ome and out.name == "cells"
    assert out.layout == LAYOUT  # axes, units and pixel sizes as the input's
    assert out.chunks == (1, 1, 64, 128) and out.array.dtype == np.uint16
    Image.from_zarr(zarr.open_group(str(tmp_path / "out" / "cells.ome.zarr"), mode="r"))
    # the 2D model took the Z planes as slices; tiles read and rows written chunk by chunk
    model = restorekit.load_model(model_path, "cpu")
    model.tile = 128  # 2 x 3 tiles per plane
    expected = model.denoise_stack(data, "TSYX")
    np.testing.assert_array_equal(out.array[:], expected)
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "out").iterdir())


def test_an_ome_zarr_result_carries_a_pyramid_of_means(tmp_path):
    data = np.random.default_rng(5).integers(0, 255, (2, 600, 700), dtype=np.uint8)
    layout = StackLayout(
        "ZYX", {"Z": 1.0, "Y": 0.3, "X": 0.3}, {"Y": "micrometer", "X": "micrometer"}
    )
    _ome_zarr(tmp_path / "big.ome.zarr", data, layout, (1, 256, 256))
    result = CliRunner().invoke(
        main,
        ["denoise", str(tmp_path / "big.ome.zarr"), "-o", str(tmp_path / "out"), "--model",
         str(write_tiny_n2v(tmp_path / "m.safetensors")), "--max-memory", "2GB"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    group = zarr.open_group(str(tmp_path / "out" / "big.ome.zarr"), mode="r")
    image = Image.from_zarr(group)
    datasets = image.ome_attributes.multiscales[0].datasets
    assert [d.path for d in datasets] == ["0", "1"]  # 300 x 350 is the last level above 256
    assert datasets[1].coordinateTransformations[0].scale == [1.0, 0.6, 0.6]
    full, half = group["0"][:].astype(float), group["1"][:]
    expected = full.reshape(2, 300, 2, 350, 2).mean(axis=(2, 4))
    np.testing.assert_array_equal(half, np.round(expected).astype(np.uint8))


def test_a_zarr_stack_replaces_its_earlier_result_only_when_asked(tmp_path):
    data = np.random.default_rng(2).integers(0, 255, (3, 40, 40), dtype=np.uint8)
    zarr.create_array(str(tmp_path / "plain.zarr"), data=data, chunks=(1, 40, 40))
    model_path = str(_n2v_model(tmp_path))
    args = ["denoise", str(tmp_path / "plain.zarr"), "-o", str(tmp_path / "out")]
    runner = CliRunner()
    result = runner.invoke(main, [*args, "--model", model_path])
    assert result.exit_code != 0 and "--axes" in result.output  # no names: the axes are asked
    upscale = ["upscale", str(tmp_path / "plain.zarr"), "-o", str(tmp_path / "up"), "--model"]
    upscale.append("edsr-baseline-x2")
    result = runner.invoke(main, upscale)
    assert result.exit_code != 0 and "restorekit denoise" in result.output
    assert not (tmp_path / "up").exists()
    result = runner.invoke(main, [*args, "--model", model_path, "--axes", "SYX"])
    assert result.exit_code == 0, result.output
    again = runner.invoke(main, [*args, "--model", model_path, "--axes", "SYX"])
    assert again.exit_code != 0 and "--overwrite" in again.output
    again = runner.invoke(main, [*args, "--model", model_path, "--axes", "SYX", "--overwrite"])
    assert again.exit_code == 0, again.output
    out = zarr.open_array(str(tmp_path / "out" / "plain.zarr"), mode="r")
    assert out.shape == data.shape and out.dtype == np.uint8
    assert list(out.metadata.dimension_names) == ["s", "y", "x"]
    # a folder that is not a zarr store is never written over
    (tmp_path / "out2" / "plain.zarr").mkdir(parents=True)
    (tmp_path / "out2" / "plain.zarr" / "notes.txt").write_text("mine")
    args = ["denoise", str(tmp_path / "plain.zarr"), "-o", str(tmp_path / "out2"), "--overwrite"]
    result = runner.invoke(main, [*args, "--model", model_path, "--axes", "SYX"])
    assert result.exit_code != 0 and "folder" in result.output
    assert (tmp_path / "out2" / "plain.zarr" / "notes.txt").read_text() == "mine"


def test_axes_given_against_an_ome_zarr_must_agree(tmp_path):
    data = np.zeros((2, 3, 8, 8), np.uint8)
    _ome_zarr(tmp_path / "a.ome.zarr", data, LAYOUT, (1, 1, 8, 8))
    assert open_zarr_stack(tmp_path / "a.ome.zarr", "TZYX").layout.axes == "TZYX"
    with pytest.raises(ImageFormatError, match="disagrees"):
        open_zarr_stack(tmp_path / "a.ome.zarr", "SZYX")


def test_an_interrupted_zarr_write_leaves_nothing(tmp_path):
    data = np.zeros((2, 8, 8), np.uint8)
    array = zarr.create_array(str(tmp_path / "in.zarr"), data=data, dimension_names=list("syx"))
    like = ZarrStack(tmp_path / "in.zarr", array, StackLayout("SYX"))
    with pytest.raises(RuntimeError), ZarrStackWriter(tmp_path / "out.zarr", like, (2, 8, 8), "u1"):
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == [tmp_path / "in.zarr"]


def test_ome_tiff_axes_and_pixel_sizes_are_read_and_carried_to_the_output(tmp_path):
    data = np.random.default_rng(3).integers(0, 255, (3, 32, 48), dtype=np.uint8)
    metadata = {"axes": "ZYX", "PhysicalSizeX": 0.2, "PhysicalSizeXUnit": "µm"}
    metadata |= {"PhysicalSizeY": 0.2, "PhysicalSizeYUnit": "µm"}
    metadata |= {"PhysicalSizeZ": 1.0, "PhysicalSizeZUnit": "µm"}
    tifffile.imwrite(tmp_path / "c.ome.tif", data, ome=True, metadata=metadata)
    ome = read_ome_tiff(tmp_path / "c.ome.tif")
    assert ome is not None and ome.layout.axes == "ZYX"
    assert ome.layout.scales == {"X": 0.2, "Y": 0.2, "Z": 1.0}
    assert ome.layout.units == {"X": "micrometer", "Y": "micrometer", "Z": "micrometer"}
    assert read_ome_tiff(tmp_path / "plain.tif") is None
    write_stack(tmp_path / "plain.tif", data)
    assert read_ome_tiff(tmp_path / "plain.tif") is None
    assert read_stack(tmp_path / "c.ome.tif", None).shape == (1, 1, 3, 32, 48)
    model_path = str(_n2v_model(tmp_path))
    args = ["denoise", str(tmp_path / "c.ome.tif"), "-o", str(tmp_path / "out"), "--axes", "ZYX"]
    result = CliRunner().invoke(main, [*args, "--model", model_path])
    assert result.exit_code == 0, result.output
    out = read_ome_tiff(tmp_path / "out" / "c.ome.tif")
    assert out is not None and out.layout == ome.layout
    bad = ["denoise", str(tmp_path / "c.ome.tif"), "-o", str(tmp_path / "o2"), "--axes", "SYX"]
    result = CliRunner().invoke(main, [*bad, "--model", model_path])
    assert result.exit_code != 0 and "disagrees" in result.output


# A stack larger than the memory limit, trained on and denoised within it (separate processes,
# their peak resident memory read from the kernel).

LIMIT_MIB = 500
STACK_SHAPE = (64, 1024, 1024)  # float64: 512 MiB, more than the limit, in half the pixels


def _peak_mib(args: list[str], cwd: Path) -> tuple[float, str]:
    script = (
        "import resource, sys\n"
        "from restorekit.cli import main\n"
        "try:\n"
        f"    main({args!r}, standalone_mode=False)\n"
        "finally:\n"
        "    peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "    print('PEAK', int(peak.split()[1]) / 1024, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    peak = [line for line in done.stdout.splitlines() if line.startswith("PEAK")][-1]
    return float(peak.split()[1]), done.stdout


@pytest.fixture(scope="module")
def big_stack(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("big")
    array = zarr.create_array(
        str(folder / "big.zarr"),
        shape=STACK_SHAPE,
        dtype="float64",
        chunks=(1, 256, 1024),
        dimension_names=["s", "y", "x"],
    )
    rng = np.random.default_rng(0)
    ramp = np.linspace(0.2, 0.8, STACK_SHAPE[2])
    for start in range(0, STACK_SHAPE[0], 8):
        noise = rng.normal(0, 0.1, (8, *STACK_SHAPE[1:]))
        array[start : start + 8] = ramp + noise
    return folder


def test_a_zarr_stack_larger_than_the_limit_is_denoised_within_it(big_stack):
    assert np.prod(STACK_SHAPE) * 8 > LIMIT_MIB * 2**20
    _n2v_model(big_stack)
    args = ["denoise", "big.zarr", "-o", "out", "--model", "n2v2d.safetensors"]
    peak, output = _peak_mib([*args, "--max-memory", f"{LIMIT_MIB}MB"], big_stack)
    assert peak < LIMIT_MIB, output
    out = zarr.open_array(str(big_stack / "out" / "big.zarr"), mode="r")
    assert out.shape == STACK_SHAPE and out.dtype == np.float64
    last = out[-1]
    assert np.isfinite(last).all() and last.std() > 0


def test_a_zarr_stack_larger_than_the_limit_is_trained_on_within_it(big_stack):
    args = ["train", "n2v-2d", "--data", "big.zarr", "--out", "run", "--set", "model.features=4"]
    args += ["--set", "data.repeat=1", "--set", "train.batch_size=8", "--set", "train.epochs=1"]
    args += ["--set", "data.patch_size=32", "--set", "train.threads=2"]
    peak, output = _peak_mib(args, big_stack)
    assert peak < LIMIT_MIB, output
    assert (big_stack / "run" / "model.safetensors").is_file()
    assert "held-out loss" in output


def test_a_3d_model_refuses_slices_and_a_2d_model_takes_planes(tmp_path):
    stack = np.random.default_rng(4).integers(0, 255, (4, 16, 16), dtype=np.uint8)
    model_3d = restorekit.load_model(_n2v_model(tmp_path, dims=3), "cpu")
    with pytest.raises(ImageFormatError, match="this model is 3D"):
        model_3d.denoise_stack(stack, "SYX")
    assert model_3d.denoise_stack(stack, "ZYX").shape == stack.shape
    model_2d = restorekit.load_model(_n2v_model(tmp_path), "cpu")
    np.testing.assert_array_equal(
        model_2d.denoise_stack(stack, "ZYX"), model_2d.denoise_stack(stack, "SYX")
    )


def test_an_ngff_04_image_on_zarr_format_2_is_read_with_its_axes_and_scales(tmp_path):
    group = zarr.open_group(str(tmp_path / "old.ome.zarr"), mode="w", zarr_format=2)
    group.create_array("0", data=np.zeros((3, 16, 16), np.uint16), chunks=(1, 16, 16))
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [
                {"name": "z", "type": "space", "unit": "micrometer"},
                {"name": "y", "type": "space", "unit": "micrometer"},
                {"name": "x", "type": "space", "unit": "micrometer"},
            ],
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [{"type": "scale", "scale": [2, 0.5, 0.5]}],
                }
            ],
        }
    ]
    stack = open_zarr_stack(tmp_path / "old.ome.zarr")
    assert stack.ome and stack.layout.axes == "ZYX"
    assert stack.layout.scales == {"Z": 2.0, "Y": 0.5, "X": 0.5}
    assert stack.canonical().shape == (1, 1, 3, 16, 16)


def test_a_zarr_store_denoised_in_place_is_replaced_only_when_complete(tmp_path):
    data = np.random.default_rng(6).integers(0, 255, (2, 3, 40, 48), dtype=np.uint8)
    _ome_zarr(tmp_path / "cells.ome.zarr", data, LAYOUT, (1, 1, 40, 48))
    args = ["denoise", str(tmp_path / "cells.ome.zarr"), "-o", str(tmp_path), "--model"]
    args.append(str(write_tiny_n2v(tmp_path / "m.safetensors")))
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code != 0 and "--overwrite" in refused.output
    np.testing.assert_array_equal(open_zarr_stack(tmp_path / "cells.ome.zarr").array[:], data)
    result = CliRunner().invoke(main, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    replaced = open_zarr_stack(tmp_path / "cells.ome.zarr")
    assert replaced.layout == LAYOUT and not np.array_equal(replaced.array[:], data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.ome.zarr", "m.safetensors"]
