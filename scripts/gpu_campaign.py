"""One GPU window, one command: the environment, the GPU tests, a throughput table, then training.

This project gets short, occasional GPU windows (about 15 minutes of device time, one command
at most 10 minutes, a machine with torch 2.11 and no pydantic, no network, the working tree
plus carried files within 64 MiB, at most 8 files back). This script fits one command of
``--minutes`` (default 9) in such a window.

Prepare here (needs ``../shared/data`` and the package registry)::

    python scripts/gpu_campaign.py prepare [--target NAME]

writes ``.gpu/`` (git-ignored; it travels with ``carry: [".gpu"]``): ``pack/SET/``, the
target's training and validation images, colour ones as lossless WebP (about 2/3 of their PNG
bytes, so BSD200 + T91 fit beside the tree), grey ones as PNG, ``wheels/`` (pydantic and its
own needs for Python 3.12, missing there) and ``target.json``. The pack is cut to what the
transit limit leaves beside the tree and the wheels (training images left out are reported),
so a zoo that grows never makes a window unusable. Run there, as one device command::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/wheels/*.whl &&
    PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1 python3 scripts/gpu_campaign.py run --out $OUT

Stages, each inside what is left of ``--minutes``:

1. the environment (GPU, torch, CUDA, cuDNN);
2. ``pytest -m gpu`` (its output to ``gpu_tests.txt``);
3. a throughput table (``throughput.json``): images/s of each method at its paper settings in
   fp32, channels_last, bf16 and (ne2ne) torch.compile, FLOPs per step, and the fraction of
   the bf16 matrix-multiply rate measured in the same run (the chip's practical ceiling);
4. training of the target (:data:`TARGETS`, first by default: ``--target`` picks) with
   ``train.time_budget`` set to the time left, minus a reserve for copying the results;
5. ``summary.json`` (all of the above) and ``campaign.log`` (this output, errors included).

A stage that fails is recorded in ``summary.json`` with its traceback and the next one still
runs; a training run that fails or is stopped still sends back its last checkpoint and log.

At most 8 files come back in ``--out``: summary.json, campaign.log, gpu_tests.txt,
throughput.json, model.safetensors, best.safetensors, train.log. The weights are then evaluated
here with the papers' protocols (``restorekit eval``) and shipped when they beat the zoo.

``--dry-run`` runs every stage on the CPU in seconds (tiny network, a pack of synthetic images,
the tests stage only collected): it is part of the test suite, so the script cannot rot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GPU_DIR = ROOT / ".gpu"
WHEELS = (
    "pydantic==2.14.4",
    "pydantic-core==2.50.5",
    "annotated-types==0.8.0",
    "typing-inspection==0.4.5",
    "typing-extensions==4.16.0",
)
"""Missing on the GPU machines' image (Python 3.12); everything else restorekit needs is there."""
ABSENT_THERE = (
    "zarr",
    "ome_zarr_models",
    "pydantic_zarr",
    "fastapi",
    "starlette",
    "uvicorn",
    "napari",
    "magicgui",
    "qtpy",
    "png",
    "bioimageio",
)
"""Packages of restorekit's extras that the GPU image lacks and the window does not need (the
device README's list): nothing the campaign or its tests import may need them."""
GPU_TESTS = ROOT / "tests" / "engine" / "test_gpu.py"
"""The gpu-marked tests; only this file is collected there (another module's imports could
stop the collection)."""
COMPILE_MIN_LEFT_S = 420.0
"""torch.compile's mode of the throughput table runs only with this much of the window left
(compiling takes minutes on a cold cache; the window's time goes to training first)."""
DRY_RUN_BUDGET_S = 8.0
RESERVE_S = 25.0
"""Kept free at the end of the window: final save, copying the results, the call's return."""


@dataclass(frozen=True)
class Target:
    """A model to train in a window: its preset, data (pack sets), validation and overrides."""

    name: str
    preset: str
    train_sets: tuple[str, ...]
    val_set: str
    overrides: tuple[str, ...] = ()

    def sets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.train_sets, self.val_set)))


def edsr_target(preset: str, init_from: str) -> Target:
    """An EDSR-baseline continued (or, x3/x4, started from x2) on the 291 images: warm-up,
    the weight average, fp32 (the first window's table, H200, torch 2.11: fp32 1919 images/s,
    bf16 1156: launch-bound at batch 16)."""
    overrides = (
        "data.skip_small=true",
        "data.repeat=55",
        f"train.init_from={init_from}",
        "optim.warmup_steps=200",
        "train.ema=0.999",
        "train.precision=fp32",
    )
    return Target(preset, preset, ("T91", "BSD200_train"), "T91", overrides)


VAL_IMAGES = 12
"""Validation images a target reads (a set used only for validation travels cut to these)."""
GPU_COMMON = (
    "train.precision=bf16",
    "data.workers=8",
    "train.log_every=200",
    "train.checkpoint_every=1000",
    f"data.val_max_images={VAL_IMAGES}",
)
TARGETS: tuple[Target, ...] = (
    # The priority list of issue 14, in order; reorder by measured dB per GPU-minute.
    Target(
        "ne2ne-gauss25",
        "ne2ne-gauss25",
        ("BSD200_train",),
        "T91",
        # the shipped model is the Noise2Noise U-Net (its card): continue it, not the preset's
        (
            "train.batch_size=16",
            "data.repeat=40",
            "model.arch=unet-n2n",
            "train.init_from=ne2ne-gauss25",
            # a fresh optimiser at full rate first sets a trained model back (README)
            "optim.warmup_steps=200",
            "train.ema=0.999",  # warmed up: safe in a short window (README)
            # keep the regulariser at its end weight: 20 steps with the ramp restarted near 0
            # cost the model of commit ae361cc 0.20 dB of validation, with it kept 0.03 (README)
            "method.ramp_start=1",
        ),
    ),
    edsr_target("edsr-baseline-x2", init_from="edsr-baseline-x2"),
    Target(
        "ne2ne-gauss5_50",
        "ne2ne-gauss5_50",
        ("BSD200_train",),
        "T91",
        ("train.batch_size=16", "data.repeat=40"),
    ),
    Target(
        "n2v-bsd68",
        "n2v-bsd68",
        ("Train400",),
        "BSD200_train",
        ("data.noise_once=true", "method.masked_fraction=0.02"),
    ),
    edsr_target("edsr-baseline-x3", init_from="edsr-baseline-x3"),  # from x2 stage 5 since s16
    # the shipped x4 grew from x2's stage-1 body; x3 from x2's stage 5 gained 0.19 dB of
    # validation over its own lineage in 651 CPU steps (session 16): the paper's way
    edsr_target("edsr-baseline-x4", init_from="edsr-baseline-x2"),
    Target("rednet-denoise", "rednet-denoise", ("Train400",), "BSD200_train", ()),
    Target(
        "ne2ne-poisson30",
        "ne2ne-poisson30",
        ("BSD200_train",),
        "T91",
        ("train.batch_size=16", "data.repeat=40"),
    ),
    Target(
        "ne2ne-poisson5_50",
        "ne2ne-poisson5_50",
        ("BSD200_train",),
        "T91",
        ("train.batch_size=16", "data.repeat=40"),
    ),
)
DRY_RUN = (
    "train.batch_size=2",
    "data.workers=0",
    "train.precision=fp32",
    "train.log_every=5",
    "data.repeat=4",
)
DRY_RUN_PATCH = {
    "images": "data.patch_size=64",
    "stacks": "data.patch_size=64",
    "sr": "data.lr_patch_size=16",
}
"""A dry run's small patches, by data kind."""


def dry_run_overrides(preset: str) -> list[str]:
    """The settings that make ``preset``'s run a few seconds long: small patches and batches,
    and a narrow network (the N2V U-Net keeps its width: its BSD68 preset sets 96)."""
    from restorekit.configs import load_config

    narrow = [] if preset.startswith("n2v") else ["model.features=8"]
    return [*narrow, DRY_RUN_PATCH[load_config(preset).data.kind], *DRY_RUN]


def target_named(name: str) -> Target:
    for target in TARGETS:
        if target.name == name:
            return target
    raise SystemExit(f"unknown target {name!r}; known: {', '.join(t.name for t in TARGETS)}")


# --- prepare (here) ----------------------------------------------------------------------------


TRANSIT_LIMIT = 64 * 2**20
"""What one device call may carry: the working tree plus the carried ``.gpu``."""
TRANSIT_MARGIN = 1 * 2**20
"""Left free under the limit (the tree changes a little between ``prepare`` and the window)."""


def write_pack(target: Target, source: Path, pack: Path, budget: int | None = None) -> int:
    """Copy the target's image sets from ``source`` into ``pack``, colour images as lossless
    WebP, grey ones as PNG (WebP has no grey mode); a set used only for validation is cut to
    the :data:`VAL_IMAGES` that validation reads. Validation images are written first; training
    images then in file-name order until the pack would exceed ``budget`` bytes (the images
    left out are reported). Returns the bytes written."""
    from restorekit.io import list_images, read_image, write_image

    total = 0
    validation_only = [s for s in target.sets() if s not in target.train_sets]
    for name in (*validation_only, *target.train_sets):
        paths = list_images(source / name)
        if name not in target.train_sets:
            paths = paths[:VAL_IMAGES]
        for k, path in enumerate(paths):
            pixels = read_image(path).array
            suffix = ".png" if pixels.shape[2] == 1 else ".webp"
            out = pack / name / f"{path.stem}{suffix}"
            write_image(out, pixels)
            size = out.stat().st_size
            if budget is not None and name in target.train_sets and total + size > budget:
                out.unlink()
                print(f"pack: {name} cut to {k} of {len(paths)} images to fit the transit limit")
                break
            total += size
    return total


def _tree_bytes() -> int:
    """Bytes of the working tree that a device call copies: tracked files and untracked ones
    that git does not ignore."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    files = [ROOT / f for f in listing.stdout.decode().split("\0") if f]
    return sum(f.stat().st_size for f in files if f.is_file())


def prepare(args: argparse.Namespace) -> None:
    target = target_named(args.target)
    shutil.rmtree(GPU_DIR, ignore_errors=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            "--platform",
            "manylinux_2_17_x86_64",
            "--platform",
            "manylinux2014_x86_64",
            "-d",
            str(GPU_DIR / "wheels"),
            *WHEELS,
        ],
        check=True,
    )
    (GPU_DIR / "target.json").write_text(json.dumps({"target": target.name}) + "\n")
    tree = _tree_bytes()
    wheels = sum(p.stat().st_size for p in GPU_DIR.rglob("*") if p.is_file())
    budget = TRANSIT_LIMIT - TRANSIT_MARGIN - tree - wheels
    if budget <= 0:
        raise SystemExit(
            f"the tree ({tree / 2**20:.1f} MiB) and the wheels ({wheels / 2**20:.1f} MiB) leave "
            f"no room for training data within {TRANSIT_LIMIT / 2**20:.0f} MiB: make the tree "
            "smaller (the zoo's weights are most of it)"
        )
    size = write_pack(target, SHARED, GPU_DIR / "pack", budget)
    print(f"pack: {', '.join(target.sets())}: {size / 2**20:.1f} MiB")
    print(
        f"travels: tree {tree / 2**20:.1f} MiB + .gpu {(wheels + size) / 2**20:.1f} MiB = "
        f"{(tree + wheels + size) / 2**20:.1f} MiB of {TRANSIT_LIMIT / 2**20:.0f}"
    )


# --- run (there) -------------------------------------------------------------------------------


@dataclass
class Campaign:
    out: Path
    deadline: float
    dry_run: bool
    summary: dict = field(default_factory=dict)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def save(self) -> None:
        (self.out / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n")


def environment(device) -> dict:
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": str(device),
        "cpu_count": __import__("os").cpu_count(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {
            "gpu": props.name,
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
            "capability": f"{props.major}.{props.minor}",
        }
    return info


def gpu_test_command(collect_only: bool) -> list[str]:
    """``pytest -m gpu`` on :data:`GPU_TESTS`, without third-party plugins (the GPU image
    has plugins that no CI run has seen); ``collect_only`` for the dry run."""
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"]
    command += ["-o", "addopts=", str(GPU_TESTS)]
    return command + (["--collect-only"] if collect_only else [])


def run_gpu_tests(campaign: Campaign) -> dict:
    """``pytest -m gpu`` (dry run: collected only, the suite already runs them on the CPU)."""
    command = gpu_test_command(campaign.dry_run)
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    # a dry run only collects: its limit is generous, whatever the load of the machine
    timeout = 120.0 if campaign.dry_run else max(10.0, min(150.0, campaign.left() * 0.3))
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a timeout kills the tests' own subprocesses too
    )
    try:
        output_bytes, _ = process.communicate(timeout=timeout)
        code = process.returncode
        output = output_bytes.decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output_bytes, _ = process.communicate()
        output = f"{output_bytes.decode(errors='replace')}\ntimed out after {timeout:.0f} s"
        code = -1
    (campaign.out / "gpu_tests.txt").write_text(output)
    last = [line for line in output.strip().splitlines() if line.strip()][-1:] or [""]
    print(f"gpu tests (exit {code}): {last[0]}")
    return {"exit_code": code, "last_line": last[0]}


def matmul_ceiling(device, dtype_name: str = "bf16", size: int = 8192, repeats: int = 10) -> float:
    """TFLOP/s of a size^3 matrix product in ``dtype_name`` on ``device`` (the practical
    ceiling the throughput fractions are taken of)."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype_name]
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e12


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


THROUGHPUT_METHODS = (  # name, preset, overrides at the paper's settings
    ("ne2ne", "ne2ne-gauss25", ()),
    ("n2v", "n2v-bsd68", ()),
    ("edsr-baseline-x2", "edsr-baseline-x2", ()),
)
MODES = {
    "fp32": ("train.channels_last=false", "train.precision=fp32"),
    "channels_last": ("train.channels_last=true", "train.precision=fp32"),
    "bf16": ("train.channels_last=true", "train.precision=bf16"),
    "bf16+compile": ("train.channels_last=true", "train.precision=bf16", "train.compile=true"),
}


def throughput(campaign: Campaign, device) -> dict:
    """Images/s per method and mode, FLOPs per step and the fraction of the bf16 ceiling."""
    import numpy as np
    import torch
    from torch.utils.data import DataLoader
    from torch.utils.flop_counter import FlopCounterMode

    from restorekit.configs import load_config
    from restorekit.data import EpochSampler
    from restorekit.data.kinds import load_train_data
    from restorekit.engine.distributed import DistributedContext
    from restorekit.engine.step import Stepper
    from restorekit.io import write_image
    from restorekit.methods import Progress

    size = 256 if campaign.dry_run else 8192  # dry run: the path only (CPU bf16 may be emulated)
    ceiling = matmul_ceiling(device, "bf16", size, 3 if campaign.dry_run else 10)
    table: dict = {"bf16_matmul_tflops": ceiling, "matmul_size": size, "methods": {}}
    print(f"bf16 matrix product ({size}^3): {ceiling:.1f} TFLOP/s")
    steps, warmup = (1, 1) if campaign.dry_run else (10, 3)
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        for i in range(4):  # throughput does not depend on the pixels
            pixels = rng.integers(0, 256, (256, 320, 3), np.uint8)
            write_image(Path(tmp) / "rgb" / f"{i}.png", pixels)
            write_image(Path(tmp) / "grey" / f"{i}.png", pixels[..., :1])
        for name, preset, overrides in THROUGHPUT_METHODS:
            row: dict = {}
            for mode, settings in MODES.items():
                if "compile" in mode and (name != "ne2ne" or campaign.dry_run):
                    continue
                if "compile" in mode and campaign.left() < COMPILE_MIN_LEFT_S:
                    row[mode] = "skipped: too little of the window left to compile"
                    continue
                if not campaign.dry_run and campaign.left() < 240:
                    row[mode] = "skipped: the window's time goes to training"
                    continue
                try:  # one mode failing (a compile error, say) keeps the others
                    folder = Path(tmp) / ("grey" if name == "n2v" else "rgb")
                    extra = [*overrides, *settings, f"data.train=['{folder}']", "data.workers=0"]
                    extra += dry_run_overrides(preset) if campaign.dry_run else []
                    cfg = load_config(preset, extra)
                    stepper = Stepper.from_config(cfg, DistributedContext(device=device))
                    data = load_train_data(cfg, None)
                    batch = cfg.train.batch_size
                    sampler = EpochSampler(data.n_images, 10_000, 0, 1)
                    loader = DataLoader(
                        data.dataset,
                        batch,
                        sampler=sampler,
                        drop_last=True,
                        pin_memory=device.type == "cuda",  # as the trainer's loader
                    )
                    batches = iter(loader)
                    samples = [next(batches) for _ in range(2)]
                    progress = Progress(1, 100, 1)
                    if mode == "fp32":
                        with FlopCounterMode(display=False) as counter:
                            stepper.step(samples[0], progress, 1e-4)
                        row["gflop_per_step"] = counter.get_total_flops() / 1e9
                    for i in range(warmup):
                        stepper.step(samples[i % 2], progress, 1e-4)
                    _sync(device)
                    start = time.perf_counter()
                    for i in range(steps):
                        stepper.step(samples[i % 2], progress, 1e-4)
                    _sync(device)
                    seconds = (time.perf_counter() - start) / steps
                    tflops = row.get("gflop_per_step", 0) / seconds / 1e3
                    row[mode] = {
                        "images_per_s": batch / seconds,
                        "step_s": seconds,
                        "tflops": tflops,
                        "fraction_of_bf16_ceiling": tflops / ceiling,
                    }
                    print(
                        f"  {name:18s} {mode:14s} {batch / seconds:10.1f} images/s "
                        f"({tflops:.1f} TFLOP/s, {tflops / ceiling:.1%} of the ceiling)"
                    )
                    del stepper
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                except Exception:
                    row[mode] = {"error": traceback.format_exc()[-2000:]}
                    print(f"  {name:18s} {mode:14s} failed:\n{row[mode]['error']}")
            table["methods"][name] = row
            (campaign.out / "throughput.json").write_text(json.dumps(table, indent=2) + "\n")
    return table


def train_target(campaign: Campaign, target: Target, pack: Path, device) -> dict:
    """Train ``target`` on the pack with the time left as its budget; copy the results."""
    from restorekit.configs import load_config
    from restorekit.engine import train

    # a dry run trains a fixed few seconds, whatever the load of the machine running the tests
    budget = DRY_RUN_BUDGET_S if campaign.dry_run else campaign.left() - RESERVE_S
    if budget < (5 if campaign.dry_run else 20):
        print(f"training skipped: {budget:.0f} s left")
        return {"skipped": f"{budget:.0f} s left"}
    val = pack / target.val_set
    sets = [f"'{pack / s}'" for s in target.train_sets]
    extra = [
        *(GPU_COMMON if not campaign.dry_run else ()),
        *target.overrides,
        f"data.train=[{', '.join(sets)}]",
        f"data.val='{val}'",
        f"train.time_budget={budget:.0f}",
    ]
    if campaign.dry_run:
        extra = [e for e in extra if not e.startswith("train.init_from")]
        extra += dry_run_overrides(target.preset)
    if device.type == "cpu":
        extra.append("train.precision=fp32" if campaign.dry_run else "train.precision=bf16")
    cfg = load_config(target.preset, extra)
    run_dir = Path(tempfile.mkdtemp(prefix="campaign-run-"))
    command = f"restorekit train {target.preset} " + " ".join(f"--set {e}" for e in extra)
    print(f"training {target.name} for {budget:.0f} s: {command}")
    started = time.monotonic()
    try:
        result = train(cfg, run_dir, command=command)
    finally:  # a failed or stopped run still sends back what it wrote
        wall = time.monotonic() - started
        checkpoints = run_dir / "checkpoints"
        final = run_dir / "model.safetensors"
        for name, source in (
            ("model.safetensors", final if final.is_file() else checkpoints / "last.safetensors"),
            ("best.safetensors", checkpoints / "best.safetensors"),
            ("train.log", run_dir / "train.log"),
        ):
            if source.is_file():
                shutil.copy(source, campaign.out / name)
    return {
        "target": target.name,
        "command": command,
        "steps": result.steps,
        "best_val_psnr": result.best_psnr,
        "wall_s": round(wall, 1),
        "budget_s": budget,
    }


def stage(campaign: Campaign, name: str, work: Callable[[], object]) -> None:
    """Run one stage into ``summary[name]``; a failure is recorded (its traceback printed and
    kept) and the next stage still runs: a broken benchmark must not cost the training."""
    try:
        campaign.summary[name] = work()
    except Exception:
        text = traceback.format_exc()
        print(f"stage {name} failed:\n{text}")
        campaign.summary[name] = {"error": text[-4000:]}
    campaign.save()


def run(args: argparse.Namespace) -> None:
    started = time.monotonic()  # before torch's import: the window's clock is already running
    import torch

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "campaign.log", "w")  # noqa: SIM115 - the whole run's output
    console, errors = sys.stdout, sys.stderr
    sys.stdout = _Tee(console, log)
    sys.stderr = _Tee(errors, log)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.dry_run else "cpu")
    campaign = Campaign(out, started + args.minutes * 60, args.dry_run)
    pack = Path(args.pack)
    target_file = pack.parent / "target.json"
    if args.dry_run:
        pack = Path(tempfile.mkdtemp(prefix="campaign-pack-"))
        _synthetic_pack(pack, target_named(args.target or TARGETS[0].name))
    prepared = target_file.is_file() and not args.dry_run  # a dry run's pack is synthetic
    name = args.target or (
        json.loads(target_file.read_text())["target"] if prepared else TARGETS[0].name
    )
    target = target_named(name)
    stage(campaign, "environment", lambda: environment(device))
    print(json.dumps(campaign.summary["environment"]))
    if not args.skip_tests:
        stage(campaign, "gpu_tests", lambda: run_gpu_tests(campaign))
    if not args.skip_throughput:
        stage(campaign, "throughput", lambda: throughput(campaign, device))
    stage(campaign, "training", lambda: train_target(campaign, target, pack, device))
    campaign.summary["wall_s"] = round(time.monotonic() - started, 1)
    campaign.save()
    print(
        f"campaign done in {campaign.summary['wall_s']} s; files in {out}: "
        f"{', '.join(sorted(p.name for p in out.iterdir()))}"
    )
    sys.stdout, sys.stderr = console, errors
    log.close()


def _synthetic_pack(pack: Path, target: Target) -> None:
    """A few smooth synthetic images per set, for ``--dry-run``."""
    import numpy as np

    from restorekit.io import write_image

    y, x = np.mgrid[0:96, 0:128] / 128
    for name in target.sets():
        for k in (3, 5, 7):
            image = np.stack([np.sin(k * x + y), np.cos(k * y - x), np.sin(k * (x + y))], -1)
            write_image(pack / name / f"s{k}.png", (image * 127.5 + 127.5).astype(np.uint8))


class _Tee:
    def __init__(self, *streams) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="write .gpu/ here: the pack and the wheels")
    prep.add_argument("--target", default=TARGETS[0].name)
    go = commands.add_parser("run", help="run the campaign (on the GPU machine)")
    go.add_argument("--out", default="campaign_out", help="the folder that comes back ($OUT)")
    go.add_argument("--minutes", type=float, default=9.0, help="the whole command's length")
    go.add_argument("--pack", default=str(GPU_DIR / "pack"))
    go.add_argument("--target", help="default: .gpu/target.json's, else the first of TARGETS")
    go.add_argument("--dry-run", action="store_true", help="CPU, tiny, seconds")
    go.add_argument("--skip-tests", action="store_true")
    go.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    prepare(args) if args.command == "prepare" else run(args)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
