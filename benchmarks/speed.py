"""Training and inference speed of restorekit, with and without channels_last.

Training: the trainer's step (engine/trainer.py) for n2c, n2n and ne2ne at each preset's settings
(batch 4, patch 256, U-Net with 48 features), on random crops of a real image. Inference: predict()
on a Kodak-sized 768x512 RGB image. Speeds are medians over interleaved repeats and are compared as
ratios against the plain (contiguous NCHW) run in the same process. GFLOP/s (FlopCounterMode) are
given as fractions of this run's own measured ceiling (a channels_last 3x3 convolution); a rate
above the processor's physical peak ends the run with an error instead of a report.

    python benchmarks/speed.py            # full benchmark (minutes)
    python benchmarks/speed.py --quick    # a few seconds: only checks that the script works
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch
from _common import (  # benchmarks/_common.py
    add_machine_arguments,
    add_timing_arguments,
    count_flops,
    describe_machine,
    environment,
    flop_rate,
    interleaved,
    main_or_exit,
    measure_ceiling,
    resolve_timing,
    write_report,
)
from torch.utils.data import DataLoader

from restorekit.configs import Config, load_config
from restorekit.data import EpochSampler, PatchDataset, load_images
from restorekit.engine.distributed import DistributedContext
from restorekit.engine.schedule import learning_rate
from restorekit.engine.step import Stepper
from restorekit.infer.predict import predict
from restorekit.io import array_to_float
from restorekit.methods import Progress

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "Kodak24"
METHODS = ("n2c", "n2n", "ne2ne")
LAYOUTS = ("plain", "channels_last")


def source_image(height: int, width: int) -> tuple[np.ndarray, str]:
    """An H x W x 3 uint8 image: kodim01 from Kodak24 if present, else a smooth synthetic one."""
    path = KODAK / "kodim01.png"
    if path.exists():
        return load_images([path], 3)[0][0], str(path)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [np.sin(6 * x + 2 * y), np.cos(5 * y - 3 * x), np.sin(4 * (x + y))]
    return (np.stack(channels, axis=-1) * 127.5 + 127.5).astype(np.uint8), "synthetic"


def summary(
    seconds: dict[str, list[float]], amounts: dict[str, float], gflop: float, env: dict, what: str
) -> dict:
    """Per layout: raw seconds, their median, each amount per median second, and GFLOP/s of
    ``gflop`` per median second (with its fraction of the measured ceiling); plus the ratio of
    speeds channels_last / plain."""
    result: dict = {"gflop": gflop}
    for lay in LAYOUTS:
        median = statistics.median(seconds[lay])
        rates = {key: amount / median for key, amount in amounts.items()}
        rates |= flop_rate(gflop, median, env, "fp32", f"{what} {lay}")
        result[lay] = {"seconds": seconds[lay], "median_s": median, **rates}
    result["ratio"] = result["plain"]["median_s"] / result["channels_last"]["median_s"]
    return result


def make_stepper(cfg: Config, channels_last: bool, device: torch.device) -> Stepper:
    """The trainer's own step (seeded weights, Adam, method, noise) in the chosen layout."""
    return Stepper.from_config(
        cfg.model_copy(
            update={"train": cfg.train.model_copy(update={"channels_last": channels_last})}
        ),
        DistributedContext(device=device),
    )


def bench_training(name: str, image: np.ndarray, args, env, device: torch.device) -> dict:
    """Training steps of the preset ``{name}-gauss25`` (patch size from ``args``)."""
    cfg = load_config(f"{name}-gauss25", [f"data.patch_size={args.patch}"])
    n = args.warmup + args.steps
    # The trainer's data path (workers=0): patches drawn before timing, the same for both layouts.
    dataset = PatchDataset([image], cfg.data.patch_size, cfg.data.augment)
    sampler = EpochSampler(1, n * cfg.train.batch_size, cfg.train.seed, epoch=1)
    batches = list(DataLoader(dataset, cfg.train.batch_size, sampler=sampler, drop_last=True))
    total = args.warmup + args.steps * args.repeats
    steppers = {lay: make_stepper(cfg, lay != "plain", device) for lay in LAYOUTS}

    def run(stepper: Stepper, samples: list, first: int) -> None:
        for i, sample in enumerate(samples, start=first):
            stepper.step(sample, Progress(1, cfg.train.epochs, i), learning_rate(cfg, i, total))

    for stepper in steppers.values():
        run(stepper, batches[: args.warmup], 1)
    # FLOPs of one step (forward + backward), on a stepper of its own: the timed ones stay as set
    gflop = count_flops(lambda: run(make_stepper(cfg, False, device), batches[:1], 1)) / 1e9
    timed = batches[args.warmup :]
    runs = {lay: lambda s=st: run(s, timed, args.warmup + 1) for lay, st in steppers.items()}
    seconds = interleaved(runs, args.repeats, device)
    images = args.steps * cfg.train.batch_size
    settings = {"batch_size": cfg.train.batch_size, "patch_size": cfg.data.patch_size}
    settings |= {"features": cfg.model.features, "noise": cfg.noise}
    amounts = {"steps_per_s": args.steps, "images_per_s": images}
    return settings | summary(seconds, amounts, gflop * args.steps, env, f"{name} training")


def bench_inference(image: np.ndarray, args, env, device: torch.device) -> dict:
    """predict() on one image, as validation and `restorekit denoise` run it."""
    cfg = load_config("ne2ne-gauss25")  # the network only: the same U-Net for every method
    x = torch.from_numpy(array_to_float(image))[None].to(device)
    nets = {lay: make_stepper(cfg, lay != "plain", device).net.eval() for lay in LAYOUTS}
    multiple = nets["plain"].size_multiple  # 32
    runs = {
        lay: lambda n=net, cl=lay != "plain": predict(n, x, multiple, cl)
        for lay, net in nets.items()
    }
    for run in runs.values():  # warm-up
        run()
    gflop = count_flops(runs["plain"]) / 1e9
    seconds = interleaved(runs, args.repeats, device)
    height, width = image.shape[:2]
    settings = {"height": height, "width": width, "size_multiple": multiple}
    amounts = {"megapixels_per_s": height * width / 1e6}
    return settings | summary(seconds, amounts, gflop, env, "inference")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "speed.json")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="patch 64, 2 timed steps, a 128x96 image: checks the script only",
    )
    add_timing_arguments(parser)
    add_machine_arguments(parser)
    args = parser.parse_args()
    quick = args.quick
    resolve_timing(args)
    width, height = (128, 96) if quick else (768, 512)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    env = environment(device, args.max_ghz)  # the machine, and this run's own ceiling first
    env["ceiling"] = measure_ceiling(device, env["machine"], quick)
    image, source = source_image(512, 768)  # kodim01 is 768x512 (landscape)
    training = {name: bench_training(name, image, args, env, device) for name in METHODS}
    inference = bench_inference(image[:height, :width], args, env, device)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}, image {source}")
    print(describe_machine(env))
    batch = training["n2c"]["batch_size"]
    print(f"training: batch {batch}, patch {args.patch}, {args.steps} steps x {args.repeats} rep.")
    print(
        f"{'method':8} {'plain img/s':>12} {'cl img/s':>10} {'plain step/s':>13} "
        f"{'cl step/s':>10} {'cl/plain':>9} {'cl GFLOP/s':>11} {'cl ceil':>8}"
    )
    for name, r in training.items():
        plain, cl = r["plain"], r["channels_last"]
        print(
            f"{name:8} {plain['images_per_s']:12.2f} {cl['images_per_s']:10.2f} "
            f"{plain['steps_per_s']:13.3f} {cl['steps_per_s']:10.3f} {r['ratio']:9.3f} "
            f"{cl['gflops']:11.1f} {cl['ceiling_fraction']:8.1%}"
        )
    cl = inference["channels_last"]
    print(
        f"inference {width}x{height} (median of {args.repeats}): "
        f"plain {inference['plain']['megapixels_per_s']:.3f} MP/s, "
        f"channels_last {cl['megapixels_per_s']:.3f} MP/s, "
        f"cl/plain {inference['ratio']:.3f}; channels_last {cl['gflops']:.1f} GFLOP/s, "
        f"{cl['ceiling_fraction']:.1%} of the measured fp32 ceiling"
    )

    report = {
        **env,
        "settings": {
            "quick": quick,
            "steps": args.steps,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "patch_size": args.patch,
            "image": source,
            "inference_size": [width, height],
            "data_loading_timed": False,
        },
        "training": training,
        "inference": inference,
    }
    write_report(args.json, report)


if __name__ == "__main__":
    main_or_exit(main)
