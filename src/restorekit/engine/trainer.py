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
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from restorekit import __version__
from restorekit.configs.schema import Config
from restorekit.data.device import DevicePatches
from restorekit.data.kinds import DataKind, TrainData, ValidationInputs, data_kind
from restorekit.data.patches import EpochSampler, PatchDataset
from restorekit.degrade.noise import NoiseModel, parse_noise
from restorekit.engine import distributed
from restorekit.engine.budget import Plan, TimeBudget, is_final
from restorekit.engine.checkpoint import (
    load_checkpoint,
    remove_leftover_temporaries,
    save_checkpoint,
)
from restorekit.engine.logger import RunLogger
from restorekit.engine.run_folder import check_start, describe, record_start
from restorekit.engine.schedule import learning_rate, steps_per_epoch
from restorekit.engine.step import Stepper
from restorekit.errors import RestorekitError
from restorekit.methods import LossOutput, Progress
from restorekit.nets.files import ModelDescriptor, init_from_model_file, save_model
from restorekit.units import format_duration
from restorekit.zoo import resolve_model


class TrainingInterrupted(RestorekitError):
    """Training stopped by a signal; a checkpoint was written first."""


class ProcessGroupFailed(RestorekitError):
    """A collective failed in a torchrun launch: another process probably died."""


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    best_psnr: float
    model_path: Path
    main: bool = True  # False in the other processes of a torchrun launch


@contextlib.contextmanager
def _stop_requests() -> Iterator[list[str]]:
    """Turn SIGINT/SIGTERM into a flag checked between steps (never mid-update); in another
    thread than the main one (a server's worker) signals stay with the main thread, and the
    caller stops the run with ``train(..., stop=event)``."""
    requests: list[str] = []

    def handler(signum: int, _frame: object) -> None:
        requests.append(signal.Signals(signum).name)

    signals = (signal.SIGINT, signal.SIGTERM)
    in_main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, handler) for s in signals} if in_main else {}
    try:
        yield requests
    except ProcessGroupFailed:
        # torchrun's agent sends SIGTERM to the survivors as soon as one process dies: this
        # process keeps the flag handler so that it lives to print why it stops (it is ending)
        previous = {}
        raise
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def train(
    config: Config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    max_steps: int | None = None,
    command: str = "",
    stop: threading.Event | None = None,
) -> TrainResult:
    """Train as ``config`` says, writing logs and checkpoints under ``run_dir``. Setting
    ``stop`` stops the run as SIGINT does (a checkpoint, then :class:`TrainingInterrupted`).

    Launched by torchrun, this joins the process group and trains with DDP.
    """
    started = time.monotonic()
    context = distributed.setup(config.train.device)
    # On failure the group is left as it is: destroying it while a peer is dead or mid-collective
    # can hang, and the error must reach the user. The process is ending anyway.
    run = _start(config, Path(run_dir), context, resume, command, started)
    run.stop_event = stop
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
    kind: DataKind
    data: TrainData
    noise: NoiseModel | None  # validation's
    descriptor: ModelDescriptor
    steps_per_epoch: int
    step: int = 0
    best_psnr: float = float("-inf")
    plan: Plan = field(default_factory=lambda: Plan(0, 0))  # set by _plan
    log: RunLogger = field(init=False)  # set by _plan
    budget: TimeBudget | None = None  # set until the time budget has fixed the plan
    plan_from_budget: bool = False  # then checkpoints carry the plan, and resuming keeps it
    validates: bool = False  # whether the budget's plan counts validations
    device_patches: DevicePatches | None = None  # data.on_device: patches cut on the device
    validations: int = 0
    clock: tuple[float, int] | None = None  # (time, step) when this process's first step began
    stop_event: threading.Event | None = None  # the caller's stop request (train's ``stop``)

    @property
    def main(self) -> bool:
        return self.context.is_main

    def overhead(self, what: str) -> contextlib.AbstractContextManager[None]:
        """Around validations and checkpoints (``what``): timed apart from the steps by a time
        budget's warm-up."""
        return self.budget.excluded(what) if self.budget else contextlib.nullcontext()

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
                self.stepper.scaler,
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
    check_start(cfg, run_dir, resume)
    leftovers = remove_leftover_temporaries(run_dir) if context.is_main else []
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    stepper = Stepper.from_config(cfg, context)
    kind = data_kind(cfg)
    noise = parse_noise(cfg.noise) if cfg.noise else None  # validation's (and noise_once's)
    data = kind.load(cfg, noise)
    state = load_checkpoint(run_dir, stepper.model, stepper.ema) if resume else None
    record_start(cfg, run_dir, command, context.is_main)
    descriptor = describe(cfg, stepper.model, run_dir, command, data.normalization)
    scaler_note = None
    if state is not None:
        stepper.optimizer.load_state_dict(state.optimizer)
        if state.grad_scaler and stepper.scaler.is_enabled():
            stepper.scaler.load_state_dict(state.grad_scaler)
        elif stepper.scaler.is_enabled():  # a checkpoint of another precision, or older
            scaler_note = (
                f"the checkpoint (step {state.step}) holds no fp16 loss scale: it starts again "
                f"at {stepper.scaler.get_scale():g} (the first steps may be skipped to find it)"
            )
    run = _Run(
        cfg,
        run_dir,
        context,
        stepper,
        kind,
        data,
        noise,
        descriptor,
        steps_per_epoch(cfg, data.n_images, context.world_size),
        step=state.step if state else 0,
        best_psnr=state.best_psnr if state else float("-inf"),
    )
    _plan(run, state.plan if state else None, started)
    run.log.line(_first_line(run, resume))
    for note in (state.recovery, state.ema_note, scaler_note) if state else ():
        if note:
            run.log.line(note)
    if leftovers:
        run.log.line(f"removed {len(leftovers)} temporary file(s) left by a killed run")
    _place_data(run)
    if cfg.train.init_from is not None and not resume:
        _init_weights(run, cfg.train.init_from)
    return run


def _plan(run: _Run, resumed_plan: dict | None, started: float) -> None:
    """The run's plan: a resumed time-budgeted run's, a time budget's open-ended one until its
    warm-up has measured the steps, or ``train.epochs`` epochs; and the logger that counts
    toward it."""
    tc = run.cfg.train
    if resumed_plan is not None:
        run.plan, run.plan_from_budget = Plan(**resumed_plan), True
    elif tc.time_budget is not None:
        run.plan = Plan.open_ended(run.steps_per_epoch)
        run.budget = TimeBudget(tc.time_budget, started)
    else:
        run.plan = Plan.from_epochs(tc.epochs, run.steps_per_epoch)
    total = None if run.budget else run.plan.total_steps
    run.log = RunLogger(run.run_dir, total, run.step, enabled=run.context.is_main)
    if run.plan_from_budget:
        run.log.line(f"resumed with the plan its time budget fixed: {run.plan.total_steps} steps")


def _place_data(run: _Run) -> None:
    """Hold the training images on the device and cut batches there, where the data kind
    does that (by default on a GPU)."""
    device = run.context.device
    if run.kind.cuts_on_device(run.cfg, device):
        assert isinstance(run.data.dataset, PatchDataset)  # the kinds that cut on the device
        run.device_patches = DevicePatches(run.data.dataset, device)
        run.log.line(f"training images held on {device}: patches cut there in batches")


def _init_weights(run: _Run, init_from: Path) -> None:
    """Start from the weights of a model file, run folder or shipped model (train.init_from)."""
    source = resolve_model(init_from)
    model = run.cfg.model
    channels = (model.in_channels, getattr(model, "out_channels", model.in_channels))
    loaded, skipped, adapted = init_from_model_file(run.stepper.model, model.arch, source, channels)
    run.log.line(
        f"initialised from {source}: {len(loaded)} tensors loaded, {len(skipped)} kept "
        f"as initialised"
        + (f" ({', '.join(skipped)})" if skipped else "")
        + (
            f"; {len(adapted)} adapted to {channels[0]} -> {channels[1]} channels "
            f"({', '.join(adapted)})"
            if adapted
            else ""
        )
    )


def _first_line(run: _Run, resume: bool) -> str:
    """What the run trains, on what, how long and where."""
    cfg, tc, context = run.cfg, run.cfg.train, run.context
    local_batch = tc.batch_size // context.world_size
    length = f"{run.plan.epochs} epochs"
    if run.budget is not None:
        length = f"time budget {tc.time_budget:g} s: steps fixed after a measured warm-up"
    return (
        f"restorekit {__version__}: {cfg.method.name} on {run.data.n_images} images "
        f"({run.steps_per_epoch} steps/epoch, {length}, global batch {tc.batch_size} = "
        f"{context.world_size} process(es) x {local_batch // tc.accumulate} x {tc.accumulate} "
        f"accumulation, {run.kind.summary(cfg)}) on {context.device}"
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
        if run.stop_event is not None and run.stop_event.is_set() and not stop_requests:
            stop_requests.append("a stop request")
        stop = distributed.any_rank(bool(stop_requests), run.context)
    except RuntimeError as error:
        if not run.context.enabled:
            raise
        raise ProcessGroupFailed(
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
    """Validate (rank 0) by the data kind's protocol; log; keep the best model. Returns
    whether there was anything to validate on."""
    if not run.main:
        return False
    progress = Progress(epoch, run.plan.epochs, run.step)
    given = ValidationInputs(
        run.cfg,
        run.data,
        run.stepper.averaged,
        run.noise,
        lambda batch: run.stepper.evaluate(batch, progress),
    )
    result = run.kind.validate(given)
    if result is None:
        return False
    run.log.scalars(run.step, result.scores, "val")
    run.log.line(f"validation epoch[{epoch}]: {result.line}")
    if result.image is not None and run.validations % run.cfg.train.image_every == 0:
        run.log.image(run.step, f"val/{result.image_tag}", result.image)
    run.validations += 1
    if result.psnr is not None and result.psnr > run.best_psnr:
        run.best_psnr = result.psnr
        val = {"data": str(getattr(run.cfg.data, "val", None)), **result.scores}
        _save(run, run.run_dir / "checkpoints" / "best.safetensors", {"epoch": epoch, "val": val})
    return True


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
    return TrainResult(run.run_dir, run.step, run.best_psnr, model_path, run.main)
