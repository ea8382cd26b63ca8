"""The one training loop, shared by every method.

Readable top to bottom: data, network, optimizer, resume, then epochs of steps. Each patch is a
function of (seed, epoch, position) and each sample's noise and masks of its own seed, so a
resumed run repeats an uninterrupted one exactly, and N processes with a global batch B take the
same steps as one process with batch B. The learning rate is multiplied by ``gamma`` once
training passes each milestone fraction. With ``train.ema`` an exponential moving average of the
weights is kept (``Stepper.ema``): validation and every saved model file use it.

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

import torch
import yaml
from torch.utils.data import DataLoader

from restorekit import __version__
from restorekit.configs.schema import Config
from restorekit.data import (
    EpochSampler,
)
from restorekit.degrade.noise import parse_noise
from restorekit.engine import distributed
from restorekit.engine.checkpoint import checkpoint_paths, load_checkpoint, save_checkpoint
from restorekit.engine.logger import RunLogger
from restorekit.engine.run_data import load_train_data
from restorekit.engine.run_data import steps_per_epoch as count_steps
from restorekit.engine.step import Stepper
from restorekit.engine.validation import validate
from restorekit.errors import ConfigError, RestorekitError
from restorekit.methods import Progress
from restorekit.nets.files import ModelDescriptor, init_from_model_file, save_model
from restorekit.zoo import resolve_model


class TrainingInterrupted(RestorekitError):
    """Training stopped by a signal; a checkpoint was written first."""


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    best_psnr: float
    model_path: Path


def learning_rate(config: Config, step: int, total_steps: int) -> float:
    """Learning rate of step ``step`` (from 1): times ``gamma`` after each milestone fraction,
    and times ``step / warmup_steps`` during the warm-up."""
    optim = config.optim
    passed = sum(step > m * total_steps for m in optim.milestones)
    warmup = min(1.0, step / optim.warmup_steps) if optim.warmup_steps else 1.0
    return optim.lr * optim.gamma**passed * warmup


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


def describe(
    cfg: Config,
    model: torch.nn.Module,
    run_dir: Path,
    command: str,
    task: str = "denoise",
    normalization: dict | None = None,
) -> ModelDescriptor:
    """The descriptor saved with every checkpoint of this run (``task``: the method's;
    ``normalization``: the stacks' per-channel statistics, undone on output at inference)."""
    commands = run_dir / "commands.log"
    upscale = task == "upscale"
    return ModelDescriptor(
        arch=cfg.model.arch,
        arch_args=cfg.model.model_dump(exclude={"arch"}),
        task=task,
        in_channels=cfg.model.in_channels,
        out_channels=getattr(cfg.model, "out_channels", cfg.model.in_channels),
        scale=cfg.data.scales[0] if upscale else getattr(cfg.model, "scale", 1),
        upsample_input=upscale and cfg.data.upsample_input,
        scales=cfg.data.scales if upscale else [],
        size_multiple=getattr(model, "size_multiple", 1),
        noise=cfg.noise,
        method=cfg.method.name,
        **({"axes": cfg.data.axes, "normalization": normalization} if cfg.data.axes else {}),
        training={
            "data": [str(p) for p in cfg.data.train],
            "command": command,
            "commands": commands.read_text().splitlines() if commands.exists() else [command],
            "config": cfg.model_dump(mode="json"),
            "restorekit": __version__,
        },
    )


def sr_summary(cfg: Config) -> str:
    """Scales and patch size of a super-resolution run, for its first log line."""
    dc = cfg.data
    scales = "/".join(f"x{s}" for s in dc.scales)
    if dc.hr_patch_size is not None:
        return f"{scales}, HR patch {dc.hr_patch_size}"
    return f"{scales}, LR patch {dc.lr_patch_size}"


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
    # On failure the group is left as it is: destroying it while a peer is dead or mid-collective
    # can hang, and the error must reach the user. The process is ending anyway.
    result = _train(config, Path(run_dir), context, resume, max_steps, command)
    distributed.teardown(context)
    return result


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
    model, optimizer = stepper.model, stepper.optimizer
    averaged = stepper.averaged  # what validation and model files use: ``model`` or its average
    noise = parse_noise(cfg.noise) if cfg.noise else None  # validation's (and noise_once's)
    task = stepper.method.task
    data = load_train_data(cfg, noise, task)
    steps_per_epoch = count_steps(cfg, data.n_images, context.world_size)
    local_batch = tc.batch_size // context.world_size
    descriptor = describe(cfg, model, run_dir, command, task, data.normalization)

    step, best_psnr = 0, float("-inf")
    if resume:
        state = load_checkpoint(run_dir, model, stepper.ema)
        optimizer.load_state_dict(state.optimizer)
        step, best_psnr = state.step, state.best_psnr
    total_steps = tc.epochs * steps_per_epoch
    stop_at = min(total_steps, max_steps) if max_steps else total_steps
    log = RunLogger(run_dir, stop_at, step, enabled=main)
    depth = f"{cfg.data.patch_depth}x" if cfg.data.patch_depth else ""
    once = " added once" if cfg.data.noise_once else ""
    log.line(
        f"restorekit {__version__}: {cfg.method.name} on {data.n_images} images "
        f"({steps_per_epoch} steps/epoch, {tc.epochs} epochs, global batch {tc.batch_size} = "
        f"{context.world_size} process(es) x {local_batch // tc.accumulate} x {tc.accumulate} "
        + (
            f"accumulation, {sr_summary(cfg)})"
            if task == "upscale"
            else f"accumulation, patch {depth}{cfg.data.patch_size}, noise {cfg.noise}{once})"
        )
        + f" on {context.device}"
        + (f"; resumed at step {step}" if resume else "")
        + (f"; weight average (EMA) with decay {tc.ema}" if tc.ema is not None else "")
    )
    if resume and state.ema_note:
        log.line(state.ema_note)
    if tc.init_from is not None and not resume:
        source = resolve_model(tc.init_from)
        loaded, skipped = init_from_model_file(model, cfg.model.arch, source)
        log.line(
            f"initialised from {source}: {len(loaded)} tensors loaded, {len(skipped)} kept "
            f"as initialised" + (f" ({', '.join(skipped)})" if skipped else "")
        )

    def checkpoint(epoch: int) -> None:
        if main:
            save_checkpoint(
                run_dir, model, descriptor, optimizer, epoch, step, best_psnr, stepper.ema
            )

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
                scores, sample_out = validate(
                    averaged,
                    data.val_images,
                    data.val_names,
                    noise,
                    tc.channels_last,
                    tc.seed,
                    task,
                    cfg.data.scales or [1],
                )
                log.scalars(step, scores, "val")
                before = "bicubic" if task == "upscale" else "noisy"
                per_scale = ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if "_x" in k)
                log.line(
                    f"validation epoch[{epoch}]: PSNR {scores['psnr']:.4f} dB, "
                    f"SSIM {scores['ssim']:.4f} ({before} {scores['psnr_in']:.4f} dB)"
                    + (f"; {per_scale}" if per_scale else "")
                )
                if validations % tc.image_every == 0:
                    tag = "upscaled" if task == "upscale" else "denoised"
                    log.image(step, f"val/{tag}", sample_out)
                validations += 1
                if scores["psnr"] > best_psnr:
                    best_psnr = scores["psnr"]
                    val = {"data": str(cfg.data.val), **scores}
                    training = {**descriptor.training, "step": step, "epoch": epoch, "val": val}
                    best = descriptor.model_copy(update={"training": training})
                    save_model(run_dir / "checkpoints" / "best.safetensors", averaged, best)
            if main and data.val_patches is not None and epoch_done and validate_now:
                val_loss = stepper.evaluate(data.val_patches, Progress(epoch, tc.epochs, step))
                log.scalars(step, {"loss": val_loss}, "val")
                log.line(f"validation epoch[{epoch}]: held-out loss {val_loss:.6f}")
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
        save_model(model_path, averaged, descriptor.model_copy(update={"training": training}))
    distributed.barrier(context)
    return TrainResult(run_dir, step, best_psnr, model_path)
