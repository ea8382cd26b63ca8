"""The one training loop, shared by every method.

Readable top to bottom: data, network, optimizer, resume, then epochs of steps. Each patch is a
function of (seed, epoch, position) and each sample's noise and masks of its own seed, so a
resumed run repeats an uninterrupted one exactly, and N processes with a global batch B take the
same steps as one process with batch B. The learning rate is multiplied by ``gamma`` once
training passes each milestone fraction.

Under torchrun every process runs this loop on its share of each global batch (DDP averages the
gradients); only rank 0 logs, validates and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader

from restorekit import __version__
from restorekit.configs.schema import Config
from restorekit.data import EpochSampler, PatchDataset, load_images
from restorekit.degrade.noise import NoiseModel
from restorekit.engine import distributed
from restorekit.engine.checkpoint import checkpoint_paths, load_checkpoint, save_checkpoint
from restorekit.engine.logger import RunLogger
from restorekit.engine.step import Stepper
from restorekit.errors import ConfigError, RestorekitError
from restorekit.evaluation import evaluate_denoising
from restorekit.infer.predict import predict
from restorekit.io import to_uint8
from restorekit.methods import Progress
from restorekit.nets.files import ModelDescriptor, save_model


class TrainingInterrupted(RestorekitError):
    """Training stopped by a signal; a checkpoint was written first."""


@dataclass
class TrainData:
    """Decoded training patches and clean validation images (uint8 H x W x C)."""

    dataset: PatchDataset
    n_images: int
    val_images: list[np.ndarray]
    val_names: list[str]


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    best_psnr: float
    model_path: Path


def learning_rate(config: Config, step: int, total_steps: int) -> float:
    """Learning rate of step ``step`` (from 1): times ``gamma`` after each milestone fraction."""
    passed = sum(step > m * total_steps for m in config.optim.milestones)
    return config.optim.lr * config.optim.gamma**passed


def load_train_data(cfg: Config, noise: NoiseModel | None) -> TrainData:
    images, names = load_images(cfg.data.train, cfg.model.in_channels)
    dataset = PatchDataset(images, cfg.data.patch_size, cfg.data.augment, _load_pairs(cfg, names))
    val_images: list[np.ndarray] = []
    val_names: list[str] = []
    if cfg.data.val is not None and noise is not None:
        val_images, val_names = load_images(cfg.data.val, cfg.model.in_channels)
        val_images = [to_uint8(v) for v in val_images[: cfg.data.val_max_images]]
        val_names = val_names[: len(val_images)]
    return TrainData(dataset, len(images), val_images, val_names)


def _load_pairs(config: Config, names: list[str]) -> list[np.ndarray] | None:
    if config.data.pairs is None:
        return None
    partners, partner_names = load_images(config.data.pairs, config.model.in_channels)
    by_name = dict(zip(partner_names, partners, strict=True))
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ConfigError(
            f"data.pairs ({config.data.pairs}) lacks partners for {len(missing)} training "
            f"image(s), e.g. {missing[:3]}; pairs are matched by file name"
        )
    return [by_name[n] for n in names]


@contextlib.contextmanager
def _stop_requests() -> Iterator[list[str]]:
    """Turn SIGINT/SIGTERM into a flag checked between steps (never mid-update)."""
    requests: list[str] = []

    def handler(signum: int, _frame: object) -> None:
        requests.append(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requests
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def validate(
    net: torch.nn.Module,
    images: list[np.ndarray],
    names: list[str],
    noise: NoiseModel,
    channels_last: bool,
    seed: int,
) -> tuple[dict[str, float], torch.Tensor]:
    """Validation PSNR/SSIM (paper protocol, one repeat) and the first denoised image."""
    device = next(net.parameters()).device
    multiple = getattr(net, "size_multiple", 1)
    first: list[torch.Tensor] = []

    def denoise(noisy: np.ndarray) -> np.ndarray:
        out = predict(net, torch.from_numpy(noisy)[None].to(device), multiple, channels_last)[0]
        if not first:
            first.append(out.float().cpu())
        return out.float().cpu().numpy()

    net.eval()
    report = evaluate_denoising(denoise, images, names, noise, repeats=1, seed=seed)
    net.train()
    return {"psnr": report.psnr, "ssim": report.ssim, "psnr_in": report.psnr_in}, first[0]


def describe(cfg: Config, model: torch.nn.Module, run_dir: Path, command: str) -> ModelDescriptor:
    """The descriptor saved with every checkpoint of this run."""
    commands = run_dir / "commands.log"
    return ModelDescriptor(
        arch=cfg.model.arch,
        arch_args=cfg.model.model_dump(exclude={"arch"}),
        in_channels=cfg.model.in_channels,
        out_channels=getattr(cfg.model, "out_channels", cfg.model.in_channels),
        scale=getattr(cfg.model, "scale", 1),
        size_multiple=getattr(model, "size_multiple", 1),
        noise=cfg.noise,
        method=cfg.method.name,
        training={
            "data": [str(p) for p in cfg.data.train],
            "command": command,
            "commands": commands.read_text().splitlines() if commands.exists() else [command],
            "config": cfg.model_dump(mode="json"),
            "restorekit": __version__,
        },
    )


def _check_batch(cfg: Config, n_images: int, world_size: int) -> int:
    """Steps per epoch; the global batch must split evenly over processes and micro-batches."""
    tc = cfg.train
    if tc.batch_size % (world_size * tc.accumulate):
        raise ConfigError(
            f"train.batch_size={tc.batch_size} (the global batch) must be divisible by the "
            f"number of processes ({world_size}) x train.accumulate ({tc.accumulate})"
        )
    steps_per_epoch = n_images * cfg.data.repeat // tc.batch_size
    if steps_per_epoch == 0:
        raise ConfigError(
            f"{n_images} training image(s) x data.repeat={cfg.data.repeat} is less than one "
            f"batch of train.batch_size={tc.batch_size}; raise data.repeat or lower the batch size"
        )
    return steps_per_epoch


def train(
    config: Config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    max_steps: int | None = None,
    command: str = "",
) -> TrainResult:
    """Train as ``config`` says, writing logs and checkpoints under ``run_dir``.

    Launched by torchrun, this joins the process group and trains with DDP.
    """
    context = distributed.setup()
    try:
        return _train(config, Path(run_dir), context, resume, max_steps, command)
    finally:
        distributed.teardown(context)


def _train(
    cfg: Config,
    run_dir: Path,
    context: distributed.DistributedContext,
    resume: bool,
    max_steps: int | None,
    command: str,
) -> TrainResult:
    tc, main = cfg.train, context.is_main
    if not cfg.data.train:
        raise ConfigError("no training data: set data.train in the config or pass --data DIR")
    if not resume and checkpoint_paths(run_dir)[1].exists():
        raise RestorekitError(
            f"{run_dir} already holds a run; continue it with --resume {run_dir} "
            "or pick another --out"
        )
    if tc.threads:
        torch.set_num_threads(tc.threads)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        # config.yaml is what a later --resume reads: overrides given when resuming are kept.
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
        with open(run_dir / "commands.log", "a") as log_file:
            log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {command or '(python API)'}\n")

    # Network, optimizer, method; data.
    stepper = Stepper.from_config(cfg, context)
    model, optimizer, noise = stepper.model, stepper.optimizer, stepper.noise
    data = load_train_data(cfg, noise)
    steps_per_epoch = _check_batch(cfg, data.n_images, context.world_size)
    local_batch = tc.batch_size // context.world_size
    descriptor = describe(cfg, model, run_dir, command)

    step, best_psnr = 0, float("-inf")
    if resume:
        state = load_checkpoint(run_dir, model)
        optimizer.load_state_dict(state.optimizer)
        step, best_psnr = state.step, state.best_psnr
    total_steps = tc.epochs * steps_per_epoch
    stop_at = min(total_steps, max_steps) if max_steps else total_steps
    log = RunLogger(run_dir, stop_at, step, enabled=main)
    log.line(
        f"restorekit {__version__}: {cfg.method.name} on {data.n_images} images "
        f"({steps_per_epoch} steps/epoch, {tc.epochs} epochs, global batch {tc.batch_size} = "
        f"{context.world_size} process(es) x {local_batch // tc.accumulate} x {tc.accumulate} "
        f"accumulation, patch {cfg.data.patch_size}, noise {cfg.noise}) on {context.device}"
        + (f"; resumed at step {step}" if resume else "")
    )

    def checkpoint(epoch: int) -> None:
        if main:
            save_checkpoint(run_dir, model, descriptor, optimizer, epoch, step, best_psnr)

    started, validations, stopped = time.time(), 0, None
    tick, tick_step = time.time(), step
    with _stop_requests() as stop_requests:
        for epoch in range(step // steps_per_epoch + 1, tc.epochs + 1):
            if step >= stop_at or stopped:
                break
            position = (step - (epoch - 1) * steps_per_epoch) * tc.batch_size
            sampler = EpochSampler(
                data.n_images,
                cfg.data.repeat,
                tc.seed,
                epoch,
                position,
                context.rank,
                context.world_size,
                local_batch,
            )
            loader = DataLoader(
                data.dataset,
                local_batch,
                sampler=sampler,
                drop_last=True,
                num_workers=cfg.data.workers,
                pin_memory=context.device.type == "cuda",
            )
            for sample in loader:
                step += 1
                lr = learning_rate(cfg, step, total_steps)
                try:
                    out = stepper.step(sample, Progress(epoch, tc.epochs, step), lr)
                    stop = distributed.any_rank(bool(stop_requests), context)
                except RuntimeError as error:
                    if not context.enabled:
                        raise
                    raise RestorekitError(
                        f"training process {context.rank}: the process group failed at step "
                        f"{step} ({str(error).splitlines()[0]}); another process probably died. "
                        f"Continue from the last checkpoint with --resume {run_dir}"
                    ) from None
                log.advance(out.parts["loss"])

                if step % tc.log_every == 0:
                    rate = (step - tick_step) * tc.batch_size / max(time.time() - tick, 1e-9)
                    tick, tick_step = time.time(), step
                    parts = distributed.mean_over_ranks(out.parts, context)
                    log.line(
                        f"epoch[{epoch}], iter[{step}], loss:{parts['loss']:.6f}, "
                        f"{rate:.1f} imgs/sec, lr:{lr:.2e}"
                    )
                    log.scalars(step, {**parts, "lr": lr, "imgs_per_sec": rate}, "train")
                if step % tc.checkpoint_every == 0:
                    checkpoint(epoch)
                if stop or step >= stop_at:
                    stopped = (stop_requests or ["a stop request"])[0] if stop else None
                    break

            epoch_done = step == epoch * steps_per_epoch
            validate_now = epoch % tc.val_every == 0 or epoch == tc.epochs
            if main and data.val_images and epoch_done and validate_now:
                assert noise is not None
                scores, sample_out = validate(
                    model, data.val_images, data.val_names, noise, tc.channels_last, tc.seed
                )
                log.scalars(step, scores, "val")
                log.line(
                    f"validation epoch[{epoch}]: PSNR {scores['psnr']:.4f} dB, "
                    f"SSIM {scores['ssim']:.4f} (noisy {scores['psnr_in']:.4f} dB)"
                )
                if validations % tc.image_every == 0:
                    log.image(step, "val/denoised", sample_out)
                validations += 1
                if scores["psnr"] > best_psnr:
                    best_psnr = scores["psnr"]
                    val = {"data": str(cfg.data.val), **scores}
                    training = {**descriptor.training, "step": step, "epoch": epoch, "val": val}
                    best = descriptor.model_copy(update={"training": training})
                    save_model(run_dir / "checkpoints" / "best.safetensors", model, best)
            checkpoint(epoch + 1 if epoch_done else epoch)

    wall = time.time() - started
    log.line(f"stopped at step {step} after {wall:.0f} s" + (f" ({stopped})" if stopped else ""))
    log.close()
    if stopped:
        raise TrainingInterrupted(
            f"training interrupted by {stopped} at step {step}; checkpoint saved: "
            f"continue with `restorekit train --resume {run_dir}`"
        )
    training = {**descriptor.training, "step": step, "wall_time_s": round(wall, 1)}
    model_path = run_dir / "model.safetensors"
    if main:
        save_model(model_path, model, descriptor.model_copy(update={"training": training}))
    distributed.barrier(context)
    return TrainResult(run_dir, step, best_psnr, model_path)
