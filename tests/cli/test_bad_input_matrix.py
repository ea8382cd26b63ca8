"""The bad-input matrix: one case per class of mistake and per command (denoise, upscale,
eval, train, export, and the Python API). Each command must refuse with exit code 1 or 2, a
message that names the problem, no traceback, and every file that was there before unchanged.
(The classes of data loss, per output situation, are in test_safety.py; checkpoints in
tests/engine/test_checkpoints.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from test_safety import invoke, snapshot, ws  # noqa: F401 - ws is the shared fixture

from restorekit.configs import load_config
from restorekit.errors import RestorekitError
from restorekit.io import read_image, write_image


@pytest.fixture
def user(ws, tiny_model_files, astronaut):  # noqa: F811 - the imported fixture
    """``ws`` plus bad/junk.png (not an image), float/f.tif (0-255 in a float TIFF), an
    upscaler (models/up.safetensors) and a run folder whose checkpoint is junk."""
    (ws / "bad").mkdir()
    (ws / "bad" / "junk.png").write_bytes(b"these are not pixels")
    (ws / "float").mkdir()
    tifffile.imwrite(ws / "float" / "f.tif", astronaut[:32, :40].astype(np.float32))
    (ws / "models" / "up.safetensors").write_bytes(tiny_model_files["upscale"].read_bytes())
    write_image(ws / "big" / "b.png", np.tile(astronaut, (2, 2, 1)))
    run = ws / "runs" / "broken"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.state.pt").write_bytes(b"junk")
    (run / "config.yaml").write_text("data: {train: [photos], patch_size: 64}\n")
    return ws


DEN, UP = "models/den.safetensors", "models/up.safetensors"
TRAIN = ["train", "ne2ne-gauss25", "--set", "model.features=8", "--set", "data.patch_size=64",
         "--set", "data.repeat=8"]  # fmt: skip
EVAL_DEN = ["eval", "--model", DEN, "--noise", "gauss:25"]
EVAL_UP = ["eval", "--model", UP, "--scale", "2"]

CASES = {  # class: {command: (args, words the message must hold)}
    "unreadable image": {
        "denoise": (["denoise", "bad", "-o", "o", "--model", DEN], ["junk.png"]),
        "upscale": (["upscale", "bad", "-o", "o", "--model", UP], ["junk.png"]),
        "eval": ([*EVAL_DEN, "--data", "bad"], ["junk.png"]),
        "train": ([*TRAIN, "--data", "bad", "--out", "r"], ["junk.png"]),
    },
    "float data on 0-255": {
        "denoise": (["denoise", "float", "-o", "o", "--model", DEN], ["f.tif", "255"]),
        "upscale": (["upscale", "float", "-o", "o", "--model", UP], ["f.tif", "255"]),
        "eval": ([*EVAL_DEN, "--data", "float"], ["f.tif", "255"]),
        "train": ([*TRAIN, "--data", "float", "--out", "r"], ["f.tif", "255"]),
    },
    "bad device name": {
        "denoise": (["denoise", "photos", "-o", "o", "--model", DEN, "--device", "gpu0"], ["gpu0"]),
        "upscale": (["upscale", "photos", "-o", "o", "--model", UP, "--device", "gpu0"], ["gpu0"]),
        "eval": ([*EVAL_DEN, "--data", "photos", "--device", "gpu0"], ["gpu0"]),
        "train": ([*TRAIN, "--data", "photos", "--set", "train.device=gpu0"], ["train.device"]),
    },
    "unknown model": {
        "denoise": (["denoise", "photos", "-o", "o", "--model", "nope"], ["nope"]),
        "upscale": (["upscale", "photos", "-o", "o", "--model", "nope"], ["nope"]),
        "eval": (["eval", "--model", "nope", "--data", "photos"], ["nope"]),
        "export": (["export", "--model", "nope", "-o", "x.onnx"], ["nope"]),
        "train": ([*TRAIN, "--data", "photos", "--init-from", "nope", "--out", "r"], ["nope"]),
    },
    "output under a file": {
        "denoise": (["denoise", "photos", "-o", "notes.txt/x", "--model", DEN], ["notes.txt"]),
        "upscale": (["upscale", "photos", "-o", "notes.txt/x", "--model", UP], ["notes.txt"]),
        "eval": ([*EVAL_DEN, "--data", "photos", "--json", "notes.txt/r.json"], ["notes.txt"]),
        "export": (["export", "--model", DEN, "-o", "notes.txt/m.onnx"], ["notes.txt"]),
        "train": ([*TRAIN, "--data", "photos", "--out", "notes.txt"], ["notes.txt"]),
    },
    "model of the other task": {
        "denoise": (["denoise", "photos", "-o", "o", "--model", UP], ["upscale"]),
        "upscale": (["upscale", "photos", "-o", "o", "--model", DEN], ["denois"]),
        "eval": ([*EVAL_UP[:3], "--data", "photos", "--noise", "gauss:25"], ["--noise"]),
    },
    "bad config value": {
        "train": ([*TRAIN, "--data", "photos", "--set", "train.epochs=0"], ["train.epochs"]),
        "eval": ([*EVAL_DEN, "--data", "photos", "--noise", "gauss:abc"], ["gauss:abc"]),
    },
    "damaged checkpoint": {
        "train": (["train", "--resume", "runs/broken"], ["last.state.pt"]),
    },
    "tile barely above the overlap": {
        "denoise": (
            ["denoise", "big", "-o", "o", "--model", DEN, "--tile", "64", "--overlap", "56"],
            ["tile"],
        ),
        "upscale": (
            ["upscale", "big", "-o", "o", "--model", UP, "--tile", "40", "--overlap", "32"],
            ["tile"],
        ),
    },
}
MATRIX = [(kind, command) for kind, commands in CASES.items() for command in commands]


@pytest.mark.parametrize(("kind", "command"), MATRIX, ids=[f"{k}-{c}" for k, c in MATRIX])
def test_every_command_refuses_each_mistake_clearly_and_loses_nothing(user, kind, command):
    args, words = CASES[kind][command]
    before = snapshot(user)
    result = invoke(args)
    assert result.exit_code in (1, 2), (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit), result.exception  # no crash
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, (word, result.output)
    after = snapshot(user)
    assert {k: after.get(k) for k in before} == before  # nothing there before was touched


API_CASES = {
    "unreadable image": lambda folder: read_image(folder / "bad" / "junk.png"),
    "float data on 0-255": lambda folder: _load(DEN).denoise(np.full((8, 8, 3), 200.0, np.float32)),
    "bad device name": lambda folder: _load(DEN, device="gpu0"),
    "unknown model": lambda folder: _load("nope"),
    "model of the other task": lambda folder: _load(UP).denoise(np.zeros((8, 8, 3), np.uint8)),
    "bad config value": lambda folder: load_config("ne2ne-gauss25", ["train.epochs=0"]),
    "empty array": lambda folder: _load(DEN).denoise(np.zeros((0, 8, 3), np.uint8)),
}


def _load(name: str, device: str | None = None):
    from restorekit.infer.model import load_model

    return load_model(name, device=device)


@pytest.mark.parametrize("kind", list(API_CASES))
def test_the_python_api_raises_a_restorekit_error_naming_the_problem(user, kind):
    with pytest.raises(RestorekitError) as caught:
        API_CASES[kind](user)
    assert str(caught.value) and "Traceback" not in str(caught.value)


def test_the_matrix_covers_every_command():
    commands = {command for _, command in MATRIX}
    assert commands == {"denoise", "upscale", "eval", "train", "export"}
    assert len(MATRIX) + len(API_CASES) >= 35
