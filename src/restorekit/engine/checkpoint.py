"""Checkpoints of a run folder.

``checkpoints/last.state.pt`` is the resume point: weights, optimizer state, epoch, step, best
validation PSNR and RNG states in one file, written atomically, so a crash or a killed process at
any moment leaves either the previous or the new resume point, never a mix. It holds only
tensors and plain values and is read with ``torch.load(weights_only=True)``.
``checkpoints/last.safetensors``, written after it, is the same weights as a loadable model file
(for ``restorekit eval`` on a running job); resuming does not read it.
(State files of older runs lack the weights: those resume from ``last.safetensors``, whose step
must match.)

With ``train.ema`` the state file also holds the weight average (``ema``: its weights, buffers
and update count) next to the raw weights training continues from, so a resumed run equals an
uninterrupted one; ``last.safetensors`` then holds the averaged weights, like ``best`` and
``model.safetensors``. Resuming with ``train.ema`` set from a state without an average starts
the average from the resumed weights; resuming with it off drops a stored average. Both say so
in the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from restorekit.errors import RestorekitError
from restorekit.io import atomic_write
from restorekit.nets.files import (
    ModelDescriptor,
    load_model_file,
    load_state,
    read_descriptor,
    save_model,
)


@dataclass
class ResumeState:
    epoch: int  # the epoch in progress (from 1)
    step: int  # optimizer steps taken so far
    best_psnr: float
    optimizer: dict[str, Any]
    ema_note: str | None = None  # how a state without (or with an unwanted) average was resumed
    plan: dict[str, int] | None = None  # total_steps and epochs, when a time budget fixed them


def checkpoint_paths(run_dir: Path) -> tuple[Path, Path]:
    folder = run_dir / "checkpoints"
    return folder / "last.safetensors", folder / "last.state.pt"


def save_checkpoint(
    run_dir: Path,
    net: nn.Module,
    descriptor: ModelDescriptor,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    step: int,
    best_psnr: float,
    ema: AveragedModel | None = None,
    plan: dict[str, int] | None = None,
) -> None:
    """Write the resume point, then ``last.safetensors`` (``ema``'s averaged weights if given,
    else ``net``'s). ``plan``: the run's length when a time budget fixed it (kept on resume)."""
    weights, state = checkpoint_paths(run_dir)
    descriptor = descriptor.model_copy(update={"training": {**descriptor.training, "step": step}})
    payload = {
        "epoch": epoch,
        "step": step,
        "best_psnr": best_psnr,
        "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    if ema is not None:
        payload["ema"] = {k: v.detach().cpu() for k, v in ema.state_dict().items()}
    if plan is not None:
        payload["plan"] = dict(plan)
    atomic_write(state, lambda tmp: torch.save(payload, tmp))
    save_model(weights, net if ema is None else ema.module, descriptor)


def load_checkpoint(run_dir: Path, net: nn.Module, ema: AveragedModel | None = None) -> ResumeState:
    """Load the last checkpoint of ``run_dir`` into ``net`` (and its weight average into
    ``ema``, train.ema); return what the loop resumes from."""
    weights, state_path = checkpoint_paths(run_dir)
    if not state_path.is_file():
        raise RestorekitError(
            f"{run_dir}: no checkpoint to resume from (expected {state_path.name} in "
            f"{state_path.parent}); start a new run without --resume"
        )
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    if "model" in state:
        load_state(net, state["model"], state_path)
    else:  # an older run: weights in the safetensors file only
        weights_step = read_descriptor(weights).training.get("step") if weights.is_file() else None
        if weights_step != state["step"]:
            raise RestorekitError(
                f"{run_dir}: weights (step {weights_step}) and resume state (step "
                f"{state['step']}) disagree, the last save was interrupted; delete "
                "checkpoints/last.* to restart"
            )
        loaded, _ = load_model_file(weights)
        load_state(net, loaded.state_dict(), weights)
    note = None
    if ema is not None and "ema" in state:
        load_state(ema, state["ema"], state_path)
    elif ema is not None:
        ema.update_parameters(net)  # a copy of the resumed weights: the average starts here
        note = (
            f"train.ema is set but the checkpoint (step {state['step']}) holds no weight "
            "average: the average starts from the resumed weights"
        )
    elif "ema" in state:
        note = (
            f"train.ema is off but the checkpoint (step {state['step']}) holds a weight average: "
            "it is dropped; validation and saved models now use the raw weights"
        )
    torch.set_rng_state(state["torch_rng"])
    return ResumeState(
        state["epoch"],
        state["step"],
        state["best_psnr"],
        state["optimizer"],
        note,
        state.get("plan"),
    )
