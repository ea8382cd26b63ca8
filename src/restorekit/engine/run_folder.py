"""A run's folder: what it records when it starts (config.yaml, commands.log), the checks that
keep a run from starting over another or resuming with a changed step, and the descriptor
saved with every model file the run writes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import yaml

from restorekit import __version__
from restorekit.configs import with_absolute_paths
from restorekit.configs.schema import Config
from restorekit.data.kinds import data_kind
from restorekit.engine.checkpoint import checkpoint_paths, previous_state_path
from restorekit.errors import ConfigError, RestorekitError
from restorekit.nets.files import ModelDescriptor


def describe(
    cfg: Config,
    model: torch.nn.Module,
    run_dir: Path,
    command: str,
    normalization: dict | None = None,
) -> ModelDescriptor:
    """The descriptor saved with every model file of this run (``normalization``: the data's
    per-channel scaling, undone on output at inference)."""
    commands = run_dir / "commands.log"
    training: dict[str, Any] = {
        "data": [str(p) for p in cfg.data.train],
        "command": command,
        "commands": commands.read_text().splitlines() if commands.exists() else [command],
        "config": cfg.model_dump(mode="json"),
        "restorekit": __version__,
    }
    return ModelDescriptor(
        arch=cfg.model.arch,
        arch_args=cfg.model.model_dump(exclude={"arch"}),
        in_channels=cfg.model.in_channels,
        out_channels=getattr(cfg.model, "out_channels", cfg.model.in_channels),
        size_multiple=getattr(model, "size_multiple", 1),
        noise=cfg.noise,
        method=cfg.method.name,
        training=training,
        **data_kind(cfg).descriptor_fields(cfg, normalization),
    )


def check_start(cfg: Config, run_dir: Path, resume: bool) -> None:
    """Refuse to start over a run, in a file, without data, or to resume with a changed step;
    writes nothing."""
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
        check_unchanged(run_dir, cfg)


def record_start(cfg: Config, run_dir: Path, command: str, main: bool) -> None:
    """Write config.yaml (what ``--resume`` reads: overrides given when resuming are kept) and
    append the command to commands.log; called once the data and any checkpoint have loaded,
    so that a run that cannot start leaves its folder as it was."""
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        recorded = with_absolute_paths(cfg).model_dump(mode="json")  # resumable from anywhere
        (run_dir / "config.yaml").write_text(yaml.safe_dump(recorded))
        with open(run_dir / "commands.log", "a") as log_file:
            log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {command or '(python API)'}\n")


_FIXED_ON_RESUME = (("train", "batch_size"), ("train", "accumulate"), ("data", "repeat"))
"""Fields that set what a step and an epoch are: a resumed run must keep them."""


def check_unchanged(run_dir: Path, cfg: Config) -> None:
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
