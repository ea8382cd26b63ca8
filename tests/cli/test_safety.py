"""Nothing lost: every command that writes results refuses, before any work and with a message
that says how to go on, what would replace an input, another output, an existing file or a
model; and the allowed ways (--overwrite, --skip-existing) do what they say.

Each refused case checks the exit code, the message (never a traceback) and that every file
and folder of the workspace is unchanged (bytes and mtimes), none added."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from conftest import write_tiny_n2v

from restorekit.cli import main
from restorekit.infer.onnx_export import export_onnx
from restorekit.io import read_image, write_image, write_stack
from restorekit.io.files import PROCESS_STARTED, remove_orphan_temporaries
from restorekit.io.outputs import OutputPathError, plan_outputs


@pytest.fixture
def ws(tmp_path, astronaut, tiny_model_files, monkeypatch):
    """A user's folder, the working directory: photos/{a,b}.png, other/a.png,
    mixed/x.{png,jpg}, stacks/s.tif, notes.txt, a model (models/den.safetensors), and
    out/a.png, a file of the user's where the results go."""
    for name in ("photos/a.png", "photos/b.png", "other/a.png", "mixed/x.png", "mixed/x.jpg"):
        write_image(tmp_path / name, astronaut[:32, :40])
    write_stack(tmp_path / "stacks" / "s.tif", np.zeros((4, 16, 16), np.uint8))
    (tmp_path / "notes.txt").write_text("my notes")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "den.safetensors").write_bytes(tiny_model_files["denoise"].read_bytes())
    write_image(tmp_path / "kept" / "a.png", astronaut[:8, :8])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file (size, SHA-256, mtime) and folder under ``root``."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_dir():
            found[key] = ("dir",)
        else:
            info = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[key] = (info.st_size, digest, info.st_mtime_ns)
    return found


def invoke(args: list[str]):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_refused(result, *fragments: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no crash
    assert "Traceback" not in result.output and "Error: " in result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


# The file commands: one case per class, for denoise and upscale. (cwd, args, message parts)
FILE_CASES = {
    "out=input folder": (".", ["photos", "-o", "photos"], ["would replace 2 input file(s)"]),
    "out=. beside inputs": ("photos", ["a.png", "b.png", "-o", "."], ["-o . would replace"]),
    "out=input folder via ..": (".", ["photos", "-o", "other/../photos"], ["would replace"]),
    "out=input folder via link": (".", ["photos", "-o", "link"], ["would replace 2 input"]),
    "out=input file": (".", ["photos/a.png", "-o", "photos/a.png"], ["one of the input files"]),
    "same name, two folders": (
        ".",
        ["photos/a.png", "other/a.png", "-o", "out"],
        ["photos/a.png and other/a.png -> out/a.png"],
    ),
    "same stem, --format": (
        ".",
        ["mixed/x.png", "mixed/x.jpg", "--format", "png", "-o", "out"],
        ["mixed/x.png and mixed/x.jpg -> out/x.png", "drop --format png"],
    ),
    "existing output": (".", ["photos", "-o", "kept"], ["1 output file(s) already exist"]),
    "output is a folder": (".", ["photos", "-o", "."], ["which is a folder"]),
    "out is a file": (".", ["photos", "-o", "notes.txt"], ["-o notes.txt is a file"]),
    "out under a file": (".", ["photos", "-o", "notes.txt/x"], ["notes.txt is a file"]),
    "--overwrite with --skip-existing": (
        ".",
        ["photos", "-o", "new", "--overwrite", "--skip-existing"],
        ["exclude each other"],
    ),
}


@pytest.mark.parametrize("command", ["denoise", "upscale"])
@pytest.mark.parametrize("case", list(FILE_CASES))
def test_file_commands_refuse_before_any_work(ws, tiny_model_files, command, case):
    cwd, args, fragments = FILE_CASES[case]
    (ws / "link").symlink_to(ws / "photos")
    if case == "output is a folder":
        (ws / "a.png").mkdir()  # -o . would write ./a.png: a folder of that name
    if case == "existing output":
        fragments = [*fragments, "kept/a.png", "--overwrite", "--skip-existing"]
    if case != "--overwrite with --skip-existing":
        fragments = [*fragments, "Nothing was written", "Fix: "]
    before = snapshot(ws)
    os.chdir(ws / cwd)
    result = invoke([command, *args, "--model", tiny_model_files[command]])
    assert_refused(result, *fragments)
    assert "backend:" not in result.output  # refused before the model was even opened
    assert snapshot(ws) == before


def test_stacks_in_place_are_refused_too(ws):
    before = snapshot(ws)
    result = invoke(["denoise", "stacks", "-o", "stacks", "--axes", "ZYX", "--model", "x"])
    assert_refused(result, "would replace 1 input file(s)", "stacks/s.tif", "--overwrite")
    assert snapshot(ws) == before


EVAL_CASES = {
    "save-dir = data": (["--save-dir", "photos"], ["--save-dir photos is inside --data"]),
    "save-dir inside data": (["--save-dir", "photos/x"], ["is inside --data photos"]),
    "save-dir is a file": (["--save-dir", "notes.txt"], ["--save-dir notes.txt is a file"]),
    "existing saved image": (
        ["--save-dir", "kept"],
        ["already exist in kept: kept/a_noisy.png", "--overwrite"],
    ),
    "saved names collide": (
        ["--save-dir", "out"],
        ["mixed/x.jpg and mixed/x.png -> out/x_noisy.png"],
    ),
    "--json is an input": (["--json", "photos/a.png"], ["--json photos/a.png is one of the"]),
    "--json over a user's file": (
        ["--json", "kept/a.png", "--overwrite"],
        ["--json kept/a.png exists and is not a .json file", "--json kept/a.json"],
    ),
    "--json is a folder": (["--json", "models"], ["--json models is a folder", "models/report"]),
    "--json under a file": (["--json", "notes.txt/r.json"], ["notes.txt is a file"]),
    "existing --json": (["--json", "old.json"], ["--json old.json already exists", "--overwrite"]),
}


@pytest.mark.parametrize("command", ["denoise", "upscale"])
@pytest.mark.parametrize("case", list(EVAL_CASES))
def test_eval_refuses_to_write_into_its_data_or_over_files(ws, tiny_model_files, command, case):
    args, fragments = EVAL_CASES[case]
    data = "mixed" if case == "saved names collide" else "photos"
    if case == "existing saved image":
        write_image(ws / "kept" / "a_noisy.png", np.zeros((4, 4), np.uint8))
        if command == "upscale":
            fragments = ["already exist in kept: kept/a_lr.png", "--overwrite"]
            write_image(ws / "kept" / "a_lr.png", np.zeros((4, 4), np.uint8))
    if case == "existing --json":
        (ws / "old.json").write_text("{}")
    if command == "upscale" and case == "saved names collide":
        fragments = ["mixed/x.jpg and mixed/x.png -> out/x_lr.png"]
    before = snapshot(ws)
    noise = ["--noise", "gauss25"] if command == "denoise" else []
    result = invoke(["eval", "--model", tiny_model_files[command], "--data", data, *noise, *args])
    assert_refused(result, *fragments)
    assert "PSNR" not in result.output  # nothing was evaluated
    assert "--skip-existing" not in result.output  # eval has none
    assert snapshot(ws) == before


EXPORT_CASES = {
    "out = the model": (["-o", "models/den.safetensors"], ["is the model being exported"]),
    "out = the model via ..": (
        ["-o", "photos/../models/den.safetensors"],
        ["is the model being exported", "Fix: name a new .onnx file"],
    ),
    "out = another model file": (
        ["-o", "models/other.safetensors", "--overwrite"],
        ["exists and is not an .onnx file", "(--overwrite or not)"],
    ),
    "out = a folder": (["-o", "photos"], ["-o photos is a folder", "photos/den.onnx"]),
    "out not .onnx": (["-o", "den.model"], ["must be named *.onnx", "-o den.onnx"]),
    "existing .onnx": (["-o", "old.onnx"], ["-o old.onnx already exists", "--overwrite"]),
    "out .zip without --format": (["-o", "den.zip"], ["add --format bioimageio", "-o den.onnx"]),
}


@pytest.mark.parametrize("case", list(EXPORT_CASES))
def test_export_never_writes_over_a_model_or_a_file(ws, case):
    args, fragments = EXPORT_CASES[case]
    (ws / "models" / "other.safetensors").write_bytes(b"a model of the user's")
    (ws / "old.onnx").write_bytes(b"an earlier export")
    before = snapshot(ws)
    result = invoke(["export", "--model", "models/den.safetensors", *args])
    assert_refused(result, *fragments)
    assert snapshot(ws) == before


def test_the_python_api_refuses_the_same(ws, tiny_model_files):
    before = snapshot(ws)
    with pytest.raises(OutputPathError, match="would replace 2 input file"):
        plan_outputs([ws / "photos" / "a.png", ws / "photos" / "b.png"], ws / "photos")
    with pytest.raises(OutputPathError, match="is the model being exported"):
        export_onnx(ws / "models" / "den.safetensors", ws / "models" / "den.safetensors")
    with pytest.raises(OutputPathError, match="is a folder"):
        export_onnx(ws / "models" / "den.safetensors", ws / "models")
    with pytest.raises(OutputPathError, match="not an .onnx file"):
        export_onnx(ws / "models" / "den.safetensors", ws / "notes.txt")
    assert snapshot(ws) == before


# What the user may ask for: each does what it says, and no more.


def test_skip_existing_skips_and_says_how_many(ws, tiny_model_files):
    kept = snapshot(ws)["kept/a.png"]
    args = ["denoise", "photos", "-o", "kept", "--skip-existing"]
    args += ["--model", tiny_model_files["denoise"]]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert "1 of 2 input(s) skipped: their output exists (--skip-existing): kept/a.png" in (
        result.output
    )
    assert "1 image(s) denoised into kept; 1 skipped (output exists)" in result.output
    assert snapshot(ws)["kept/a.png"] == kept and (ws / "kept" / "b.png").is_file()
    again = invoke(args)
    assert again.exit_code == 0 and "nothing to do: every output exists" in again.output


@pytest.mark.parametrize("command", ["denoise", "upscale"])
def test_overwrite_replaces_the_inputs_in_place_only_when_asked(ws, tiny_model_files, command):
    before = snapshot(ws)
    result = invoke(
        [command, "photos", "-o", "photos", "--overwrite", "--model", tiny_model_files[command]]
    )
    assert result.exit_code == 0, result.output
    assert "2 input(s) replaced by their result (--overwrite)" in result.output
    after = snapshot(ws)
    changed = {k for k in before if before[k] != after.get(k)}
    assert changed == {"photos/a.png", "photos/b.png"} and after.keys() == before.keys()
    scale = 2 if command == "upscale" else 1
    assert read_image(ws / "photos" / "a.png").array.shape == (32 * scale, 40 * scale, 3)


def test_overwrite_replaces_an_existing_output_and_says_so(ws, tiny_model_files):
    result = invoke(
        ["denoise", "photos", "-o", "kept", "--overwrite", "--model", tiny_model_files["denoise"]]
    )
    assert result.exit_code == 0, result.output
    assert "1 existing output file(s) replaced (--overwrite)" in result.output
    assert read_image(ws / "kept" / "a.png").array.shape == (32, 40, 3)


def test_an_input_given_twice_is_processed_once(ws, tiny_model_files):
    result = invoke(
        ["denoise", "photos", "photos/a.png", "-o", "out", "--model", tiny_model_files["denoise"]]
    )
    assert result.exit_code == 0, result.output
    assert "2 image(s) denoised into out" in result.output


def test_export_replaces_an_onnx_file_with_overwrite(ws):
    (ws / "old.onnx").write_bytes(b"an earlier export")
    result = invoke(
        ["export", "--model", "models/den.safetensors", "-o", "old.onnx", "--overwrite"]
    )
    assert result.exit_code == 0, result.output
    assert (ws / "old.onnx").stat().st_size > 1000 and not list(ws.glob(".*.tmp"))


def test_leftover_temporary_files_are_removed_and_nothing_else(ws, tiny_model_files):
    out = ws / "out"
    out.mkdir()
    old = PROCESS_STARTED - 3600  # left by a process before this one
    orphans = [".a.png.0123abcd.tmp", ".x y.tif.89abcdef.tmp"]
    decoys = [
        ".a.png.tmp",  # no 8-hex part
        "a.png.0123abcd.tmp",  # not hidden
        ".a.png.0123ABCD.tmp",  # not lowercase hex
        ".a.png.0123abcd.tmp.bak",
        ".a.png.0123abc.tmp",  # 7 digits
    ]
    for name in orphans + decoys:
        (out / name).write_bytes(b"partial")
        os.utime(out / name, (old, old))
    (out / ".b.png.fedcba98.tmp").mkdir()  # a folder of that name: not a file
    os.utime(out / ".b.png.fedcba98.tmp", (old, old))
    (out / ".c.png.00000000.tmp").symlink_to(ws / "notes.txt")  # a link: left alone
    (out / ".d.png.11111111.tmp").write_bytes(b"being written right now")  # newer than start
    assert remove_orphan_temporaries(out, before=old) == []  # none older than that
    result = invoke(["denoise", "photos", "-o", "out", "--model", tiny_model_files["denoise"]])
    assert result.exit_code == 0, result.output
    assert "removed 2 temporary file(s) left in out by an interrupted run" in result.output
    left = {p.name for p in out.iterdir()}
    assert left == {*decoys, ".b.png.fedcba98.tmp", ".c.png.00000000.tmp", ".d.png.11111111.tmp",
                    "a.png", "b.png"}  # fmt: skip
    assert (ws / "notes.txt").read_text() == "my notes"


def test_in_place_stacks_are_read_whole_before_they_are_replaced(ws):
    (ws / "models").mkdir(exist_ok=True)
    write_tiny_n2v(ws / "models" / "n2v.safetensors", dims=3, mean=100.0, std=50.0, method=None)
    stack = np.random.default_rng(0).integers(0, 255, (4, 16, 16), dtype=np.uint8)
    write_stack(ws / "stacks" / "s.tif", stack)
    args = ["denoise", "stacks", "-o", "stacks", "--axes", "ZYX", "--overwrite"]
    result = invoke([*args, "--model", "models/n2v.safetensors", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    out = tifffile.imread(ws / "stacks" / "s.tif")
    assert out.shape == stack.shape and not np.array_equal(out, stack)
