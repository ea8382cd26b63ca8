"""The one training loop, shared by every method.

Readable top to bottom: :func:`train` starts a run (:func:`_start`: data, network, optimizer,
resume, plan), loops over epochs of steps (:func:`_loop`, :func:`_train_epoch`, with the end of
each epoch in :func:`_end_epoch`) and saves the final model (:func:`_finish`). Each patch is a
function of (seed, epoch, position) and each sample's noise and masks of its own seed, so a
resumed run repeats an uninterrupted one exactly, and N processes with a global batch B take the
same steps as one process with batch B. The learning rate is multiplied by ``gamma`` once
training passes each milestone fraction of the plan's steps. The plan is ``train.epochs`` epochs,
or, with ``train.time_budget``, as many steps as the budget holds (:mod:`restorekit.engine.budget`).
With ``train.ema`` an exponential moving average of the weights is kept (``Stepper.ema``):
validation and every saved model file use it.

Under torchrun every process runs this loop on its share of each global batch (DDP averages the
gradients); only rank 0 logs, validates and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from torch.utils.data import DataLoader

from restorekit import __version__
from restorekit.configs import with_absolute_paths
from restorekit.configs.schema import Config
from restorekit.data import EpochSampler, PatchDataset
from restorekit.data.device import DevicePatches
from restorekit.degrade.noise import NoiseModel, parse_noise
from restorekit.engine import distributed
from restorekit.engine.budget import Plan, TimeBudget, is_final
from restorekit.engine.checkpoint import (
    checkpoint_paths,
    load_checkpoint,
    previous_state_path,
    remove_leftover_temporaries,
    save_checkpoint,
)
from restorekit.engine.logger import RunLogger
from restorekit.engine.run_data import TrainData, load_train_data
from restorekit.engine.run_data import steps_per_epoch as count_steps
from restorekit.engine.step import Stepper
from restorekit.engine.validation import validate
from restorekit.errors import ConfigError, RestorekitError
from restorekit.methods import LossOutput, Progress
from restorekit.nets.files import ModelDescriptor, init_from_model_file, save_model
from restorekit.units import format_duration
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
    task: Literal["denoise", "upscale"] = "denoise",
    normalization: dict | None = None,
) -> ModelDescriptor:
    """The descriptor saved with every checkpoint of this run (``task``: the method's;
    ``normalization``: the stacks' per-channel statistics, undone on output at inference)."""
    commands = run_dir / "commands.log"
    upscale = task == "upscale"
    stacks: dict[str, Any] = (
        {"axes": cfg.data.axes, "normalization": normalization} if cfg.data.axes else {}
    )
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
        **stacks,
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
    started = time.monotonic()
    context = distributed.setup(config.train.device)
    # On failure the group is left as it is: destroying it while a peer is dead or mid-collective
    # can hang, and the error must reach the user. The process is ending anyway.
    run = _start(config, Path(run_dir), context, resume, command, started)
    stopped = _loop(run, max_steps)
    result = _finish(run, stopped, time.monotonic() - started)
    distributed.teardown(context)
    return result


@dataclass
class _Run:
    """A run in progress: what :func:`_start` built, and where training stands."""

    cfg: Config
    run_dir: Path
    context: distributed.DistributedContext
    stepper: Stepper
    data: TrainData
    noise: NoiseModel | None  # validation's
    descriptor: ModelDescriptor
    log: RunLogger
    steps_per_epoch: int
    plan: Plan
    budget: TimeBudget | None  # set until the time budget has fixed the plan
    plan_from_budget: bool = False  # then checkpoints carry the plan, and resuming keeps it
    validates: bool = False  # whether the budget's plan counts validations
    device_patches: DevicePatches | None = None  # data.on_device: patches cut on the device
    step: int = 0
    best_psnr: float = float("-inf")
    validations: int = 0
    clock: tuple[float, int] | None = None  # (time, step) when this process's first step began

    @property
    def main(self) -> bool:
        return self.context.is_main

    def overhead(self, kind: str) -> contextlib.AbstractContextManager[None]:
        """Around validations and checkpoints (``kind``): timed apart from the steps by a time
        budget's warm-up."""
        return self.budget.excluded(kind) if self.budget else contextlib.nullcontext()

    def checkpoint(self, epoch: int) -> None:
        if self.main:
            save_checkpoint(
                self.run_dir,
                self.stepper.model,
                self.descriptor,
                self.stepper.optimizer,
                epoch,
                self.step,
                self.best_psnr,
                self.stepper.ema,
                self.plan.as_dict() if self.plan_from_budget else None,
            )


def _start(
    cfg: Config,
    run_dir: Path,
    context: distributed.DistributedContext,
    resume: bool,
    command: str,
    started: float,
) -> _Run:
    """Check and record the run, build its pieces, resume or initialise, write the first line."""
    _record(cfg, run_dir, resume, command, context.is_main)
    leftovers = remove_leftover_temporaries(run_dir) if context.is_main else []
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    stepper = Stepper.from_config(cfg, context)
    noise = parse_noise(cfg.noise) if cfg.noise else None  # validation's (and noise_once's)
    data = load_train_data(cfg, noise, stepper.method.task)
    steps_per_epoch = count_steps(cfg, data.n_images, context.world_size)
    descriptor = describe(
        cfg, stepper.model, run_dir, command, stepper.method.task, data.normalization
    )
    state = load_checkpoint(run_dir, stepper.model, stepper.ema) if resume else None
    if state is not None:
        stepper.optimizer.load_state_dict(state.optimizer)
    plan = Plan(**state.plan) if state and state.plan else None
    budget = None
    if plan is None and cfg.train.time_budget is not None:
        plan = Plan.open_ended(steps_per_epoch)  # until the warm-up has measured the steps
        budget = TimeBudget(cfg.train.time_budget, started)
    elif plan is None:
        plan = Plan.from_epochs(cfg.train.epochs, steps_per_epoch)
    step = state.step if state else 0
    log = RunLogger(run_dir, None if budget else plan.total_steps, step, enabled=context.is_main)
    run = _Run(
        cfg,
        run_dir,
        context,
        stepper,
        data,
        noise,
        descriptor,
        log,
        steps_per_epoch,
        plan,
        budget,
        plan_from_budget=bool(state and state.plan),
        step=step,
        best_psnr=state.best_psnr if state else float("-inf"),
    )
    log.line(_first_line(run, resume))
    for note in (state.recovery, state.ema_note) if state else ():
        if note:
            log.line(note)
    if leftovers:
        log.line(f"removed {len(leftovers)} temporary file(s) left by a killed run")
    if run.plan_from_budget:
        log.line(f"resumed with the plan its time budget fixed: {plan.total_steps} steps")
    if _on_device(cfg, data, context.device):
        assert isinstance(data.dataset, PatchDataset)  # what _on_device allows
        run.device_patches = DevicePatches(data.dataset, context.device)
        log.line(f"training images held on {context.device}: patches cut there in batches")
    if cfg.train.init_from is not None and not resume:
        source = resolve_model(cfg.train.init_from)
        loaded, skipped = init_from_model_file(stepper.model, cfg.model.arch, source)
        log.line(
            f"initialised from {source}: {len(loaded)} tensors loaded, {len(skipped)} kept "
            f"as initialised" + (f" ({', '.join(skipped)})" if skipped else "")
        )
    return run


def _on_device(cfg: Config, data: TrainData, device: torch.device) -> bool:
    """Whether patches are cut on the device (data.on_device; by default on a GPU), which
    image folders allow (not stacks, nor super-resolution pairs)."""
    wanted = cfg.data.on_device if cfg.data.on_device is not None else device.type == "cuda"
    if wanted and not isinstance(data.dataset, PatchDataset):
        if cfg.data.on_device:
            raise ConfigError(
                "data.on_device=true takes folders of images (denoising); stacks and "
                "super-resolution pairs are cut by the loader: drop data.on_device"
            )
        return False
    return wanted


def _record(cfg: Config, run_dir: Path, resume: bool, command: str, main: bool) -> None:
    """Refuse to start over a run; write config.yaml (what ``--resume`` reads: overrides given
    when resuming are kept) and append the command to commands.log."""
    if not cfg.data.train:
        raise ConfigError("no training data: set data.train in the config or pass --data DIR")
    if not resume and (
        checkpoint_paths(run_dir)[1].exists() or previous_state_path(run_dir).exists()
    ):
        raise RestorekitError(
            f"{run_dir} already holds a run; continue it with --resume {run_dir} "
            "or pick another --out"
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} is a file: a run needs a folder; pick another --out")
    if resume:
        _check_unchanged(run_dir, cfg)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        recorded = with_absolute_paths(cfg).model_dump(mode="json")  # resumable from anywhere
        (run_dir / "config.yaml").write_text(yaml.safe_dump(recorded))
        with open(run_dir / "commands.log", "a") as log_file:
            log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {command or '(python API)'}\n")


_FIXED_ON_RESUME = (("train", "batch_size"), ("train", "accumulate"), ("data", "repeat"))
"""Fields that set what a step and an epoch are: a resumed run must keep them."""


def _check_unchanged(run_dir: Path, cfg: Config) -> None:
    """Refuse a resume that changes what a step or an epoch is (the run's position, its
    epoch counter and its schedule are counted in them); other overrides are kept."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return
    before = yaml.safe_load(path.read_text()) or {}
    now = cfg.model_dump(mode="json")
    for section, field in _FIXED_ON_RESUME:
        old, new = before.get(section, {}).get(field), now[section][field]
        if old is not None and old != new:
            raise ConfigError(
                f"--resume with {section}.{field}={new}, but the run in {run_dir} was trained "
                f"with {old}: its position, epochs and schedule are counted in those steps. "
                f"Resume without changing it, or start a new run from its weights: "
                f"restorekit train CONFIG --init-from {run_dir} --set {section}.{field}={new} "
                "--out NEW_FOLDER"
            )


def _first_line(run: _Run, resume: bool) -> str:
    """What the run trains, on what, how long and where."""
    cfg, tc, context = run.cfg, run.cfg.train, run.context
    local_batch = tc.batch_size // context.world_size
    if run.stepper.method.task == "upscale":
        what = sr_summary(cfg)
    else:
        depth = f"{cfg.data.patch_depth}x" if cfg.data.patch_depth else ""
        once = " added once" if cfg.data.noise_once else ""
        what = f"patch {depth}{cfg.data.patch_size}, noise {cfg.noise}{once}"
    length = f"{run.plan.epochs} epochs"
    if run.budget is not None:
        length = f"time budget {tc.time_budget:g} s: steps fixed after a measured warm-up"
    return (
        f"restorekit {__version__}: {cfg.method.name} on {run.data.n_images} images "
        f"({run.steps_per_epoch} steps/epoch, {length}, global batch {tc.batch_size} = "
        f"{context.world_size} process(es) x {local_batch // tc.accumulate} x {tc.accumulate} "
        f"accumulation, {what}) on {context.device}"
        + (f"; resumed at step {run.step}" if resume else "")
        + (f"; weight average (EMA) with decay {tc.ema}" if tc.ema is not None else "")
    )


def _loop(run: _Run, max_steps: int | None) -> str | None:
    """Epochs of steps until the plan (or ``max_steps``) is done or a stop is requested;
    returns the stop request's name, or None."""
    with _stop_requests() as stop_requests:
        while True:
            stop_at = min(run.plan.total_steps, max_steps or run.plan.total_steps)
            if run.step >= stop_at:
                return None
            epoch = run.step // run.steps_per_epoch + 1
            stopped = _train_epoch(run, epoch, max_steps, stop_requests)
            if stopped is not None:
                return stopped
            _end_epoch(run, epoch)


def _train_epoch(
    run: _Run, epoch: int, max_steps: int | None, stop_requests: list[str]
) -> str | None:
    """The steps of ``epoch`` from where the run stands, up to the epoch's end, the plan's end
    or ``max_steps``; returns the stop request's name if one came, else None."""
    cfg, context, spe = run.cfg, run.context, run.steps_per_epoch
    local_batch = cfg.train.batch_size // context.world_size
    position = (run.step - (epoch - 1) * spe) * cfg.train.batch_size
    sampler = EpochSampler(
        run.data.n_images,
        cfg.data.repeat,
        cfg.train.seed,
        epoch,
        position,
        context.rank,
        context.world_size,
        local_batch,
    )
    if run.device_patches is not None:
        loader: Iterable[dict] = run.device_patches.batches(sampler, local_batch)
    else:
        loader = DataLoader(
            run.data.dataset,
            local_batch,
            sampler=sampler,
            drop_last=True,
            num_workers=cfg.data.workers,
            pin_memory=context.device.type == "cuda",
        )
    tick = (time.monotonic(), run.step)
    run.clock = run.clock or tick
    for sample in loader:
        run.step += 1
        lr = learning_rate(cfg, run.step, run.plan.total_steps)
        progress = Progress(epoch, run.plan.epochs, run.step)
        stop, out = _step(run, sample, progress, lr, stop_requests)
        if run.step % cfg.train.log_every == 0 or run.step == run.clock[1] + 1:
            tick = _log_step(run, epoch, lr, tick, out.numbers())
        if run.step % cfg.train.checkpoint_every == 0:
            with run.overhead("checkpoint"):
                run.checkpoint(epoch)
        if run.budget is not None and distributed.from_main(
            float(run.budget.step_done(run.step)), context
        ):
            _fix_plan(run, epoch)
        if stop:
            _end_epoch(run, epoch)
            return (stop_requests or ["a stop request"])[0]
        if run.step >= min(run.plan.total_steps, max_steps or run.plan.total_steps):
            break
    return None


def _step(
    run: _Run, sample: dict, progress: Progress, lr: float, stop_requests: list[str]
) -> tuple[bool, LossOutput]:
    """One optimizer step; returns whether any process was asked to stop, and the loss."""
    try:
        out = run.stepper.step(sample, progress, lr)
        stop = distributed.any_rank(bool(stop_requests), run.context)
    except RuntimeError as error:
        if not run.context.enabled:
            raise
        raise RestorekitError(
            f"training process {run.context.rank}: the process group failed at step "
            f"{run.step} ({str(error).splitlines()[0]}); another process probably died. "
            f"Continue from the last checkpoint with --resume {run.run_dir}"
        ) from None
    run.log.advance()
    return stop, out


def _log_step(
    run: _Run, epoch: int, lr: float, tick: tuple[float, int], parts: dict[str, float]
) -> tuple[float, int]:
    """The step's log line (with the time left) and TensorBoard scalars; returns the new
    rate-measuring tick."""
    now = time.monotonic()
    rate = (run.step - tick[1]) * run.cfg.train.batch_size / max(now - tick[0], 1e-9)
    parts = distributed.mean_over_ranks(parts, run.context)
    run.log.bar.set_postfix(loss=f"{parts['loss']:.5f}", refresh=False)
    run.log.line(
        f"epoch[{epoch}], iter[{run.step}], loss:{parts['loss']:.6f}, "
        f"{rate:.1f} imgs/sec, lr:{lr:.2e}, eta {_eta(run, now)}"
    )
    run.log.scalars(run.step, {**parts, "lr": lr, "imgs_per_sec": rate}, "train")
    return now, run.step


def _eta(run: _Run, now: float) -> str:
    """Time left: the plan's remaining steps at the mean step time since this process's first
    step (validations and checkpoints included); with a time budget not yet turned into a
    plan, what is left of the budget."""
    if run.budget is not None:
        left = run.budget.seconds - run.budget.elapsed()
        return f"{format_duration(left)} (time budget)"
    assert run.clock is not None  # set before the first step
    per_step = (now - run.clock[0]) / max(run.step - run.clock[1], 1)
    return format_duration((run.plan.total_steps - run.step) * per_step)


def _fix_plan(run: _Run, epoch: int) -> None:
    """(Re)plan a time-budgeted run (see :mod:`restorekit.engine.budget`): at the end of the
    warm-up after timing a validation and a checkpoint, later from all timings so far; every
    process gets rank 0's plan. The plan becomes final once its first milestone is near."""
    budget, tc = run.budget, run.cfg.train
    assert budget is not None
    first = not run.plan_from_budget
    if first:
        with budget.excluded("validation"):
            validates = _validate(run, epoch)
        with budget.excluded("checkpoint"):
            run.checkpoint(epoch)
        run.validates = validates
    costs = budget.costs(run.step)
    plan = budget.plan(
        run.step, costs, run.steps_per_epoch, tc.val_every, tc.checkpoint_every, run.validates
    )
    total = int(distributed.from_main(float(plan.total_steps), run.context))
    run.plan, run.plan_from_budget = Plan.from_steps(total, run.steps_per_epoch), True
    final = is_final(run.plan, run.step, run.cfg.optim.milestones)
    if final:
        run.budget = None
    run.log.bar.total = run.plan.total_steps
    run.log.line(
        f"time budget {tc.time_budget:g} s: {costs.per_step:.3f} s/step measured (validation "
        f"{costs.validation:.2f} s, checkpoint {costs.checkpoint:.2f} s): "
        f"{run.plan.total_steps} steps in all ({run.plan.epochs} epoch(s)); "
        + ("schedule fixed" if final else "measured again as it goes, until the first milestone")
    )
    run.checkpoint(epoch)  # the plan travels with the resume point


def _end_epoch(run: _Run, epoch: int) -> None:
    """Validation (every ``val_every`` epochs and at the last), the held-out loss of stacks,
    and the resume checkpoint."""
    epoch_done = run.step == epoch * run.steps_per_epoch
    last = run.step == run.plan.total_steps
    if (epoch_done or last) and (epoch % run.cfg.train.val_every == 0 or last):
        with run.overhead("validation"):
            _validate(run, epoch)
    with run.overhead("checkpoint"):
        run.checkpoint(epoch + 1 if epoch_done else epoch)


def _validate(run: _Run, epoch: int) -> bool:
    """Validate (rank 0) on the clean images and, for stacks, the held-out patches; log; keep
    the best model. Returns whether there was anything to validate on."""
    data = run.data
    if not run.main or (not data.val_images and data.val_patches is None):
        return False
    if data.val_images:
        _validate_images(run, epoch)
    if data.val_patches is not None:
        val_loss = run.stepper.evaluate(
            data.val_patches, Progress(epoch, run.plan.epochs, run.step)
        )
        run.log.scalars(run.step, {"loss": val_loss}, "val")
        run.log.line(f"validation epoch[{epoch}]: held-out loss {val_loss:.6f}")
    return True


def _validate_images(run: _Run, epoch: int) -> None:
    """PSNR/SSIM by the task's protocol; a sample image now and then; the best model."""
    data, tc, task = run.data, run.cfg.train, run.stepper.method.task
    scores, sample_out = validate(
        run.stepper.averaged,
        data.val_images,
        data.val_names,
        run.noise,
        tc.channels_last,
        tc.seed,
        task,
        run.cfg.data.scales or [1],
    )
    run.log.scalars(run.step, scores, "val")
    before = "bicubic" if task == "upscale" else "noisy"
    per_scale = ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if "_x" in k)
    run.log.line(
        f"validation epoch[{epoch}]: PSNR {scores['psnr']:.4f} dB, SSIM {scores['ssim']:.4f} "
        f"({before} {scores['psnr_in']:.4f} dB)" + (f"; {per_scale}" if per_scale else "")
    )
    if run.validations % tc.image_every == 0:
        tag = "upscaled" if task == "upscale" else "denoised"
        run.log.image(run.step, f"val/{tag}", sample_out)
    run.validations += 1
    if scores["psnr"] > run.best_psnr:
        run.best_psnr = scores["psnr"]
        val = {"data": str(run.cfg.data.val), **scores}
        _save(run, run.run_dir / "checkpoints" / "best.safetensors", {"epoch": epoch, "val": val})


def _save(run: _Run, path: Path, facts: dict[str, Any]) -> None:
    """Save the averaged (or plain) network with the descriptor, its step and ``facts``."""
    training = {**run.descriptor.training, "step": run.step, **facts}
    save_model(path, run.stepper.averaged, run.descriptor.model_copy(update={"training": training}))


def _finish(run: _Run, stopped: str | None, wall: float) -> TrainResult:
    """The last line; the final model (or, after a stop request, the error that says how to
    resume)."""
    run.log.line(
        f"stopped at step {run.step} after {wall:.0f} s" + (f" ({stopped})" if stopped else "")
    )
    run.log.close()
    if stopped:
        raise TrainingInterrupted(
            f"training interrupted by {stopped} at step {run.step}; checkpoint saved: "
            f"continue with `restorekit train --resume {run.run_dir}`"
        )
    model_path = run.run_dir / "model.safetensors"
    if run.main:
        _save(run, model_path, {"wall_time_s": round(wall, 1)})
    distributed.barrier(run.context)
    return TrainResult(run.run_dir, run.step, run.best_psnr, model_path)
