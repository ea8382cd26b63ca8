"""``restorekit models`` (the shipped models, their figures and speed) and ``restorekit demo``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import click

from restorekit.cli.options import device_option

if TYPE_CHECKING:
    from restorekit.zoo import ZooModel


@click.command()
@click.argument("names", nargs=-1)
@click.option("--details", is_flag=True, help="Every shipped model in full (as with NAMES).")
def models(names: tuple[str, ...], details: bool) -> None:
    """List the shipped models as a table; NAMES (or --details): what each is, how it was
    trained, what it measures, its ONNX file and speed."""
    from restorekit.zoo import shipped_model, shipped_models

    chosen = shipped_models()
    if names:
        unknown = [n for n in names if shipped_model(n) is None]
        if unknown:
            known = ", ".join(m.name for m in chosen)
            raise click.UsageError(f"no shipped model named {', '.join(unknown)}; shipped: {known}")
        chosen = [m for m in chosen if m.name in names]
    if names or details:
        for model in chosen:
            _describe_model(model)
        return
    _print_models_table(chosen)
    click.echo("details: restorekit models NAME (or --details); the how of each: its card.md")


def _print_models_table(zoo_models: list[ZooModel]) -> None:
    """One row per shipped model: what it does, its network, its training, its figures."""
    from restorekit.descriptor import read_descriptor
    from restorekit.nets.files import count_parameters

    rows = [["name", "task", "channels", "network", "trained", "PSNR (dB, input -> output)"]]
    for model in zoo_models:
        d = read_descriptor(model.weights)
        task = f"upscale x{d.scale}" if d.task == "upscale" else f"denoise {d.noise or ''}"
        network = f"{d.arch} ({count_parameters(model.weights) / 1e6:.2f} M)"
        trained = f"{d.method}, {_steps(model.name, d.training)}"
        figures = ", ".join(
            f"{bench} {r['psnr_in']:.2f} -> {r['psnr']:.2f}"
            for bench, r in model.evaluations().items()
            if not bench.endswith("-ensemble")
        )
        channels = f"{d.in_channels} -> {d.out_channels}"
        rows.append([model.name, task.strip(), channels, network, trained, figures])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        click.echo("  ".join([*padded, row[-1]]))


def _base_name(path: str) -> str:
    """The last component of a path written on the trainer's machine (any OS)."""
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1]


def _steps(name: str, training: dict) -> str:
    """The training steps a descriptor records: those of the model's last stage when it was
    initialised from earlier weights (its card counts every stage), and where they came from:
    a shipped model by name, a file or run folder of the trainer's machine by its last path
    component (``from file NAME``; the card says what it was)."""
    from restorekit.zoo import shipped_model

    steps = f"{training.get('step')} steps"
    start = training.get("config", {}).get("train", {}).get("init_from")
    if start == name:
        return f"{steps} (last stage)"
    if start and shipped_model(start) is None:  # a path on the trainer's machine (any OS)
        return f"{steps} from file {_base_name(start)}"
    return f"{steps} from {start}" if start else steps


def _describe_model(model: ZooModel) -> None:
    """The long form of one shipped model for ``restorekit models NAME``."""
    from restorekit.descriptor import read_descriptor
    from restorekit.infer.backends import onnx_status

    d = read_descriptor(model.weights)
    args = ", ".join(f"{k}={v}" for k, v in d.arch_args.items())
    trained = d.training
    click.echo(
        f"{model.name}: {d.task} x{d.scale}, {d.in_channels} -> {d.out_channels} "
        f"channels, {f'noise {d.noise}, ' if d.noise else ''}{d.arch}({args}), size multiple "
        f"{d.size_multiple}, values {d.value_range[0]:g}-{d.value_range[1]:g}"
    )
    click.echo(
        f"  trained by {d.method} on {', '.join(map(_base_name, trained.get('data', [])))}, "
        f"{_steps(model.name, trained)}; card: {model.card}"
    )
    click.echo(f"  ONNX: {onnx_status(model)}")
    for line in _speed_lines(model):
        click.echo(f"  {line}")
    for bench, result in model.evaluations().items():
        click.echo(
            f"  {bench:<24} PSNR {result['psnr_in']:.2f} -> {result['psnr']:.2f} dB  "
            f"SSIM {result['ssim_in']:.4f} -> {result['ssim']:.4f}  "
            f"({result['n_images']} images x {result['repeats']})"
        )


def _speed_lines(model: ZooModel) -> list[str]:
    """A shipped model's measured speed per image size and path, and what ``auto`` takes."""
    from restorekit.infer.paths import choose_path, describe_path, figure_changes, size_pixels

    speed, precision = model.speed, model.precision
    if not speed:
        return []
    changes = figure_changes(precision)
    lines = []
    for size, rates in speed["megapixels_per_s"].items():
        listed = ", ".join(f"{describe_path(p)} {rate:.3g}" for p, rate in rates.items())
        taken, _ = choose_path(speed, precision, size_pixels(size), set(rates))
        lines.append(f"CPU MP/s at {size}: {listed} (auto: {describe_path(taken)})")
    if changes:
        moved = ", ".join(f"{describe_path(p)} {c:+.3f} dB" for p, c in changes.items())
        lines.append(f"figure change vs fp32 on {precision['evaluation']}: {moved}")  # type: ignore[index]
    return lines


@click.command()
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("demo_out"),
    show_default=True,
    help="Folder for the PNGs: one subfolder per model.",
)
@click.option(
    "--model",
    "model_names",
    multiple=True,
    help="A shipped model (or model file) to run; repeatable. Default: every shipped model.",
)
@click.option("--noise", default=None, help="Noise spec for denoisers (default: each model's own).")
@device_option
def demo(out: Path, model_names: tuple[str, ...], noise: str | None, device: str | None) -> None:
    """Run the shipped models on sample photographs and print PSNR/SSIM before and after.

    Denoisers: noisy -> denoised; upscalers: bicubic -> model (Y channel, border cropped).
    """
    from restorekit.demo import run_demo
    from restorekit.infer.model import load_model
    from restorekit.zoo import shipped_models

    names = model_names or [m.name for m in shipped_models()]
    if not names:
        raise click.ClickException("no shipped models; name one with --model")
    for name in names:
        folder = out / Path(name).stem
        what, rows = run_demo(load_model(name, device), folder, noise)
        click.echo(f"model {name}, {what}; writing PNGs to {folder}")
        for sample, (p0, s0), (p1, s1) in rows:
            click.echo(f"  {sample:<10} PSNR {p0:6.2f} -> {p1:6.2f} dB   SSIM {s0:.4f} -> {s1:.4f}")
