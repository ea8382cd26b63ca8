"""``restorekit eval``: the papers' benchmark protocols (:mod:`restorekit.evaluation`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from restorekit.cli.batch import start_writing
from restorekit.cli.options import backend_option_for, device_option, max_pixels_option

if TYPE_CHECKING:
    import numpy as np

    from restorekit.infer.array_model import ArrayModel


@click.command(name="eval")
@click.option(
    "--model",
    "model_name",
    required=True,
    help="Shipped model name, model file, run folder or .onnx file.",
)
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Clean (HR) images.")
@click.option("--noise", help="Noise spec (default: the noise the model was trained for).")
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    help="Noise draws per image (default: Kodak 10, BSD300 3, Set14 20, else 1).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write results here.")
@click.option(
    "--save-dir",
    type=click.Path(path_type=Path),
    help="Save input/output images here (outside --data).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace images already in --save-dir and an existing --json report (without it, eval "
    "stops first when one exists).",
)
@click.option(
    "--scale", type=click.IntRange(min=2), help="Upscaling models: one of the model's scales."
)
@click.option(
    "--ensemble",
    "--tta",
    "ensemble",
    is_flag=True,
    help="x8 self-ensemble: the mean over the 8 flips/rotations (upscalers: EDSR+; denoisers: "
    "what `denoise --tta` does), on either backend.",
)
@click.option("--rgb", is_flag=True, help="Upscaling models: PSNR/SSIM on RGB, not on Y.")
@max_pixels_option
@backend_option_for(" (also with --ensemble: its 8 passes run on either backend)")
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16", "fp16"]),
    default="fp32",
    show_default=True,
    help="The network's precision: bf16 (PyTorch) measures what it changes.",
)
@device_option
@click.option(
    "--keep-going",
    is_flag=True,
    help="Leave out an image that cannot be read or has bad values, evaluate the others; the "
    "last line lists those left out (the JSON report too), exit code 1.",
)
def evaluate(
    model_name: str,
    data: Path,
    noise: str | None,
    repeats: int | None,
    seed: int,
    json_path: Path | None,
    save_dir: Path | None,
    scale: int | None,
    ensemble: bool,
    rgb: bool,
    backend: str,
    precision: str,
    device: str | None,
    overwrite: bool,
    keep_going: bool,
) -> None:
    """Measure PSNR/SSIM before and after, by the model's task: denoising as the
    Neighbor2Neighbor paper did; super-resolution as the EDSR paper did (Y channel, border =
    scale, bicubic as the "before")."""
    import dataclasses

    from restorekit.degrade import parse_noise
    from restorekit.evaluation import default_repeats, evaluate_denoising, format_report
    from restorekit.evaluation.denoising import saved_names
    from restorekit.infer.backends import open_model
    from restorekit.infer.ensemble import self_ensemble
    from restorekit.io import list_images, to_uint8
    from restorekit.io.outputs import check_save_dir, plan_report

    paths = list_images(data)
    if save_dir is not None:
        check_save_dir(save_dir, data)
    if json_path is not None:
        plan_report(json_path, paths, overwrite=overwrite)

    # No option is left to PyTorch: the evaluation's self-ensemble averages the model's outputs
    # on the 8 flipped/rotated LR images in NumPy, whichever backend runs the model.
    chosen = open_model(model_name, backend, device, precision=precision)
    model = chosen.model
    if model.descriptor.task == "upscale":
        if noise or repeats:
            raise click.UsageError("--noise and --repeats are for denoising models")
        if ensemble:
            chosen = dataclasses.replace(
                chosen, reason=f"{chosen.reason}; --ensemble runs on either backend"
            )
        click.echo(chosen.describe())
        left_out = _evaluate_upscaling(
            model, chosen.name, data, json_path, save_dir, scale, ensemble, rgb, overwrite,
            keep_going,
        )  # fmt: skip
        _report_left_out(left_out)
        return
    if scale or rgb:
        raise click.UsageError("--scale and --rgb are for upscaling models")
    spec = noise or model.descriptor.noise
    if spec is None:
        raise click.UsageError("the model names no noise it was trained for: pass --noise SPEC")
    _plan_saved(paths, save_dir, saved_names, overwrite)
    if ensemble:
        chosen = dataclasses.replace(
            chosen, reason=f"{chosen.reason}; --ensemble runs on either backend"
        )
    click.echo(chosen.describe())
    # a grey model takes colour images channel by channel, as `restorekit denoise` does
    grey_model = model.descriptor.in_channels == 1
    channels = None if grey_model else model.descriptor.in_channels
    arrays, kept, left_out = _clean_images(paths, channels, keep_going)
    names = [p.name for p in kept]
    images = [to_uint8(a) for a in arrays]
    repeats = repeats or default_repeats(data)

    def run(batch: np.ndarray) -> np.ndarray:  # N x C x H x W -> N x C x H x W float32
        if ensemble:  # in NumPy around the model, as for upscalers: any backend
            return self_ensemble(model.predict, batch)
        return model.predict(batch)

    def denoise(noisy: np.ndarray) -> np.ndarray:  # C x H x W float -> C x H x W float32
        return run(noisy[:, None])[:, 0] if grey_model else run(noisy[None])[0]

    report = evaluate_denoising(
        denoise, images, names, parse_noise(spec), repeats, seed, save_dir, progress=True
    )
    report.backend = chosen.name
    report.ensemble = ensemble
    report.left_out = [p.name for p, _ in left_out]
    click.echo(
        f"{data} | noise {report.noise} | {report.n_images} images x {repeats} repeats"
        + (" | self-ensemble x8" if ensemble else "")
    )
    click.echo(format_report(report))
    if json_path:
        report.to_json(json_path)
    _report_left_out(left_out)


_DISPLAY_NAMES = {"edsr": "EDSR", "rednet": "RED-Net"}


def _plan_saved(
    paths: list[Path],
    save_dir: Path | None,
    names: Callable[[str], tuple[str, ...]],
    overwrite: bool,
) -> None:
    """Check the images ``eval --save-dir`` writes (``names``: an input's file names) before
    any work; remove the temporary files an interrupted run left there."""
    from restorekit.io.outputs import plan_files

    if save_dir is not None:
        pairs = [(p, save_dir / name) for p in paths for name in names(p.name)]
        plan = plan_files(pairs, save_dir, overwrite=overwrite, option="--save-dir", can_skip=False)
        start_writing(plan)


def _clean_images(
    paths: list[Path], channels: int | None, keep_going: bool
) -> tuple[list[np.ndarray], list[Path], list[tuple[Path, str]]]:
    """:func:`restorekit.evaluation.images.read_clean_images`, its warnings and the images it
    left out printed."""
    from restorekit.evaluation.images import read_clean_images

    found = read_clean_images(paths, channels, keep_going)
    for _, reason in found.left_out:
        click.echo(f"left out: {reason}", err=True)
    for message in found.warnings:
        click.echo(f"warning: {message}", err=True)
    return found.arrays, found.paths, found.left_out


def _report_left_out(left_out: list[tuple[Path, str]]) -> None:
    """With --keep-going: the last line names the images left out; exit code 1."""
    if left_out:
        names = ", ".join(path.name for path, _ in left_out)
        click.echo(f"{len(left_out)} image(s) left out of the evaluation: {names}", err=True)
        raise SystemExit(1)


def _evaluate_upscaling(
    model: ArrayModel,
    backend: str,
    data: Path,
    json_path: Path | None,
    save_dir: Path | None,
    scale: int | None,
    ensemble: bool,
    rgb: bool,
    overwrite: bool,
    keep_going: bool,
) -> list[tuple[Path, str]]:
    """Evaluate an upscaling model; returns the images left out (``keep_going``)."""
    from restorekit.evaluation import evaluate_upscaling, format_upscaling_report
    from restorekit.evaluation.upscaling import saved_names
    from restorekit.io import list_images

    facts = model.descriptor  # either backend's model: its one record
    trained = facts.trained_scales  # several for a multi-scale RED-Net
    if scale is not None and scale not in trained:
        listed = "/".join(f"x{s}" for s in trained)
        raise click.UsageError(
            f"--scale {scale} does not match the model, which upscales {listed}; "
            f"evaluate a x{scale} model, or drop --scale"
        )
    scale = scale or facts.scale
    paths = list_images(data)
    _plan_saved(paths, save_dir, lambda name: saved_names(name, scale), overwrite)
    images, paths, left_out = _clean_images(paths, None, keep_going)

    def upscale(lr):  # C x h x w float32 -> C x sh x sw
        return model.upscale(lr.transpose(1, 2, 0), scale=scale).transpose(2, 0, 1)

    report = evaluate_upscaling(
        upscale,
        images,
        [p.name for p in paths],
        scale,
        y_channel=not rgb,
        ensemble=ensemble,
        save_dir=save_dir,
        progress=True,
    )
    report.backend = backend
    report.left_out = [p.name for p, _ in left_out]
    channel = "RGB" if rgb else "Y channel"
    click.echo(
        f"{data} | x{report.scale} | {report.n_images} images | {channel}, border "
        f"{report.crop_border}" + (" | self-ensemble x8" if ensemble else "")
    )
    label = _DISPLAY_NAMES.get(facts.arch, facts.arch)
    click.echo(format_upscaling_report(report, label))
    if json_path:
        report.to_json(json_path)
    return left_out
