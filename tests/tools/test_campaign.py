"""scripts/gpu_campaign.py: the one-command GPU window, checked on the CPU (--dry-run)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from restorekit import load_model
from restorekit.io import read_image, write_image

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_campaign.py"


def _campaign_module():
    spec = importlib.util.spec_from_file_location("gpu_campaign", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_dry_run_goes_through_every_stage_and_leaves_at_most_8_files(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "run", "--dry-run", "--out", str(out), "--minutes", "0.6"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(p.is_file() for p in out.iterdir()), files
    summary = json.loads((out / "summary.json").read_text())
    assert summary["environment"]["torch"] and summary["gpu_tests"]["exit_code"] in (0, 5)
    methods = summary["throughput"]["methods"]
    assert set(methods) == {"ne2ne", "n2v", "edsr-baseline-x2"}
    assert methods["ne2ne"]["bf16"]["images_per_s"] > 0 and methods["ne2ne"]["gflop_per_step"] > 0
    training = summary["training"]
    assert training["target"] == "ne2ne-gauss25" and training["steps"] > 0
    model = load_model(out / "model.safetensors", device="cpu")
    assert model.descriptor.arch == "unet-n2n" and model.descriptor.training["step"] > 0
    assert "campaign done" in (out / "campaign.log").read_text()


def test_every_target_names_a_preset_and_training_sets():
    campaign = _campaign_module()
    from restorekit.configs import load_config

    for target in campaign.TARGETS:
        load_config(target.preset)  # raises on an unknown preset
        assert target.train_sets and target.val_set not in ("Kodak24", "BSD68", "Set5", "B100")


def test_every_target_starts_from_a_model_of_its_own_network():
    # the first window lost its training stage: ne2ne-gauss25's shipped weights are a unet-n2n
    campaign = _campaign_module()
    from restorekit.configs import load_config
    from restorekit.nets.files import load_model_file
    from restorekit.zoo import resolve_model

    starts = 0
    for target in campaign.TARGETS:
        cfg = load_config(target.preset, list(target.overrides))
        if cfg.train.init_from is not None:
            _, descriptor = load_model_file(resolve_model(cfg.train.init_from))
            assert descriptor.arch == cfg.model.arch, target.name
            starts += 1
    assert starts >= 4  # ne2ne-gauss25 and the three EDSR-baselines continue shipped models


def test_the_pack_is_lossless_webp_or_grey_png_of_each_set(tmp_path):
    campaign = _campaign_module()
    source = tmp_path / "data"
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 50, 3), np.uint8)
    grey = rng.integers(0, 256, (30, 20, 1), np.uint8)
    write_image(source / "T91" / "a.png", rgb)
    write_image(source / "Train400" / "b.png", grey)
    target = campaign.Target("x", "n2v-bsd68", ("Train400",), "T91")
    size = campaign.write_pack(target, source, tmp_path / "pack")
    assert size == sum(p.stat().st_size for p in (tmp_path / "pack").rglob("*.*"))
    np.testing.assert_array_equal(read_image(tmp_path / "pack" / "T91" / "a.webp").array, rgb)
    back = read_image(tmp_path / "pack" / "Train400" / "b.png").array  # WebP has no grey
    np.testing.assert_array_equal(back, grey)


def test_the_pack_keeps_validation_and_cuts_training_images_to_its_budget(tmp_path):
    campaign = _campaign_module()
    source = tmp_path / "data"
    rng = np.random.default_rng(1)
    for k in range(3):
        write_image(source / "T91" / f"v{k}.png", rng.integers(0, 256, (40, 40, 3), np.uint8))
    for k in range(6):
        write_image(source / "Train400" / f"t{k}.png", rng.integers(0, 256, (64, 64, 1), np.uint8))
    target = campaign.Target("x", "n2v-bsd68", ("Train400",), "T91")
    whole = campaign.write_pack(target, source, tmp_path / "whole")
    one_training_image = (tmp_path / "whole" / "Train400" / "t0.png").stat().st_size
    budget = whole - 2 * one_training_image  # room for all but about two training images
    size = campaign.write_pack(target, source, tmp_path / "cut", budget)
    kept = sorted(p.name for p in (tmp_path / "cut" / "Train400").iterdir())
    assert size <= budget and len(list((tmp_path / "cut" / "T91").iterdir())) == 3
    assert 3 <= len(kept) < 6 and kept == [f"t{k}.png" for k in range(len(kept))]


BLOCKER = """
import sys
from importlib.abc import MetaPathFinder

class Absent(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {absent!r}:
            raise ImportError(f"{{name}} is not installed (blocked, as on the GPU image)")

sys.meta_path.insert(0, Absent())
"""


def test_the_gpu_tests_are_collected_without_the_packages_the_gpu_image_lacks(tmp_path):
    """The window's ``pytest -m gpu`` must not need zarr, napari, FastAPI...: a collection
    error there would lose every GPU test of a window."""
    campaign = _campaign_module()
    (tmp_path / "sitecustomize.py").write_text(BLOCKER.format(absent=set(campaign.ABSENT_THERE)))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    probe = subprocess.run(
        [sys.executable, "-c", "import zarr"], env=env, capture_output=True, text=True
    )
    assert "blocked, as on the GPU image" in probe.stderr  # the blocker works
    result = subprocess.run(
        campaign.gpu_test_command(collect_only=True),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    collected = re.search(r"(\d+) tests? collected", result.stdout)
    assert collected and int(collected.group(1)) >= 10, result.stdout[-2000:]


def test_a_failing_stage_is_recorded_and_the_next_one_still_runs(tmp_path):
    campaign = _campaign_module()
    state = campaign.Campaign(tmp_path, float("inf"), dry_run=True)

    def broken():
        raise RuntimeError("inductor fell over")

    campaign.stage(state, "throughput", broken)
    campaign.stage(state, "training", lambda: {"steps": 3})
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "RuntimeError: inductor fell over" in summary["throughput"]["error"]
    assert summary["training"] == {"steps": 3}
