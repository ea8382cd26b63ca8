"""``restorekit denoise`` and ``restorekit upscale``: files, folders and stacks in, results out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from restorekit.cli.batch import (
    finish_batch,
    largest_input,
    plan_outputs_in,
    run_plan,
    skipped_note,
    start_writing,
    tile_progress_bar,
)
from restorekit.cli.options import (
    backend_option,
    device_option,
    files_options,
    max_pixels_option,
    precision_option,
    tiling_options,
)
from restorekit.infer.process_memory import DEFAULT_PROCESS_MEMORY
from restorekit.zoo import DEFAULT_DENOISER

if TYPE_CHECKING:
    from restorekit.infer.array_model import ArrayModel
    from restorekit.io.outputs import OutputPlan, PlannedOutput


@click.command()
@files_options
@click.option(
    "--model",
    "model_name",
    default=DEFAULT_DENOISER,
    show_default=True,
    help="Shipped model name, model file, run folder or .onnx file (`restorekit export`).",
)
@tiling_options
@max_pixels_option
@backend_option
@click.option(
    "--axes",
    help="TIFF stacks / volumes laid out as AXES (e.g. SZYX, ZYX, SCYX, YXC): denoised as "
    "stacks, written in the input's format and dtype (--bit-depth 32: float32). zarr stores and "
    "OME-TIFF files are always stacks; OME-Zarr and OME-TIFF name their own axes (leave --axes "
    "out).",
)
@click.option(
    "--tta",
    "--ensemble",
    "tta",
    is_flag=True,
    help="Mean over the 8 flips/rotations in the YX plane (8 passes; --ensemble is the same).",
)
@precision_option
@device_option
def denoise(
    inputs: tuple[Path, ...],
    out: Path,
    out_format: str | None,
    bit_depth: str | None,
    model_name: str,
    tile: int | None,
    max_memory: int | None,
    overlap: int | None,
    backend: str,
    axes: str | None,
    tta: bool,
    precision: str,
    device: str | None,
    overwrite: bool,
    skip_existing: bool,
    keep_going: bool,
    input_scale: float | None,
) -> None:
    """Denoise image files and folders; outputs keep each input's format and bit depth unless
    --format / --bit-depth say otherwise. With --axes, or for zarr stores: stacks and volumes
    (TIFF, OME-TIFF, zarr, OME-Zarr), zarr read and written chunk by chunk.

    Nothing is replaced without --overwrite: outputs that exist, inputs (-o naming their
    folder) and two inputs of the same output name stop the command before any work."""
    from tqdm import tqdm

    from restorekit.data.stacks import list_stacks, self_describing
    from restorekit.infer.backends import open_model
    from restorekit.infer.files import FileOptions, restore_file
    from restorekit.io import list_images

    stacks = axes is not None or self_describing(list(inputs))
    if stacks and bit_depth not in (None, "32"):
        raise click.UsageError(
            "stacks are written in the input's dtype, or float32 (--bit-depth 32)"
        )
    if stacks:  # stacks keep their name (TIFF, zarr)
        plan = plan_outputs_in(list_stacks(list(inputs)), out, None, overwrite, skip_existing)
    else:
        plan = plan_outputs_in(list_images(list(inputs)), out, out_format, overwrite, skip_existing)
    if not plan.outputs:
        click.echo(f"nothing to do: every output exists in {out} ({len(plan.skipped)} skipped)")
        return
    torch_options = [name for name, given in (("--tta", tta), ("a stack", stacks)) if given]
    limit = DEFAULT_PROCESS_MEMORY if max_memory is None else max_memory
    pixels = largest_input(plan)
    chosen = open_model(
        model_name, backend, device, torch_options, tile, None, overlap, precision, pixels
    )
    if chosen.model.descriptor.task != "denoise":
        raise click.UsageError(f"{model_name} is an upscaling model; use `restorekit upscale`")
    click.echo(chosen.describe())
    start_writing(plan)
    if stacks:
        _denoise_stacks(plan, bit_depth, chosen.model, axes, tta, keep_going, limit, input_scale)
        return
    model = chosen.model

    depth = int(bit_depth) if bit_depth else None
    options = FileOptions(tta, None, input_scale, depth, limit)

    def step(item: PlannedOutput) -> None:
        for message in restore_file(model, item.source, item.target, options, "denoise"):
            click.echo(f"warning: {message}", err=True)

    items = tqdm(plan.outputs, desc="denoise", unit="img")
    model.tile_progress = tile_progress_bar()
    finish_batch(
        run_plan(plan, step, keep_going, items), f"image(s) denoised into {out}{skipped_note(plan)}"
    )


def _denoise_stacks(
    plan: OutputPlan,
    bit_depth: str | None,
    model: ArrayModel,
    axes: str | None,
    tta: bool,
    keep_going: bool,
    limit: float,
    input_scale: float | None,
) -> None:
    from restorekit.infer.files import restore_stack

    def step(item: PlannedOutput) -> None:
        float32 = bit_depth == "32"
        restore_stack(
            model, item.source, item.target, axes, tta, float32, item.in_place, limit, input_scale
        )

    result = run_plan(plan, step, keep_going)
    finish_batch(result, f"stack(s) denoised into {plan.folder}{skipped_note(plan)}")


@click.command()
@files_options
@click.option(
    "--model",
    "model_name",
    help="Upscaling model: shipped name, model file, run folder or .onnx file (default: the "
    "shipped upscaler for --scale, edsr-baseline-x2 without it).",
)
@click.option(
    "--scale",
    type=click.IntRange(min=2),
    help="Upscaling factor: one of a multi-scale model's (default: the model's first).",
)
@click.option(
    "--ensemble",
    "--tta",
    "ensemble",
    is_flag=True,
    help="x8 geometric self-ensemble (8 passes, EDSR+; --tta is the same).",
)
@tiling_options
@max_pixels_option
@backend_option
@precision_option
@device_option
def upscale(
    inputs: tuple[Path, ...],
    out: Path,
    out_format: str | None,
    bit_depth: str | None,
    model_name: str | None,
    scale: int | None,
    ensemble: bool,
    tile: int | None,
    max_memory: int | None,
    overlap: int | None,
    backend: str,
    precision: str,
    device: str | None,
    overwrite: bool,
    skip_existing: bool,
    keep_going: bool,
    input_scale: float | None,
) -> None:
    """Upscale image files and folders (super-resolution); format and bit depth kept.

    Nothing is replaced without --overwrite (as for `restorekit denoise`)."""
    from tqdm import tqdm

    from restorekit.infer.backends import open_model
    from restorekit.infer.files import FileOptions, restore_file
    from restorekit.io import list_images
    from restorekit.io.zarr_stacks import is_zarr
    from restorekit.zoo import shipped_upscalers

    upscalers = shipped_upscalers()
    if model_name is None:
        if (scale or 2) not in upscalers:
            raise click.UsageError(
                f"no shipped model upscales x{scale}: give --model (a model file, run folder or "
                f".onnx), or one of the shipped scales: {_listed(upscalers)}"
            )
        model_name = upscalers[scale or 2]
    stores = [str(p) for p in inputs if is_zarr(p)]
    if stores:
        raise click.UsageError(
            f"{', '.join(stores)}: zarr stores are stacks, which restorekit denoises "
            "(`restorekit denoise`); upscaling takes images"
        )
    plan = plan_outputs_in(list_images(list(inputs)), out, out_format, overwrite, skip_existing)
    if not plan.outputs:
        click.echo(f"nothing to do: every output exists in {out} ({len(plan.skipped)} skipped)")
        return
    torch_options = ["--ensemble"] if ensemble else []
    pixels = largest_input(plan)
    chosen = open_model(
        model_name, backend, device, torch_options, tile, None, overlap, precision, pixels
    )
    limit = DEFAULT_PROCESS_MEMORY if max_memory is None else max_memory
    model = chosen.model
    if model.descriptor.task != "upscale":
        raise click.UsageError(f"{model_name} is a denoising model; use `restorekit denoise`")
    click.echo(chosen.describe())
    trained = model.descriptor.trained_scales
    if scale is not None and scale not in trained:
        listed = "/".join(f"x{s}" for s in trained)
        shipped = f"; for x{scale}: --model {upscalers[scale]}" if scale in upscalers else ""
        raise click.UsageError(f"--scale {scale}: {model_name} upscales {listed}{shipped}")
    scale = scale or model.descriptor.scale
    start_writing(plan)

    depth = int(bit_depth) if bit_depth else None
    options = FileOptions(ensemble, scale, input_scale, depth, limit)

    def step(item: PlannedOutput) -> None:
        for message in restore_file(model, item.source, item.target, options, "upscale"):
            click.echo(f"warning: {message}", err=True)

    items = tqdm(plan.outputs, desc=f"upscale x{scale}", unit="img")
    model.tile_progress = tile_progress_bar()
    what = f"image(s) upscaled x{scale} into {out}{skipped_note(plan)}"
    finish_batch(run_plan(plan, step, keep_going, items), what)


def _listed(upscalers: dict[int, str]) -> str:
    """``x2 (edsr-baseline-x2), x3 (...)``: the shipped upscalers by scale."""
    return ", ".join(f"x{scale} ({name})" for scale, name in upscalers.items()) or "none"
