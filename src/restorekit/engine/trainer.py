"""The one training loop, shared by every method.

Readable top to bottom: data, network, optimizer, resume, then epochs of steps. Each step draws
its randomness (noise, sub-sampling masks) from a generator seeded by (seed, step), and each
patch from (seed, epoch, position), so a resumed run repeats an uninterrupted one exactly.
The learning rate is multiplied by ``gamma`` once training passes each milestone fraction.
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
class TrainResult:
    run_dir: Path
    steps: int
    best_psnr: float
    model_path: Path


def learning_rate(config: Config, step: int, total_steps: int) -> float:
    """Learning rate of step ``step`` (from 1): times ``gamma`` after each milestone fraction."""
    passed = sum(step > m * total_steps for m in config.optim.milestones)
    return config.optim.lr * config.optim.gamma**passed


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


def train(
    config: Config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    max_steps: int | None = None,
    command: str = "",
) -> TrainResult:
    """Train as ``config`` says, writing logs and checkpoints under ``run_dir``."""
    run_dir = Path(run_dir)
    cfg, tc = config, config.train
    if not cfg.data.train:
        raise ConfigError("no training data: set data.train in the config or pass --data DIR")
    if not resume and checkpoint_paths(run_dir)[1].exists():
        raise RestorekitError(
            f"{run_dir} already holds a run; continue it with --resume {run_dir} "
            "or pick another --out"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    # config.yaml is what a later --resume reads: overrides given when resuming are kept.
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    with open(run_dir / "commands.log", "a") as commands:
        commands.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {command or '(python API)'}\n")
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    # Network, optimizer, method; then data.
    stepper = Stepper.from_config(cfg, device)
    net, optimizer, noise = stepper.net, stepper.optimizer, stepper.noise
    images, names = load_images(cfg.data.train, cfg.model.in_channels)
    dataset = PatchDataset(images, cfg.data.patch_size, cfg.data.augment, _load_pairs(cfg, names))
    steps_per_epoch = len(images) * cfg.data.repeat // tc.batch_size
    if steps_per_epoch == 0:
        raise ConfigError(
            f"{len(images)} training image(s) x data.repeat={cfg.data.repeat} is less than one "
            f"batch of train.batch_size={tc.batch_size}; raise data.repeat or lower the batch size"
        )
    val_images: list[np.ndarray] = []
    val_names: list[str] = []
    if cfg.data.val is not None and noise is not None:
        val_images, val_names = load_images(cfg.data.val, cfg.model.in_channels)
        val_images = [to_uint8(v) for v in val_images[: cfg.data.val_max_images]]
        val_names = val_names[: len(val_images)]

    descriptor = ModelDescriptor(
        arch=cfg.model.arch,
        arch_args={
            "in_channels": cfg.model.in_channels,
            "out_channels": cfg.model.out_channels,
            "features": cfg.model.features,
        },
        in_channels=cfg.model.in_channels,
        out_channels=cfg.model.out_channels,
        size_multiple=getattr(net, "size_multiple", 1),
        noise=noise.spec if noise else None,
        method=cfg.method.name,
        training={
            "data": [str(p) for p in cfg.data.train],
            "command": command,
            "commands": (run_dir / "commands.log").read_text().splitlines(),
            "config": cfg.model_dump(mode="json"),
            "restorekit": __version__,
        },
    )

    step, best_psnr = 0, float("-inf")
    if resume:
        state = load_checkpoint(run_dir, net)
        optimizer.load_state_dict(state.optimizer)
        step, best_psnr = state.step, state.best_psnr
    total_steps = tc.epochs * steps_per_epoch
    stop_at = min(total_steps, max_steps) if max_steps else total_steps
    log = RunLogger(run_dir, stop_at, step)
    log.line(
        f"restorekit {__version__}: {cfg.method.name} on {len(images)} images "
        f"({steps_per_epoch} steps/epoch, {tc.epochs} epochs, batch {tc.batch_size}, "
        f"patch {cfg.data.patch_size}, noise {cfg.noise}) on {device}"
        + (f"; resumed at step {step}" if resume else "")
    )

    def checkpoint(epoch: int) -> None:
        save_checkpoint(run_dir, net, descriptor, optimizer, epoch, step, best_psnr)

    started, validations, stopped = time.time(), 0, None
    tick, tick_step = time.time(), step
    with _stop_requests() as stop_requests:
        for epoch in range(step // steps_per_epoch + 1, tc.epochs + 1):
            if step >= stop_at or stopped:
                break
            position = step - (epoch - 1) * steps_per_epoch
            sampler = EpochSampler(
                len(images), cfg.data.repeat, tc.seed, epoch, position * tc.batch_size
            )
            loader = DataLoader(
                dataset,
                tc.batch_size,
                sampler=sampler,
                drop_last=True,
                num_workers=cfg.data.workers,
                pin_memory=device.type == "cuda",
            )
            for sample in loader:
                step += 1
                lr = learning_rate(cfg, step, total_steps)
                out = stepper.step(sample, Progress(epoch, tc.epochs, step), lr)
                log.advance(out.parts["loss"])

                if step % tc.log_every == 0:
                    rate = (step - tick_step) * tc.batch_size / max(time.time() - tick, 1e-9)
                    tick, tick_step = time.time(), step
                    log.line(
                        f"epoch[{epoch}], iter[{step}], loss:{out.parts['loss']:.6f}, "
                        f"{rate:.1f} imgs/sec, lr:{lr:.2e}"
                    )
                    log.scalars(step, {**out.parts, "lr": lr, "imgs_per_sec": rate}, "train")
                if step % tc.checkpoint_every == 0:
                    checkpoint(epoch)
                if stop_requests or step >= stop_at:
                    stopped = stop_requests[0] if stop_requests else None
                    break

            epoch_done = step == epoch * steps_per_epoch
            if val_images and epoch_done and (epoch % tc.val_every == 0 or epoch == tc.epochs):
                assert noise is not None
                scores, sample_out = validate(
                    net, val_images, val_names, noise, tc.channels_last, tc.seed
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
                    best = descriptor.model_copy(
                        update={
                            "training": {
                                **descriptor.training,
                                "step": step,
                                "epoch": epoch,
                                "val": {"data": str(cfg.data.val), **scores},
                            }
                        }
                    )
                    save_model(run_dir / "checkpoints" / "best.safetensors", net, best)
            checkpoint(epoch + 1 if epoch_done else epoch)

    wall = time.time() - started
    log.line(f"stopped at step {step} after {wall:.0f} s" + (f" ({stopped})" if stopped else ""))
    log.close()
    if stopped:
        raise TrainingInterrupted(
            f"training interrupted by {stopped} at step {step}; checkpoint saved: "
            f"continue with `restorekit train --resume {run_dir}`"
        )
    final = descriptor.model_copy(
        update={"training": {**descriptor.training, "step": step, "wall_time_s": round(wall, 1)}}
    )
    model_path = run_dir / "model.safetensors"
    save_model(model_path, net, final)
    return TrainResult(run_dir, step, best_psnr, model_path)
