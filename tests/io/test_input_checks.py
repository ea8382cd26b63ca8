"""Sanity checks on input data (restorekit.io.checks) and batches that finish (--keep-going).

One case per class: float data off the [0, 1] scale (refused, scale offered), uint16 data in a
small range (warned, scale offered), constant images, images far less noisy than the model,
tiny training images, synthetic noise added to noisy data; per command (denoise, upscale,
eval, train's data loading) and the Python API. Models are tiny and untrained."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import tiny_config

from restorekit.cli import main
from restorekit.data.kinds import load_train_data
from restorekit.errors import ImageFormatError
from restorekit.infer.model import load_model
from restorekit.io import read_image, write_image
from restorekit.io.checks import (
    InputScaleError,
    InputWarning,
    check_image,
    check_training_images,
    check_values,
    estimate_noise,
)


@pytest.fixture(scope="module")
def models(tiny_model_files):
    """The tiny model files as strings."""
    return {task: str(path) for task, path in tiny_model_files.items()}


def noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(size=image.shape) * sigma + 0.5, 0, 255).astype(np.uint8)


@pytest.fixture
def crop(astronaut):
    return astronaut[:48, :64]


def run(args: list[str]):
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


# --- float data off the [0, 1] scale --------------------------------------------------------


def test_float_data_on_a_0_255_scale_is_refused_with_the_scale(tmp_path, crop, models):
    write_image(tmp_path / "f.tif", crop.astype(np.float32))
    result = run(["denoise", str(tmp_path / "f.tif"), "-o", str(tmp_path / "out"), "--model",
                  models["denoise"]])  # fmt: skip
    assert result.exit_code == 1
    assert "f.tif: float values span" in result.output
    assert "divide them by 255 first" in result.output and "--input-scale 255" in result.output
    assert not (tmp_path / "out" / "f.tif").exists()
    with pytest.raises(InputScaleError, match="65535"):
        check_values(np.array([[0.0, 60000.0]], np.float32))
    with pytest.raises(InputScaleError, match="divide them by 255"):
        load_model(models["denoise"]).denoise(crop.astype(np.float32))


def test_input_scale_brings_float_data_to_the_model_and_back(tmp_path, crop, models):
    write_image(tmp_path / "f.tif", noisy(crop, 25).astype(np.float32))
    out = tmp_path / "out"
    result = run(["denoise", str(tmp_path / "f.tif"), "-o", str(out), "--model",
                  models["denoise"], "--input-scale", "255"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    written = read_image(out / "f.tif").array
    assert written.dtype == np.float32 and written.max() > 2  # back on the 0-255 scale


def test_eval_refuses_float_data_off_scale(tmp_path, crop, models):
    write_image(tmp_path / "data" / "f.tif", crop.astype(np.float32))
    result = run(["eval", "--model", models["denoise"], "--data", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert "f.tif: float values span" in result.output and "divide them by 255" in result.output


def test_training_refuses_float_data_off_scale(tmp_path, crop):
    write_image(tmp_path / "data" / "f.tif", crop.astype(np.float32))
    cfg = tiny_config(tmp_path / "data")
    with pytest.raises(InputScaleError, match="f.tif: float values"):
        load_train_data(cfg, None)


# --- uint16 data in a small range -----------------------------------------------------------


def test_12_bit_data_in_uint16_warns_and_input_scale_fixes_it(tmp_path, crop, models):
    twelve = (noisy(crop, 25).astype(np.uint16) * 16).astype(np.uint16)  # max <= 4080
    write_image(tmp_path / "c.tif", twelve)
    out = tmp_path / "out"
    args = ["denoise", str(tmp_path / "c.tif"), "--model", models["denoise"]]
    result = run([*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "warning: " in result.output and "(12-bit data?)" in result.output
    assert "--input-scale 4095" in result.output
    result = run([*args, "-o", str(tmp_path / "out2"), "--input-scale", "4095"])
    assert result.exit_code == 0 and "12-bit" not in result.output, result.output
    written = read_image(tmp_path / "out2" / "c.tif").array
    assert written.dtype == np.uint16 and written.max() <= 4095
    with pytest.warns(InputWarning, match="12-bit"):
        load_model(models["denoise"]).denoise(twelve)


# --- constant images ------------------------------------------------------------------------


def test_a_constant_image_warns(tmp_path, models):
    write_image(tmp_path / "grey.png", np.full((32, 32, 3), 128, np.uint8))
    for command in ("denoise", "upscale"):
        result = run([command, str(tmp_path / "grey.png"), "-o", str(tmp_path / command),
                      "--model", models[command]])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "grey.png: constant image (every value is 128): nothing to restore" in result.output
    with pytest.warns(InputWarning, match="constant image"):
        load_model(models["upscale"]).upscale(np.zeros((8, 8, 3), np.uint8))


def test_constant_training_images_are_skipped_or_refused(crop):
    flat = np.zeros((64, 64, 3), np.uint8)
    keep, messages = check_training_images([crop, flat], ["a.png", "flat.png"], 32, None)
    assert keep == [0]
    assert any("skipped 1 constant training image(s)" in m and "flat.png" in m for m in messages)
    with pytest.raises(ImageFormatError, match="every training image is constant"):
        check_training_images([flat], ["flat.png"], 32, None)


# --- far less noisy than the model ----------------------------------------------------------


def test_a_clean_image_warns_a_noisy_one_does_not(astronaut):
    clean, sigma25 = astronaut, noisy(astronaut, 25)
    assert estimate_noise(clean) * 255 < 5
    assert 20 < estimate_noise(sigma25) * 255 < 30
    from restorekit.zoo import default_denoiser_noise

    (message,) = check_image(clean, "clean.png", "gauss:25", default_denoiser_noise())
    assert message.startswith("clean.png: looks far less noisy") and "over-smooth" in message
    assert message.endswith("the shipped ne2ne-gauss5_50 (gauss:5-50: --model ne2ne-gauss5_50)")
    assert check_image(sigma25, "noisy.png", "gauss:25") == []
    ramp = np.tile(np.linspace(40, 200, 256), (256, 1)).astype(np.uint8)  # no noise at all
    (blind,) = check_image(
        ramp, "ramp.png", "gauss:5-50", default_denoiser_noise()
    )  # the blind model itself: no help
    assert "ne2ne-gauss5_50" not in blind and "trained on these images" in blind


def test_denoise_warns_on_clean_input(tmp_path, crop, models):
    write_image(tmp_path / "clean.png", crop)
    write_image(tmp_path / "noisy.png", noisy(crop, 25))
    result = run(["denoise", str(tmp_path / "clean.png"), str(tmp_path / "noisy.png"), "-o",
                  str(tmp_path / "out"), "--model", models["denoise"]])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "clean.png: looks far less noisy" in result.output
    assert "--model ne2ne-gauss5_50" in " ".join(result.output.split())  # the blind model named
    assert "noisy.png: looks" not in result.output
    model = load_model(models["denoise"])
    with pytest.warns(InputWarning, match="far less noisy"):
        model.denoise(crop)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.denoise(noisy(crop, 25))


# --- training data: tiny images, noisy data with synthetic noise ----------------------------


def test_tiny_training_images_warn_once_naming_five(tmp_path, crop):
    folder = tmp_path / "small"
    for i in range(7):
        write_image(folder / f"s{i}.png", crop[:20, :30])
    write_image(folder / "big.png", np.tile(crop, (2, 2, 1)))
    with pytest.warns(InputWarning) as record:
        load_train_data(tiny_config(folder), None)
    (message,) = [str(w.message) for w in record if "patch" in str(w.message)]
    assert message.startswith("7 training image(s) smaller than the 64-pixel patch")
    assert "s0.png (30x20)" in message and "and 2 more" in message


def test_synthetic_noise_on_noisy_data_hints_noise_null(astronaut):
    images = [noisy(astronaut, 25, seed) for seed in range(3)]
    names = ["a.png", "b.png", "c.png"]
    _, messages = check_training_images(images, names, 64, "gauss:25")
    assert any("3 of 3 training images look noisy already" in m for m in messages)
    assert any("--set noise=null" in m for m in messages)
    assert check_training_images(images, names, 64, None)[1] == []
    assert check_training_images([astronaut], ["a.png"], 64, "gauss:25")[1] == []


# --- batches that finish --------------------------------------------------------------------


@pytest.fixture
def batch(tmp_path, crop):
    """photos/a.png, photos/b.png (junk), photos/c.png."""
    folder = tmp_path / "photos"
    write_image(folder / "a.png", noisy(crop, 25))
    (folder / "b.png").write_bytes(b"not a png")
    write_image(folder / "c.png", noisy(crop, 25, 1))
    return folder


@pytest.mark.parametrize("command", ["denoise", "upscale"])
def test_without_keep_going_the_first_bad_file_stops_and_says_how_many(batch, models, command):
    out = batch.parent / "out"
    result = run([command, str(batch), "-o", str(out), "--model", models[command]])
    assert result.exit_code == 1
    assert f"stopped at {batch / 'b.png'}: 1 of 3 done before it" in result.output
    assert "b.png" in result.output.splitlines()[-1]  # the file's own error comes last
    assert (out / "a.png").exists() and not (out / "c.png").exists()


@pytest.mark.parametrize("command", ["denoise", "upscale"])
def test_keep_going_processes_the_others_and_lists_the_failed(batch, models, command):
    out = batch.parent / "out"
    args = [command, str(batch), "-o", str(out), "--model", models[command], "--keep-going"]
    result = run(args)
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"2 of 3 done, 1 failed: {batch / 'b.png'} (")
    assert (out / "a.png").exists() and (out / "c.png").exists()
    assert not (out / "b.png").exists()


def test_keep_going_with_every_file_good_exits_zero(tmp_path, batch, models):
    (batch / "b.png").unlink()
    result = run(["denoise", str(batch), "-o", str(tmp_path / "out"), "--model",
                  models["denoise"], "--keep-going"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 image(s) denoised" in result.output


@pytest.mark.parametrize("command", ["denoise", "upscale"])
def test_eval_keep_going_leaves_out_a_bad_image_and_says_so(batch, models, command):
    """A benchmark folder with an unreadable file: without --keep-going the evaluation stops
    naming it; with it the others are evaluated, the report and its JSON name the one left
    out, and the exit code is 1."""
    extra = ["--noise", "gauss:25"] if command == "denoise" else ["--scale", "2"]
    base = ["eval", "--model", models[command], "--data", str(batch), *extra]
    stopped = run(base)
    assert stopped.exit_code == 1 and "b.png" in stopped.output
    report = batch.parent / "report.json"
    result = run([*base, "--keep-going", "--json", str(report)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "1 image(s) left out of the evaluation: b.png"
    )
    figures = json.loads(report.read_text())
    assert figures["n_images"] == 2 and figures["left_out"] == ["b.png"]
    assert [i["name"] for i in figures["images"]] == ["a.png", "c.png"]


def test_batch_summary_lists_reasons(tmp_path):
    from restorekit.errors import ImageReadError
    from restorekit.io.batch import run_batch

    def step(item: Path) -> None:
        if item.name == "x.png":
            raise ImageReadError("cannot read x.png\nmore")

    paths = [Path("a.png"), Path("x.png"), Path("y.png")]
    result = run_batch(paths, 3, lambda p: p, step, keep_going=True)
    assert result.summary() == "2 of 3 done, 1 failed: x.png (cannot read x.png)"
    stopped = run_batch(paths, 3, lambda p: p, step, keep_going=False)
    assert stopped.done == 1 and stopped.stopped_at == Path("x.png")
    assert isinstance(stopped.error, ImageReadError)


# --- stacks -----------------------------------------------------------------------------------


def test_stack_checks_a_model_without_normalisation(tmp_path):
    """n2v-bsd68 takes [0, 1]: a float stack on 0-255 is refused (API and command line, the
    file named), 12-bit data in uint16 and a constant stack warn; a model with its own
    normalisation (n2v-2d style) takes any range and only a constant stack warns."""
    import tifffile

    from restorekit.io.checks import check_stack

    model = load_model("n2v-bsd68")
    rng = np.random.default_rng(0)
    float_stack = rng.uniform(0, 255, (2, 24, 28)).astype(np.float32)
    with pytest.raises(InputScaleError, match="divide the stack by 255"):
        model.denoise_stack(float_stack, "SYX")
    source = tmp_path / "cells.tif"
    tifffile.imwrite(source, float_stack)
    result = run(["denoise", str(source), "-o", str(tmp_path / "out"), "--model", "n2v-bsd68",
                  "--axes", "SYX"])  # fmt: skip
    assert result.exit_code == 1 and "cells.tif" in result.output and "n2v-2d" in result.output
    twelve = rng.integers(0, 4096, (2, 24, 28), dtype=np.uint16)
    with pytest.warns(InputWarning, match="reach only .* of 65535 \\(12-bit data\\?\\)"):
        model.denoise_stack(twelve, "SYX")
    with pytest.warns(InputWarning, match="constant stack"):
        model.denoise_stack(np.full((2, 24, 28), 7, np.uint16), "SYX")
    canonical = float_stack[:, None]
    assert check_stack(canonical, "s", normalized=True) == []
    assert check_stack(np.zeros_like(canonical), "s", normalized=True)[0].startswith("s: constant")


def test_input_scale_brings_a_12_bit_stack_to_the_model_and_back(tmp_path):
    """12-bit data in uint16 (a microscope camera's): ``input_scale=4095`` gives the model
    what it would get from the same data on the full scale, for a TIFF and a zarr stack, from
    the command line and the API; the result stays within 0-4095."""
    import tifffile
    import zarr

    model = load_model("n2v-bsd68")
    rng = np.random.default_rng(1)
    twelve = np.tile(np.linspace(500, 3500, 28), (2, 24, 1)) + rng.normal(0, 200, (2, 24, 28))
    twelve = np.clip(twelve, 0, 4095).astype(np.uint16)
    full = model.denoise_stack(twelve.astype(np.float32) / 4095, "SYX")  # the [0, 1] result
    expected = np.clip(full * 4095 + 0.5, 0, 4095).astype(np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "12-bit data?" warning with the scale given
        scaled = model.denoise_stack(twelve, "SYX", input_scale=4095)
    np.testing.assert_array_equal(scaled, expected)
    with pytest.warns(InputWarning, match="pass --input-scale 4095"):
        model.denoise_stack(twelve, "SYX")
    tifffile.imwrite(tmp_path / "cells.tif", twelve)
    zarr.save_array(str(tmp_path / "cells.zarr"), twelve)
    for name, axes in (("cells.tif", ["--axes", "SYX"]), ("cells.zarr", ["--axes", "SYX"])):
        result = run(["denoise", str(tmp_path / name), "-o", str(tmp_path / "out"), "--model",
                      "n2v-bsd68", "--input-scale", "4095", *axes])  # fmt: skip
        assert result.exit_code == 0 and "12-bit" not in result.output, result.output
        out = tmp_path / "out" / name
        written = tifffile.imread(out) if name.endswith(".tif") else zarr.open_array(str(out))[:]
        assert written.dtype == np.uint16
        np.testing.assert_array_equal(written, expected)


def test_a_grey_stack_for_the_default_rgb_model_names_a_grey_model(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "cells.tif", np.zeros((3, 24, 28), np.uint8))
    result = run(["denoise", str(tmp_path / "cells.tif"), "-o", str(tmp_path / "out"),
                  "--axes", "ZYX"])  # fmt: skip
    assert result.exit_code != 0 and "has 1 channel(s)" in result.output
    assert "e.g. --model n2v-bsd68" in result.output and "constant" not in result.output
