"""Misleading messages made clear (issue 13): each says what is wrong, where, and how to fix it."""

import os
import re

import numpy as np
import pytest
import tifffile
import torch
import yaml
from click.testing import CliRunner
from conftest import tiny_config

from restorekit import load_model
from restorekit.cli import main
from restorekit.engine import train
from restorekit.errors import ImageReadError, ModelLoadError
from restorekit.io import read_image, set_max_pixels, write_image
from restorekit.units import format_duration, parse_duration

TINY_SETS = [
    "--set",
    "model.features=8",
    "--set",
    "data.patch_size=64",
    "--set",
    "train.batch_size=2",
    "--set",
    "train.log_every=1000",
]


@pytest.fixture(autouse=True)
def default_pixel_limit(monkeypatch):
    """--max-pixels sets a process-wide limit: back to the default after each test."""
    monkeypatch.delenv("RESTOREKIT_MAX_PIXELS", raising=False)
    yield
    set_max_pixels(None)


def _run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env)


# 1. An image above the pixel limit is not "truncated or damaged": the limit can be raised.


def test_an_image_above_the_pixel_limit_says_so_and_how_to_raise_it(tmp_path, astronaut):
    image = tmp_path / "in" / "big.png"
    write_image(image, astronaut[:20, :30])  # 600 pixels
    denoise = ["denoise", str(image), "-o", str(tmp_path / "out"), "--backend", "torch"]
    for result in (
        _run(*denoise, "--max-pixels", "500"),
        _run(*denoise, env={"RESTOREKIT_MAX_PIXELS": "500"}),
        _run(
            "eval",
            "--model",
            "ne2ne-gauss25",
            "--data",
            str(image.parent),
            "--backend",
            "torch",
            "--max-pixels",
            "500",
        ),
        _run(
            "upscale",
            str(image),
            "-o",
            str(tmp_path / "up"),
            "--model",
            "edsr-baseline-x2",
            "--backend",
            "torch",
            "--max-pixels",
            "500",
        ),
    ):
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert "30x20 = 600 pixels, more than the pixel limit of 500" in result.output
        assert "not damaged" in result.output and "tiling" in result.output
        assert "--max-pixels 600" in result.output and "RESTOREKIT_MAX_PIXELS=600" in result.output
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())

    result = _run(*denoise, "--max-pixels", "600")  # raised knowingly: processed
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "out" / "big.png").array.shape == (20, 30, 3)


def test_the_pixel_limit_in_the_python_api(tmp_path, astronaut, monkeypatch):
    write_image(tmp_path / "a.png", astronaut[:20, :30])
    set_max_pixels(100)
    with pytest.raises(ImageReadError, match=r"set_max_pixels\(600\)"):
        read_image(tmp_path / "a.png")
    set_max_pixels(None)
    monkeypatch.setenv("RESTOREKIT_MAX_PIXELS", "599")
    with pytest.raises(ImageReadError, match="more than the pixel limit of 599"):
        read_image(tmp_path / "a.png")
    monkeypatch.setenv("RESTOREKIT_MAX_PIXELS", "many")
    with pytest.raises(ImageReadError, match="RESTOREKIT_MAX_PIXELS='many' is not a pixel count"):
        read_image(tmp_path / "a.png")
    monkeypatch.delenv("RESTOREKIT_MAX_PIXELS")
    assert read_image(tmp_path / "a.png").array.shape == (20, 30, 3)  # default: ~179 MP


# 2. A multi-page TIFF without --axes: a stack of K pages, read with --axes.


def test_a_multi_page_tiff_without_axes_names_the_stack_and_the_axes(tmp_path, astronaut):
    gray = tmp_path / "in" / "gray.tif"
    gray.parent.mkdir()
    tifffile.imwrite(gray, np.stack([astronaut[i : i + 32, :32, 0] for i in range(5)]))
    rgb = tmp_path / "rgb" / "rgb.tif"
    rgb.parent.mkdir()
    tifffile.imwrite(rgb, np.stack([astronaut[i : i + 32, :32] for i in range(4)]))

    result = _run("denoise", str(gray), "-o", str(tmp_path / "out"), "--backend", "torch")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "is a stack of 5 pages (shape (5, 32, 32)" in result.output
    assert "pass --axes SYX to `restorekit denoise`" in result.output
    assert "save each page" not in result.output.lower()

    result = _run("denoise", str(rgb), "-o", str(tmp_path / "out"), "--backend", "torch")
    assert "is a stack of 4 pages (shape (4, 32, 32, 3)" in result.output
    assert "--axes SYXC" in result.output
    # Following the advice denoises it as a stack.
    result = _run("denoise", str(rgb), "-o", str(tmp_path / "out"), "--axes", "SYXC")
    assert result.exit_code == 0, result.output
    assert tifffile.imread(tmp_path / "out" / "rgb.tif").shape == (4, 32, 32, 3)


# 3. --resume on a folder that is not a run.


def test_resume_on_a_folder_that_is_not_a_run_says_so(tmp_path, photo_folder):
    for folder in (photo_folder, tmp_path / "empty"):
        folder.mkdir(exist_ok=True)
        result = _run("train", "--resume", str(folder))
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"{folder} is not a restorekit run folder: it has no config.yaml" in result.output
        assert f"restorekit train PRESET --out {folder}" in result.output
        assert "preset named" not in result.output


# 4. A relative --data path: the run resumes from any directory.


def test_a_run_with_relative_data_resumes_from_another_directory(tmp_path, photo_folder):
    start, elsewhere = photo_folder.parent, tmp_path / "elsewhere"
    elsewhere.mkdir()
    cwd = os.getcwd()
    try:
        os.chdir(start)
        result = _run(
            "train",
            "ne2ne-gauss25",
            "--data",
            "photos",
            "--val",
            "photos",
            "--out",
            "run",
            "--max-steps",
            "1",
            *TINY_SETS,
        )
        assert result.exit_code == 0, result.output
        run = start / "run"
        data = yaml.safe_load((run / "config.yaml").read_text())["data"]
        assert data["train"] == [str(photo_folder)] and data["val"] == str(photo_folder)
        os.chdir(elsewhere)
        result = _run("train", "--resume", str(run), "--max-steps", "2")
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    assert "done: 2 steps" in result.output
    assert "resumed at step 1" in (run / "train.log").read_text()


# 5. A PyTorch checkpoint given as --model.


def test_a_pytorch_checkpoint_as_model_points_to_import_and_run_folders(tmp_path, astronaut):
    checkpoint = tmp_path / "model_gauss25.pth"
    torch.save({"conv.weight": torch.zeros(1)}, checkpoint)
    write_image(tmp_path / "a.png", astronaut[:16, :16])
    result = _run(
        "denoise", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model", str(checkpoint)
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{checkpoint} is a PyTorch checkpoint" in result.output
    assert "not restorekit's descriptor" in result.output
    assert f"restorekit import {checkpoint} --arch" in result.output
    assert "-o model.safetensors" in result.output and "run folder" in result.output

    state = tmp_path / "run" / "checkpoints" / "last.state.pt"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match=r"resume point .*--resume .*run folder"):
        load_model(state)


# 6. Training logs its first step, with the time left.

LINE = r"^epoch\[1\], iter\[1\], loss:\d+\.\d{6}, [\d.]+ imgs/sec, lr:\d\.\d\de-\d\d, eta (.+)$"


def test_the_first_training_step_logs_a_line_with_an_eta(tmp_path, photo_folder):
    train(tiny_config(photo_folder, **{"train.log_every": 1000}), tmp_path / "run", max_steps=2)
    log = (tmp_path / "run" / "train.log").read_text()
    eta = re.findall(LINE, log, re.MULTILINE)
    assert len(eta) == 1 and re.fullmatch(r"\d+s|\d+m\d\ds|\d+h\d\dm", eta[0]), log
    assert "iter[2]" not in log  # then every log_every steps, as before

    budget = tiny_config(photo_folder, **{"train.log_every": 1000, "train.time_budget": "1h"})
    train(budget, tmp_path / "budget", max_steps=1)
    log = (tmp_path / "budget" / "train.log").read_text()
    eta = re.findall(LINE, log, re.MULTILINE)
    assert len(eta) == 1 and re.fullmatch(r"(59m\d\ds|1h00m) \(time budget\)", eta[0]), log


def test_durations_are_written_as_they_are_read():
    assert [format_duration(s) for s in (0.2, 45, 425, 4980, 90000)] == [
        "0s",
        "45s",
        "7m05s",
        "1h23m",
        "25h00m",
    ]
    assert parse_duration(format_duration(4980)) == 4980


def test_resuming_with_another_batch_size_is_refused(photo_folder, tmp_path):
    """A new train.batch_size (or accumulate, data.repeat) on --resume used to jump the epoch
    counter and the learning rate silently."""
    from conftest import tiny_config

    from restorekit.configs import load_config
    from restorekit.engine import train
    from restorekit.errors import ConfigError

    train(tiny_config(photo_folder), tmp_path / "run", max_steps=1)
    changed = load_config(tmp_path / "run" / "config.yaml", ["train.batch_size=4"])
    with pytest.raises(ConfigError, match="train.batch_size=4, but the run .* was trained with 2"):
        train(changed, tmp_path / "run", resume=True)
    same = load_config(tmp_path / "run" / "config.yaml", ["train.epochs=3"])  # allowed
    assert train(same, tmp_path / "run", resume=True, max_steps=2).steps == 2


def test_a_run_folder_that_is_a_file_and_an_empty_image_are_clear_errors(photo_folder, tmp_path):
    import numpy as np
    from conftest import tiny_config

    from restorekit import load_model
    from restorekit.engine import train
    from restorekit.errors import ConfigError, ImageFormatError

    (tmp_path / "afile").write_text("mine")
    with pytest.raises(ConfigError, match="is a file: a run needs a folder"):
        train(tiny_config(photo_folder), tmp_path / "afile", max_steps=1)
    assert (tmp_path / "afile").read_text() == "mine"
    with pytest.raises(ImageFormatError, match="empty image"):
        load_model("ne2ne-gauss25", device="cpu").denoise(np.zeros((0, 0, 3), np.uint8))


def test_what_a_folder_input_leaves_out_is_named(tmp_path, tiny_model_files):
    import numpy as np
    from click.testing import CliRunner

    from restorekit.cli import main
    from restorekit.io import write_image

    write_image(tmp_path / "in" / "a.png", np.zeros((40, 40, 3), np.uint8))
    (tmp_path / "in" / "more").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("x")
    args = ["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*args, "--model", str(tiny_model_files["denoise"])])
    assert result.exit_code == 0, result.output
    assert "warning: " in result.output and "left out 1 subfolder(s): more" in result.output
    assert "left out 1 file(s) of other types: notes.txt" in result.output


def test_a_full_disk_is_a_clear_message_and_leaves_no_half_file(tmp_path, monkeypatch):
    import errno

    import numpy as np
    import png
    from click.testing import CliRunner
    from PIL import Image

    from restorekit.cli import main
    from restorekit.io import write_image

    write_image(tmp_path / "a.png", np.zeros((40, 40, 3), np.uint8))

    def full(self, fp, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(fp))

    monkeypatch.setattr(Image.Image, "save", full)
    monkeypatch.setattr(png.Writer, "write", full)  # PNG is written row by row with pypng
    args = ["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*args, "--model", "edsr-baseline-x2", "--device", "cpu"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "No space left on device" in result.output and "free some space" in result.output
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_a_descriptor_with_an_impossible_size_multiple_is_named(tmp_path):
    from restorekit import load_model
    from restorekit.errors import ModelLoadError
    from restorekit.nets import build_net
    from restorekit.nets.files import ModelDescriptor, save_model

    descriptor = ModelDescriptor(arch="unet-n2n", arch_args={"features": 8})
    descriptor.size_multiple = 0  # as a hand-edited file would hold (not validated on assignment)
    save_model(tmp_path / "m.safetensors", build_net("unet-n2n", features=8), descriptor)
    with pytest.raises(
        ModelLoadError, match=r"size_multiple: input should be greater .* \(found 0\)"
    ):
        load_model(tmp_path / "m.safetensors", device="cpu")


def test_a_reader_that_leaves_early_ends_the_command_quietly():
    """`restorekit models | head -1`: the pipe closes before the table is written; the command
    stops with the shells' code for a closed pipe (141, as git) and prints no error."""
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first line
    try:
        done = subprocess.run(
            [sys.executable, "-m", "restorekit", "models"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == "", done.stderr
