"""Verified checkpoints: a damaged resume point is detected before any step, named, and the
previous one used, or the run stops with a clear error; killed at random moments, training
resumes to the very weights of an uninterrupted run."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import tiny_config
from safetensors.torch import load_file

from restorekit.cli import main
from restorekit.engine import train
from restorekit.engine.checkpoint import (
    CheckpointError,
    CheckpointRecoveryWarning,
    check_state_file,
    payload_digest,
    previous_state_path,
    remove_leftover_temporaries,
)
from restorekit.io import write_image
from restorekit.io.files import PROCESS_STARTED

FIELDS = {"train.epochs": 3, "train.checkpoint_every": 2, "train.threads": 1}  # 6 steps


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut):
    folder = tmp_path_factory.mktemp("ckpt") / "photos"
    for i, (top, left) in enumerate([(0, 0), (100, 20), (150, 120), (40, 128)]):
        write_image(folder / f"img{i}.png", astronaut[top : top + 96, left : left + 128])
    return folder


@pytest.fixture(scope="module")
def runs(photos, tmp_path_factory):
    """An uninterrupted 6-step run, and one stopped at step 3 (checkpoints at steps 2 and 3)."""
    root = tmp_path_factory.mktemp("runs")
    cfg = tiny_config(photos, **FIELDS)
    straight = train(cfg, root / "straight")
    train(cfg, root / "split", max_steps=3)
    return cfg, load_file(str(straight.model_path)), root / "split"


def state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_weights(path: Path, expected: dict) -> None:
    got = load_file(str(path))
    assert got.keys() == expected.keys()
    for key in got:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-6)


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x10]) + data[middle + 1 :]


CORRUPTIONS = {
    "bit flip in the middle": flip_middle,
    "truncated": lambda data: data[: len(data) * 2 // 3],
    "junk": lambda data: random.Random(0).randbytes(len(data)),
    "empty": lambda data: b"",
    "junk appended": lambda data: data + b"junk" * 10,
}


def test_every_checkpoint_carries_its_checksum_and_the_previous_one_is_kept(runs):
    _, _, split = runs
    last, previous = split / "checkpoints" / "last.state.pt", previous_state_path(split)
    assert state(last)["step"] == 3 and state(previous)["step"] == 2
    for path in (last, previous):
        loaded = state(path)
        assert loaded["checksum"].startswith("sha256:")
        assert payload_digest(loaded) == loaded["checksum"] and check_state_file(path) is None


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_damaged_last_checkpoint_is_named_and_the_previous_one_used(runs, tmp_path, corruption):
    cfg, expected, split = runs
    run = shutil.copytree(split, tmp_path / "run")
    last = run / "checkpoints" / "last.state.pt"
    last.write_bytes(CORRUPTIONS[corruption](last.read_bytes()))
    assert check_state_file(last) is not None
    with pytest.warns(CheckpointRecoveryWarning, match=r"last\.state\.pt .*previous\.state\.pt"):
        result = train(cfg, run, resume=True)
    log = (run / "train.log").read_text()
    assert "resumed at step 2" in log  # the damaged step-3 point was passed over: 1 step lost
    assert result.steps == 6
    assert_same_weights(result.model_path, expected)
    # The damaged file was not kept as the previous resume point.
    assert check_state_file(last) is None and check_state_file(previous_state_path(run)) is None


def test_a_missing_last_checkpoint_resumes_from_the_previous_one(runs, tmp_path):
    cfg, expected, split = runs
    run = shutil.copytree(split, tmp_path / "run")
    (run / "checkpoints" / "last.state.pt").unlink()  # killed between the two renames
    with pytest.warns(CheckpointRecoveryWarning, match="is missing"):
        result = train(cfg, run, resume=True)
    assert_same_weights(result.model_path, expected)


@pytest.mark.parametrize("previous", ["damaged", "missing"])
def test_no_usable_checkpoint_stops_with_a_clear_error_and_changes_nothing(
    runs, tmp_path, previous
):
    cfg, _, split = runs
    run = shutil.copytree(split, tmp_path / "run")
    folder = run / "checkpoints"
    (folder / "last.state.pt").write_bytes(flip_middle((folder / "last.state.pt").read_bytes()))
    if previous == "damaged":
        previous_state_path(run).write_bytes(b"")
    else:
        previous_state_path(run).unlink()
    before = files(folder), files(run)
    with pytest.raises(CheckpointError) as info:
        train(cfg, run, resume=True)
    message = str(info.value)
    assert "last.state.pt is damaged: its content does not match the SHA-256" in message
    assert "previous.state.pt " + ("is empty" if previous == "damaged" else "is missing") in message
    assert "Nothing was trained" in message and "Fix: restore" in message
    assert "weights_only" not in message
    result = CliRunner().invoke(main, ["train", "--resume", str(run)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no usable checkpoint" in result.output and "weights_only" not in result.output
    after = files(folder), files(run)
    assert after[0] == before[0]  # the checkpoints, and the model, are as they were
    assert after[1]["model.safetensors"] == before[1]["model.safetensors"]


def test_a_bit_flip_anywhere_is_detected_or_changes_nothing_loaded(runs, tmp_path):
    _, _, split = runs
    data = (split / "checkpoints" / "last.state.pt").read_bytes()
    checksum = state(split / "checkpoints" / "last.state.pt")["checksum"]
    rng = random.Random(1)
    detected = 0
    for position in rng.sample(range(len(data)), 40):
        flipped = tmp_path / "flipped.state.pt"
        bit = 1 << rng.randrange(8)
        flipped.write_bytes(data[:position] + bytes([data[position] ^ bit]) + data[position + 1 :])
        problem = check_state_file(flipped)
        if problem is None:  # bytes never read (zip padding, a timestamp): the same content
            assert payload_digest(state(flipped)) == checksum
        else:
            detected += 1
            assert "weights_only" not in problem
    assert detected >= 30  # most bytes are tensor data


def test_leftover_temporary_files_of_a_run_are_removed(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    leftovers = [
        run / "checkpoints" / ".last.state.pt.0a1b2c3d.tmp",
        run / ".model.safetensors.1234abcd.tmp",
    ]
    kept = [run / "checkpoints" / "last.state.pt", run / "checkpoints" / "notes.tmp"]
    for path in leftovers + kept:
        path.write_bytes(b"x")
    assert sorted(remove_leftover_temporaries(run)) == []  # newer than this process
    old = PROCESS_STARTED - 60  # left by a process before this one
    for path in leftovers + kept:
        os.utime(path, (old, old))
    assert sorted(remove_leftover_temporaries(run)) == sorted(leftovers)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in leftovers)


KILL_FIELDS = {
    "model.features": 8,
    "data.patch_size": 64,
    "train.batch_size": 2,
    "train.log_every": 1,
    "data.repeat": 3,  # 6 steps per epoch
    "train.epochs": 2,
    "train.checkpoint_every": 1,  # a save after every step: kills often land inside one
    "train.threads": 1,
}


def _train_process(photos: Path, run: Path, resume: bool) -> subprocess.Popen:
    if resume:
        args = ["train", "--resume", str(run)]
    else:
        args = ["train", "ne2ne-gauss25", "--data", str(photos), "--out", str(run)]
        args += [a for k, v in KILL_FIELDS.items() for a in ("--set", f"{k}={v}")]
    return subprocess.Popen(
        [sys.executable, "-m", "restorekit", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


FIRST_LINE = re.compile(r"^restorekit \d", re.MULTILINE)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _wait_for(condition, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and process.poll() is None:
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.02)


def test_training_killed_at_random_moments_resumes_to_the_same_weights(photos, tmp_path):
    expected = load_file(
        str(train(tiny_config(photos, **KILL_FIELDS), tmp_path / "straight").model_path)
    )
    run, rng = tmp_path / "killed", random.Random(7)
    last, previous = run / "checkpoints" / "last.state.pt", previous_state_path(run)
    log = run / "train.log"
    process = _train_process(photos, run, resume=False)
    kills = resumes = 0
    while True:
        starts = resumes + 1  # first lines of the runs so far, the current one included
        _wait_for(lambda n=starts: len(FIRST_LINE.findall(_read(log))) >= n, process)
        _wait_for(lambda: last.exists() or previous.exists(), process)
        time.sleep(rng.uniform(0.0, 0.8))
        if kills == 3 or process.poll() is not None:
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        # At any moment of a save: a usable last checkpoint, or (between the renames) none
        # and a usable previous one.
        assert (check_state_file(last) is None) or (
            not last.exists() and check_state_file(previous) is None
        )
        process = _train_process(photos, run, resume=True)
        resumes += 1
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors.decode()
    text = log.read_text()
    trained = len(re.findall(r"^epoch\[\d+\], iter\[\d+\], loss:", text, re.MULTILINE))
    assert kills >= 1 and len(re.findall("resumed at step", text)) == resumes
    assert_same_weights(run / "model.safetensors", expected)
    removed = remove_leftover_temporaries(run, before=time.time())
    assert not list(run.rglob("*.tmp"))
    print(  # shown with -s: the fault test's counts
        f"kills {kills}, resumes {resumes}, steps trained {trained} for 12, "
        f"lost {trained - 12}, leftover temporaries removed {len(removed)}"
    )


def test_an_fp16_resume_without_a_saved_loss_scale_says_so(photos, tmp_path, monkeypatch):
    """A checkpoint written without a loss scale (another precision, or an older run) resumed
    with loss scaling on: the log says the scale starts again. (An enabled CPU GradScaler
    stands in for fp16's, which needs a GPU.)"""
    from restorekit.engine.step import Stepper

    cfg = tiny_config(photos, **FIELDS, **{"train.device": "cpu"})
    train(cfg, tmp_path / "run", max_steps=3)  # no loss scaling: no scaler state saved
    built = Stepper.from_config

    def with_scaler(config, context=None):
        stepper = built(config, context)
        stepper.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        return stepper

    monkeypatch.setattr(Stepper, "from_config", with_scaler)
    train(cfg, tmp_path / "run", resume=True)
    log = (tmp_path / "run" / "train.log").read_text()
    assert "holds no fp16 loss scale: it starts again at 1024" in log
