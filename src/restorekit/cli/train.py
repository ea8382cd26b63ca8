"""``restorekit train`` and ``restorekit presets``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click


@click.command()
@click.argument("config", required=False)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config field, e.g. --set train.epochs=10 (repeatable).",
)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    multiple=True,
    help="Training image folder (repeatable); replaces data.train.",
)
@click.option("--val", type=click.Path(path_type=Path), help="Clean validation images.")
@click.option("--out", type=click.Path(path_type=Path), help="Run folder (default runs/CONFIG).")
@click.option(
    "--resume",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="Continue the run in this folder from its last checkpoint.",
)
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many steps.")
@click.option(
    "--time-budget",
    help="Train for this long (90s, 7m, 2h; same as --set train.time_budget=...): the number "
    "of steps is fixed after a measured warm-up so that the schedule completes in time.",
)
@click.option(
    "--init-from",
    help="Start from these weights: a model file, run folder or shipped name (EDSR x3/x4: x2).",
)
def train(
    config: str | None,
    overrides: tuple[str, ...],
    data: tuple[Path, ...],
    val: Path | None,
    out: Path | None,
    resume: Path | None,
    max_steps: int | None,
    time_budget: str | None,
    init_from: str | None,
) -> None:
    """Train a model from a preset name or a YAML CONFIG (see `restorekit presets`)."""
    from restorekit.configs import load_config, load_run_config
    from restorekit.engine import train as run_training

    values: dict[str, object] = {}  # the flags' values as given (no YAML parsing of paths)
    if data:
        values["data.train"] = [str(p) for p in data]
    if val:
        values["data.val"] = str(val)
    if init_from:
        values["train.init_from"] = init_from
    if time_budget:
        values["train.time_budget"] = time_budget
    if resume is not None:
        if config is not None:
            raise click.UsageError("with --resume, the config is read from the run folder")
        cfg = load_run_config(resume, list(overrides), values)
        run_dir = resume
    else:
        if config is None:
            raise click.UsageError("give a CONFIG (preset name or YAML file), or --resume RUN_DIR")
        cfg = load_config(config, list(overrides), values)
        run_dir = out or Path("runs") / Path(config).stem
    command = shlex.join(["restorekit", *sys.argv[1:]])
    result = run_training(
        cfg, run_dir, resume=resume is not None, max_steps=max_steps, command=command
    )
    if not result.main:
        return  # under torchrun, the main process reports
    click.echo(
        f"done: {result.steps} steps; model {result.model_path}"
        + (
            f"; best validation PSNR {result.best_psnr:.4f} dB"
            if result.best_psnr > float("-inf")
            else ""
        )
    )


@click.command()
@click.argument("name", required=False)
def presets(name: str | None) -> None:
    """List the shipped training presets (the papers' set-ups); with NAME, print that preset's
    YAML, its comments saying where each setting comes from."""
    from restorekit.configs import PRESET_DIR, load_config
    from restorekit.configs import presets as names

    if name is not None:
        if name not in names():
            raise click.UsageError(f"no preset {name!r}; presets: {', '.join(names())}")
        click.echo((PRESET_DIR / f"{name}.yaml").read_text().rstrip())
        return
    rows = [("name", "method", "network", "trains for")]
    for preset in names():
        config = load_config(PRESET_DIR / f"{preset}.yaml")  # not a folder of that name here
        scales = getattr(config.data, "scale", None)
        if scales is not None:
            listed = scales if isinstance(scales, list) else [scales]
            target = "upscaling " + "/".join(f"x{s}" for s in listed)
        else:
            target = f"noise {config.noise}" if config.noise else "your noisy data (no added noise)"
        rows.append((preset, config.method.name, config.model.arch, target))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        click.echo("  ".join([*(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)), row[3]]))
    click.echo("one in full, with where each setting comes from: restorekit presets NAME")
