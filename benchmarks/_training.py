"""Training-speed helpers shared by ``train.py`` and ``sr.py``: the trainer's loop, timed."""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import ROOT, interleaved  # benchmarks/_common.py
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from restorekit.configs import Config
from restorekit.data import EpochSampler, load_images
from restorekit.engine.distributed import DistributedContext
from restorekit.engine.schedule import learning_rate
from restorekit.engine.step import Stepper
from restorekit.io import list_images
from restorekit.methods import Progress

BSD200 = ROOT.parent / "shared" / "data" / "BSD200_train"


def training_images(limit: int | None = None) -> tuple[list[np.ndarray], str]:
    """BSD200_train (its first ``limit`` images), else four synthetic 321x481 images."""
    if BSD200.is_dir():
        paths = list_images(BSD200)[:limit]
        return load_images(paths, 3)[0], f"{BSD200} ({len(paths)} images)"
    y, x = np.mgrid[0:321, 0:481] / 481
    images = [
        np.stack([np.sin(k * x + y), np.cos(k * y - x), np.sin(k * (x + y))], axis=-1)
        for k in (3, 5, 7, 11)
    ]
    return [(a * 127.5 + 127.5).astype(np.uint8) for a in images], "synthetic (4 images)"


class Run:
    """One configuration: the trainer's Stepper and loader iterator, stepped ``n`` steps a call."""

    def __init__(self, cfg: Config, dataset: Dataset, sampler: EpochSampler, total: int, device):
        self.cfg, self.total, self.step, self.wait = cfg, total, 0, 0.0
        self.stepper = Stepper.from_config(cfg, DistributedContext(device=device))
        loader = DataLoader(
            dataset,
            cfg.train.batch_size,
            sampler=sampler,
            drop_last=True,
            num_workers=cfg.data.workers,
            pin_memory=device.type == "cuda",  # as the trainer: pinning only helps copies to GPU
        )
        self.batches = iter(loader)

    def __call__(self, n: int = 1) -> None:
        for _ in range(n):
            start = time.perf_counter()
            sample = next(self.batches)
            self.wait += time.perf_counter() - start  # time the step waited for its data
            self.step += 1
            lr = learning_rate(self.cfg, self.step, self.total)
            self.stepper.step(sample, Progress(1, self.cfg.train.epochs, self.step), lr)


def one_epoch(n_images: int, cfg: Config, args: argparse.Namespace) -> EpochSampler:
    """The sampler of an epoch long enough for every warm-up and timed step of ``args``."""
    total = args.warmup + args.steps * args.repeats
    repeat = -(-total * cfg.train.batch_size // n_images)
    return EpochSampler(n_images, repeat, cfg.train.seed, epoch=1)


def time_runs(runs: dict[str, Run], args: argparse.Namespace, device) -> dict[str, dict]:
    """Warm-up steps, then ``--repeats`` blocks of ``--steps`` steps of each run, interleaved.

    Per run: the raw seconds of each warm-up step and block, the median block, steps/s,
    images/s, the ratio of speeds against the first run (above 1 is faster) and the share of
    timed seconds spent waiting for the loader.
    """
    # Warm-up steps, one at a time and interleaved too: the first ones hold any compile time.
    warmup = interleaved(runs, args.warmup, device)
    for run in runs.values():
        run.wait = 0.0
    timed = {name: lambda r=run: r(args.steps) for name, run in runs.items()}
    seconds = interleaved(timed, args.repeats, device)
    reference = statistics.median(next(iter(seconds.values())))
    result = {}
    for name, run in runs.items():
        median = statistics.median(seconds[name])
        steps_per_s = args.steps / median
        result[name] = {
            "warmup_s": warmup[name],
            "seconds": seconds[name],
            "median_s": median,
            "step_s": median / args.steps,
            "steps_per_s": steps_per_s,
            "images_per_s": steps_per_s * run.cfg.train.batch_size,
            "ratio": reference / median,
            "data_wait_fraction": run.wait / sum(seconds[name]),
        }
    return result


def step_flops(cfg: Config, dataset: Dataset, sampler: EpochSampler, device) -> float:
    """FLOPs of one eager step (forward + backward) of ``cfg``, as FlopCounterMode counts them:
    2 per multiply-add; a convolution's backward = its input gradient (where needed) + its weight
    gradient, each as many FLOPs as the forward. Adam and element-wise work are not counted."""
    run = Run(cfg, dataset, sampler, 1, device)
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()
