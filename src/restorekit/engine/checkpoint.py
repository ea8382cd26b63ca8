"""Checkpoints of a run folder.

``checkpoints/last.safetensors`` holds the weights (a loadable model file) and
``checkpoints/last.state.pt`` what resuming needs: optimizer state, epoch, step, best validation
PSNR and RNG states. The state file holds only tensors and plain values and is read with
``torch.load(weights_only=True)``. Both are written atomically, weights first; the state names
the step of its weights, so a crash between the two writes is detected instead of resumed wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

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
) -> None:
    weights, state = checkpoint_paths(run_dir)
    descriptor = descriptor.model_copy(update={"training": {**descriptor.training, "step": step}})
    save_model(weights, net, descriptor)
    payload = {
        "epoch": epoch,
        "step": step,
        "best_psnr": best_psnr,
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    atomic_write(state, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(run_dir: Path, net: nn.Module) -> ResumeState:
    """Load the last checkpoint of ``run_dir`` into ``net``; return what the loop resumes from."""
    weights, state_path = checkpoint_paths(run_dir)
    if not weights.is_file() or not state_path.is_file():
        raise RestorekitError(
            f"{run_dir}: no checkpoint to resume from (expected {weights.name} and "
            f"{state_path.name} in {weights.parent}); start a new run without --resume"
        )
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    weights_step = read_descriptor(weights).training.get("step")
    if weights_step != state["step"]:
        raise RestorekitError(
            f"{run_dir}: weights (step {weights_step}) and resume state (step {state['step']}) "
            "disagree, the last save was interrupted; delete checkpoints/last.* to restart"
        )
    loaded, _ = load_model_file(weights)
    load_state(net, loaded.state_dict(), weights)
    torch.set_rng_state(state["torch_rng"])
    return ResumeState(state["epoch"], state["step"], state["best_psnr"], state["optimizer"])
