"""Multi-process training with torchrun + DDP (gloo on CPU), run as real subprocesses."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_config
from safetensors.torch import load_file

from restorekit.engine import train


def _config_file(folder: Path, tmp_path: Path, **train_fields) -> Path:
    cfg = tiny_config(folder, **{"data.repeat": 2, "train.threads": 1})
    data = cfg.model_dump(mode="json")
    data["train"].update(train_fields)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _torchrun(*args: str, nproc: int = 2, **popen) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "restorekit",
        "train",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def test_two_processes_take_the_same_steps_as_one(photo_folder, tmp_path):
    config = _config_file(photo_folder, tmp_path)
    run = _torchrun(str(config), "--out", str(tmp_path / "ddp"), "--max-steps", "3")
    output = run.communicate(timeout=120)[0]
    assert run.returncode == 0, output
    assert "global batch 2 = 2 process(es) x 1 x 1 accumulation" in output, output
    assert output.count("done: 3 steps") == 1, output  # only the main process reports

    # The same thread count as each worker, so that float sums run in the same order.
    cfg = tiny_config(photo_folder, **{"data.repeat": 2, "train.threads": 1})
    single = train(cfg, tmp_path / "one", max_steps=3)
    a, b = _weights(tmp_path / "ddp" / "model.safetensors"), _weights(single.model_path)
    # Same samples, noise and masks; only the order of float32 sums differs (DDP averages the
    # two half-batch gradients instead of one mean over the batch), and Adam's first steps
    # magnify it where a gradient is near zero: measured up to 1.6e-6 (unet-ne2ne, He init),
    # allowed 1e-5, a thirtieth of one step's change at lr 3e-4 (a wrong batch split moves
    # weights by about that step).
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5)

    # One log, one TensorBoard file, one set of checkpoints: only rank 0 writes.
    assert len(list((tmp_path / "ddp" / "tensorboard").iterdir())) == 1
    log = (tmp_path / "ddp" / "train.log").read_text()
    assert log.count("stopped at step 3") == 1
    assert sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()) == [
        "last.safetensors",
        "last.state.pt",
        "previous.state.pt",  # the resume point before the last (restorekit.engine.checkpoint)
    ]


def test_gradient_accumulation_equals_the_full_batch(photo_folder, tmp_path):
    full = train(tiny_config(photo_folder, **{"train.batch_size": 4}), tmp_path / "a", max_steps=2)
    accumulated = train(
        tiny_config(photo_folder, **{"train.batch_size": 4, "train.accumulate": 2}),
        tmp_path / "b",
        max_steps=2,
    )
    a, b = _weights(full.model_path), _weights(accumulated.model_path)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)


def test_batch_that_does_not_split_over_processes_is_refused(photo_folder, tmp_path):
    from restorekit.errors import ConfigError

    cfg = tiny_config(photo_folder, **{"train.batch_size": 3, "train.accumulate": 2})
    with pytest.raises(ConfigError, match="must be divisible"):
        train(cfg, tmp_path / "run")


def _worker_pids(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and "torch.distributed.run" not in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc").exists(), reason="finds worker processes through /proc")
def test_killing_one_process_stops_the_run_clearly_and_resume_continues(photo_folder, tmp_path):
    config = _config_file(photo_folder, tmp_path, checkpoint_every=5, log_every=1000)
    out = tmp_path / "killed"
    run = _torchrun(str(config), "--out", str(out), "--set", "data.repeat=400")
    state = out / "checkpoints" / "last.state.pt"
    deadline = time.time() + 90
    while not state.exists() and time.time() < deadline:
        time.sleep(0.2)
    workers = _worker_pids(str(out))
    assert len(workers) == 2, workers
    os.kill(max(workers), signal.SIGKILL)
    output = run.communicate(timeout=120)[0]
    assert run.returncode != 0
    assert "the process group failed at step" in output and f"--resume {out}" in output, output

    saved = torch.load(state, weights_only=True)["step"]
    resumed = _torchrun("--resume", str(out), "--max-steps", str(saved + 2))
    output = resumed.communicate(timeout=120)[0]
    assert resumed.returncode == 0, output
    assert f"resumed at step {saved}" in output and f"done: {saved + 2} steps" in output
