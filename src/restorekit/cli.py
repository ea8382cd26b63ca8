"""The ``restorekit`` command line: parse, call the library, print. No logic lives here."""

from __future__ import annotations

import errno
import shlex
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from restorekit.errors import RestorekitError
from restorekit.infer.process_memory import DEFAULT_PROCESS_MEMORY

if TYPE_CHECKING:
    import numpy as np

    from restorekit.infer.array_model import ArrayModel
    from restorekit.io.batch import BatchResult
    from restorekit.io.outputs import OutputPlan, PlannedOutput
    from restorekit.zoo import ZooModel

device_option = click.option(
    "--device", help="cpu, cuda, cuda:1, ... (default: the GPU when there is one)."
)


def _backend_option(condition: str):  # noqa: ANN202 - a click decorator
    """``--backend auto|torch|onnx`` (:func:`restorekit.infer.backends.open_model`);
    ``condition``: when ``auto`` takes ONNX Runtime, beyond the model and the device."""
    return click.option(
        "--backend",
        type=click.Choice(["auto", "torch", "onnx"]),
        default="auto",
        show_default=True,
        help="auto: ONNX Runtime for an .onnx file or a shipped model that was measured faster "
        "on it than on PyTorch (exported on first use into a per-user cache), when onnxruntime "
        f"is installed, on the CPU{condition}; "
        "else torch. onnx: ONNX Runtime (an .onnx file or a shipped model). torch: PyTorch. "
        'The choice and why are printed first ("backend: ...").',
    )


backend_option = _backend_option(" and without --tta/--ensemble/--axes")
precision_option = click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default="auto",
    show_default=True,
    help="auto: the fastest way measured for a shipped model (backend and precision, at the "
    "measured image size nearest the largest input's) among those that moved its evaluation "
    "figures at most 0.02 dB from fp32; bf16 only where the CPU runs it natively (AVX512-BF16 "
    "or AMX) or on a GPU. fp32, bf16 (PyTorch), fp16 (GPU): that precision.",
)


def _set_max_pixels(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    from restorekit.io import set_max_pixels

    if value is not None:
        set_max_pixels(value)
    return value


max_pixels_option = click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    envvar="RESTOREKIT_MAX_PIXELS",
    callback=_set_max_pixels,
    expose_value=False,
    metavar="N",
    help="Read PNG/JPEG/BMP/WebP images of up to N pixels (env RESTOREKIT_MAX_PIXELS; default "
    "about 179 million, Pillow's guard against decompression bombs). Raise it for trusted "
    "large images: they are processed in tiles.",
)


_PACKAGE = str(Path(__file__).resolve().parent)


def _ours(category: type[Warning], filename: str) -> bool:
    """Whether a warning is restorekit's own (its class, or raised in its code)."""
    return category.__module__.startswith("restorekit") or str(filename).startswith(_PACKAGE)


_OS_HINTS = {
    errno.ENOSPC: "free some space, or write elsewhere (-o / --out)",
    errno.EDQUOT: "free some space, or write elsewhere (-o / --out)",
    errno.EACCES: "choose a folder you may write to (-o / --out), or fix its permissions",
    errno.EPERM: "choose a folder you may write to (-o / --out), or fix its permissions",
    errno.EROFS: "the file system is read-only: write elsewhere (-o / --out)",
}


def _file_system_message(error: OSError) -> str:
    """A file-system error in words: what, where, and what to do."""
    where = f" ({error.filename})" if error.filename else ""
    hint = _OS_HINTS.get(error.errno or 0, "check the path and the disk")
    return f"{error.strerror or error}{where}; {hint}. Files already finished are complete."


class _Group(click.Group):
    """Print :class:`RestorekitError` as one clear message (exit code 1), never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        with warnings.catch_warnings():
            shown = warnings.showwarning

            def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202
                if _ours(category, filename):  # restorekit's own: one clear line, no source
                    click.echo(f"warning: {message}", err=True)
                else:
                    shown(message, category, filename, lineno, file, line)

            warnings.showwarning = show
            try:
                return super().invoke(ctx)
            except RestorekitError as error:
                raise click.ClickException(str(error)) from None
            except OSError as error:  # disk full, read-only or unwritable folders, ...
                raise click.ClickException(_file_system_message(error)) from None


@click.group(cls=_Group)
@click.version_option(package_name="restorekit")
def main() -> None:
    """Image restoration: self-supervised denoising and super-resolution."""


@main.command()
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


@main.command()
def presets() -> None:
    """List the shipped training presets."""
    from restorekit.configs import presets as names

    for name in names():
        click.echo(name)


@main.command(name="eval")
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
    help="Replace images already in --save-dir (without it, eval stops first when one exists).",
)
@click.option(
    "--scale", type=click.IntRange(min=2), help="Upscaling models: one of the model's scales."
)
@click.option(
    "--ensemble",
    is_flag=True,
    help="Upscaling models: x8 self-ensemble (EDSR+), on either backend.",
)
@click.option("--rgb", is_flag=True, help="Upscaling models: PSNR/SSIM on RGB, not on Y.")
@max_pixels_option
@_backend_option(" (also with --ensemble: its 8 passes run on either backend)")
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
    from restorekit.io import list_images, to_uint8
    from restorekit.io.outputs import check_save_dir, refuse_inputs

    paths = list_images(data)
    if save_dir is not None:
        check_save_dir(save_dir, data)
    if json_path is not None:
        refuse_inputs(json_path, paths, "--json")

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
    if scale or ensemble or rgb:
        raise click.UsageError("--scale, --ensemble and --rgb are for upscaling models")
    spec = noise or model.descriptor.noise
    if spec is None:
        raise click.UsageError("the model names no noise it was trained for: pass --noise SPEC")
    _plan_saved(paths, save_dir, saved_names, overwrite)
    click.echo(chosen.describe())
    arrays, kept, left_out = _clean_images(paths, model.descriptor.in_channels, keep_going)
    names = [p.name for p in kept]
    images = [to_uint8(a) for a in arrays]
    repeats = repeats or default_repeats(data)

    def denoise(noisy: np.ndarray) -> np.ndarray:  # C x H x W float -> C x H x W float32
        return model.predict(noisy[None])[0]

    report = evaluate_denoising(
        denoise, images, names, parse_noise(spec), repeats, seed, save_dir, progress=True
    )
    report.backend = chosen.name
    report.left_out = [p.name for p, _ in left_out]
    click.echo(f"{data} | noise {report.noise} | {report.n_images} images x {repeats} repeats")
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
        _start_writing(plan)


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


def _memory(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    from restorekit.units import parse_bytes

    try:
        return None if value is None else parse_bytes(value)
    except RestorekitError as error:
        raise click.BadParameter(str(error)) from None


def _stack(*decorators):  # noqa: ANN202 - click decorators
    """Several click options applied as one decorator."""

    def apply(command):  # noqa: ANN001, ANN202
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


files_options = _stack(
    click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path)),
    click.option(
        "-o",
        "--out",
        type=click.Path(path_type=Path),
        required=True,
        help="Output folder (created).",
    ),
    click.option(
        "--format",
        "out_format",
        type=click.Choice(["png", "tif", "jpg", "bmp"]),
        help="Output file format (default: each input's).",
    ),
    click.option(
        "--bit-depth",
        type=click.Choice(["8", "16", "32"]),
        help="Output bits per sample, 32 = float TIFF (default: each input's).",
    ),
    click.option(
        "--overwrite",
        is_flag=True,
        help="Replace output files that exist; with -o naming the inputs' folder, replace the "
        "inputs by their results (each read whole first, replaced only once its result is "
        "complete). Without it, existing files are never replaced: the command stops first.",
    ),
    click.option(
        "--skip-existing",
        is_flag=True,
        help="Skip the inputs whose output file exists (and say how many).",
    ),
    click.option(
        "--keep-going",
        is_flag=True,
        help="Report a bad input file (unreadable, wrong values) and go on with the others; "
        'the last line lists the failed ones ("N of M done, K failed: ..."), exit code 1. '
        "Without it the first bad file stops the command.",
    ),
    click.option(
        "--input-scale",
        type=click.FloatRange(min=0, min_open=True),
        metavar="MAX",
        help="The inputs' full-scale value when it is not their type's: e.g. 255 for float "
        "TIFFs holding 0-255, 4095 for 12-bit data in uint16 files. Inputs are divided by it "
        "for the model and results multiplied back (same type).",
    ),
)
tiling_options = _stack(
    click.option(
        "--tile",
        type=click.IntRange(min=1),
        help="Tile side in input pixels for large images (default: from --max-memory).",
    ),
    click.option(
        "--max-memory",
        callback=_memory,
        metavar="SIZE",
        help="Bound on the whole process's memory, e.g. 4GB (default 2.5GB): the tiles get what "
        "is left after the runtime, the model, the decoded input and the output writer.",
    ),
    click.option(
        "--overlap",
        type=click.IntRange(min=0),
        help="Overlap of neighbouring tiles in input pixels (default: from the network's "
        "measured receptive field, so that tiles match whole-image output).",
    ),
)


@main.command()
@files_options
@click.option(
    "--model",
    "model_name",
    default="ne2ne-gauss25",
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
@click.option("--tta", is_flag=True, help="Mean over the 8 flips/rotations in the YX plane.")
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
    if stacks and input_scale is not None:
        raise click.UsageError("--input-scale is for images; stacks are scaled by their type")
    if stacks and bit_depth not in (None, "32"):
        raise click.UsageError(
            "stacks are written in the input's dtype, or float32 (--bit-depth 32)"
        )
    if stacks:  # stacks keep their name (TIFF, zarr)
        plan = _plan(list_stacks(list(inputs)), out, None, overwrite, skip_existing)
    else:
        plan = _plan(list_images(list(inputs)), out, out_format, overwrite, skip_existing)
    if not plan.outputs:
        click.echo(f"nothing to do: every output exists in {out} ({len(plan.skipped)} skipped)")
        return
    torch_options = [name for name, given in (("--tta", tta), ("a stack", stacks)) if given]
    limit = DEFAULT_PROCESS_MEMORY if max_memory is None else max_memory
    pixels = _largest(plan)
    chosen = open_model(
        model_name, backend, device, torch_options, tile, None, overlap, precision, pixels
    )
    if chosen.model.descriptor.task != "denoise":
        raise click.UsageError(f"{model_name} is an upscaling model; use `restorekit upscale`")
    click.echo(chosen.describe())
    _start_writing(plan)
    if stacks:
        _denoise_stacks(plan, bit_depth, chosen.model, axes, tta, keep_going, limit)
        return
    model = chosen.model

    depth = int(bit_depth) if bit_depth else None
    options = FileOptions(tta, None, input_scale, depth, limit)

    def step(item: PlannedOutput) -> None:
        for message in restore_file(model, item.source, item.target, options, "denoise"):
            click.echo(f"warning: {message}", err=True)

    items = tqdm(plan.outputs, desc="denoise", unit="img")
    model.tile_progress = _tile_bar()
    _finish(_run(plan, step, keep_going, items), f"image(s) denoised into {out}{_skipped(plan)}")


def _largest(plan: OutputPlan) -> int | None:
    """The pixel count of the largest input (from the files' headers), for ``auto``."""
    from restorekit.io.images import image_pixels

    sizes = [image_pixels(item.source) for item in plan.outputs]
    return max((n for n in sizes if n is not None), default=None)


def _tile_bar() -> Callable[[int, int], None]:
    """A second progress bar, shown while an image is processed in several tiles."""
    from tqdm import tqdm

    bar: list[tqdm] = []

    def update(done: int, total: int) -> None:
        if total <= 1:
            return
        if not bar:
            bar.append(tqdm(total=total, desc="  tiles", unit="tile", position=1, leave=False))
        bar[0].update(done - bar[0].n)
        if done >= total:
            bar.pop().close()

    return update


def _plan(
    inputs: list[Path],
    out: Path,
    out_format: str | None,
    overwrite: bool,
    skip_existing: bool,
) -> OutputPlan:
    """Every input's output file in ``out``, checked before any work (see
    :mod:`restorekit.io.outputs`)."""
    from restorekit.io.outputs import plan_outputs

    return plan_outputs(
        inputs, out, extension=out_format, overwrite=overwrite, skip_existing=skip_existing
    )


def _start_writing(plan: OutputPlan) -> None:
    """Say what the plan skips or replaces; remove the temporary files an interrupted run left
    in the output folder."""
    from restorekit.io.files import remove_orphan_temporaries

    for line in plan.notes():
        click.echo(line)
    removed = remove_orphan_temporaries(plan.folder)
    if removed:
        click.echo(
            f"removed {len(removed)} temporary file(s) left in {plan.folder} by an interrupted run"
        )


def _run(
    plan: OutputPlan,
    step: Callable[[PlannedOutput], None],
    keep_going: bool,
    items: Iterable[PlannedOutput] | None = None,
) -> BatchResult:
    """``step`` on every planned output (:func:`restorekit.io.batch.run_batch`); a failure is
    printed as it happens."""
    from restorekit.io.batch import run_batch

    def report(path: Path, reason: str) -> None:
        click.echo(f"failed: {path}: {reason}", err=True)

    return run_batch(
        plan.outputs if items is None else items,
        len(plan.outputs),
        lambda item: item.source,
        step,
        keep_going,
        report,
    )


def _finish(result: BatchResult, what: str) -> None:
    """The batch's last line; the error that stopped it, or exit code 1 when files failed."""
    if result.ok:
        click.echo(f"{result.done} {what}")
        return
    if result.error is not None:
        if result.total > 1:
            click.echo(result.summary(), err=True)
        raise result.error
    click.echo(result.summary(), err=True)
    raise click.exceptions.Exit(1)


def _skipped(plan: OutputPlan) -> str:
    return f"; {len(plan.skipped)} skipped (output exists)" if plan.skipped else ""


def _denoise_stacks(
    plan: OutputPlan,
    bit_depth: str | None,
    model: ArrayModel,
    axes: str | None,
    tta: bool,
    keep_going: bool,
    limit: float,
) -> None:
    from restorekit.infer.files import restore_stack

    def step(item: PlannedOutput) -> None:
        float32 = bit_depth == "32"
        restore_stack(model, item.source, item.target, axes, tta, float32, item.in_place, limit)

    result = _run(plan, step, keep_going)
    _finish(result, f"stack(s) denoised into {plan.folder}{_skipped(plan)}")


@main.command()
@files_options
@click.option(
    "--model",
    "model_name",
    required=True,
    help="Upscaling model: shipped name, model file, run folder or .onnx file.",
)
@click.option(
    "--scale",
    type=click.IntRange(min=2),
    help="Upscaling factor: one of a multi-scale model's (default: the model's first).",
)
@click.option("--ensemble", is_flag=True, help="x8 geometric self-ensemble (8 passes, EDSR+).")
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
    model_name: str,
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

    stores = [str(p) for p in inputs if is_zarr(p)]
    if stores:
        raise click.UsageError(
            f"{', '.join(stores)}: zarr stores are stacks, which restorekit denoises "
            "(`restorekit denoise`); upscaling takes images"
        )
    plan = _plan(list_images(list(inputs)), out, out_format, overwrite, skip_existing)
    if not plan.outputs:
        click.echo(f"nothing to do: every output exists in {out} ({len(plan.skipped)} skipped)")
        return
    torch_options = ["--ensemble"] if ensemble else []
    pixels = _largest(plan)
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
        raise click.UsageError(f"--scale {scale}: {model_name} upscales {listed}")
    scale = scale or model.descriptor.scale
    _start_writing(plan)

    depth = int(bit_depth) if bit_depth else None
    options = FileOptions(ensemble, scale, input_scale, depth, limit)

    def step(item: PlannedOutput) -> None:
        for message in restore_file(model, item.source, item.target, options, "upscale"):
            click.echo(f"warning: {message}", err=True)

    items = tqdm(plan.outputs, desc=f"upscale x{scale}", unit="img")
    model.tile_progress = _tile_bar()
    what = f"image(s) upscaled x{scale} into {out}{_skipped(plan)}"
    _finish(_run(plan, step, keep_going, items), what)


@main.command()
@click.option(
    "--model",
    "model_name",
    required=True,
    help="Shipped model name, model file or run folder.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="The file to write: .onnx, or .zip for --format bioimageio.",
)
@click.option(
    "--format",
    "out_format",
    type=click.Choice(["onnx", "bioimageio"]),
    default="onnx",
    show_default=True,
    help="onnx: the bare network (run it with --model FILE.onnx). bioimageio: a BioImage Model "
    "Zoo package (deepImageJ, ilastik, bioimageio.core): weights as state dict, TorchScript and "
    "ONNX, pre/post-processing, test tensors, cover, card.",
)
@click.option("--opset", type=click.IntRange(min=13), default=17, show_default=True)
@click.option(
    "--pixel-scale",
    type=float,
    default=255.0,
    show_default=True,
    help="bioimageio: the full-scale raw value of the data it will be given (255 for 8-bit, "
    "65535 for 16-bit, 1 for float data in [0, 1]).",
)
@click.option(
    "--sample",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="bioimageio: an image or stack (TIFF, .npy; channels first for stacks) whose crop "
    "becomes the test input (default: a pattern with the model's noise).",
)
@click.option(
    "--author",
    "authors",
    multiple=True,
    help="bioimageio: an author's name (repeat for several; default: restorekit developers).",
)
@click.option("--overwrite", is_flag=True, help="Replace the file if it exists (same kind).")
def export(
    model_name: str,
    out: Path,
    out_format: str,
    opset: int,
    pixel_scale: float,
    sample: Path | None,
    authors: tuple[str, ...],
    overwrite: bool,
) -> None:
    """Export a model to ONNX (dynamic batch and size, 2D or 3D), checked with ONNX Runtime, or
    as a BioImage Model Zoo package checked by bioimageio.core's own model test. Never writes
    over the model, a folder or a file of another kind."""
    from restorekit.io.outputs import plan_export
    from restorekit.zoo import resolve_model

    source = resolve_model(model_name)
    if out_format == "bioimageio":
        from restorekit.infer.bioimageio_export import export_bioimageio

        plan_export(out, source, overwrite=overwrite, extension=".zip")
        array = _sample_array(sample) if sample is not None else None
        package = export_bioimageio(
            model_name, out, pixel_scale, array, authors or ("restorekit developers",)
        )
        shape = "x".join(map(str, package.test_shape))
        click.echo(
            f"wrote {package.path} (BioImage Model Zoo 0.5; weights: "
            f"{', '.join(package.weights)}; test input {shape}). Check it with: "
            f"bioimageio test {package.path}"
        )
        return
    from restorekit.infer.onnx_export import export_onnx

    plan_export(out, source, overwrite=overwrite)
    result = export_onnx(model_name, out, opset=opset, overwrite=overwrite)
    shape = "x".join(map(str, result.check_shape))
    click.echo(
        f"wrote {result.path} (opset {result.opset}); ONNX Runtime matches PyTorch on a "
        f"{shape} input to {result.max_abs_diff:.2g} (max abs difference)"
    )


def _sample_array(path: Path) -> np.ndarray:
    """A sample for a package's test input: .npy as stored, a stack or image channels first."""
    import numpy as np

    from restorekit.io import read_image

    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)
    image = read_image(path).array
    return np.moveaxis(image, -1, 0) if image.ndim == 3 else image[None]


@main.command(name="import")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "--arch",
    type=click.Choice(["ne2ne-unet", "edsr-baseline", "edsr"]),
    required=True,
    help="Whose checkpoint: Neighbor2Neighbor's U-Net (model_*.pth), EDSR-PyTorch's "
    "edsr_baseline_x* (res_scale 1) or edsr_x* (res_scale 0.1).",
)
@click.option(
    "--scale", type=click.IntRange(min=1), help="Expected upscaling factor (checked; EDSR)."
)
@click.option(
    "--rgb-range",
    type=float,
    help="EDSR-PyTorch's pixel range (default: from the checkpoint's mean shift, else 255).",
)
@click.option("--noise", help="Denoisers: the noise trained for (default: from the file name).")
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="The restorekit model file to write (.safetensors).",
)
def import_(
    checkpoint: Path,
    arch: str,
    scale: int | None,
    rgb_range: float | None,
    noise: str | None,
    out: Path,
) -> None:
    """Convert an authors' published CHECKPOINT into a restorekit model file (read with
    weights_only=True; see restorekit.nets.official); use it as `--model OUT`."""
    from restorekit.io.outputs import refuse_inputs
    from restorekit.nets.official import import_checkpoint

    refuse_inputs(out, [checkpoint], "-o")
    result = import_checkpoint(checkpoint, arch, out, scale, rgb_range, noise)
    d = result.descriptor
    what = f"upscales x{d.scale}" if d.task == "upscale" else f"denoises ({d.noise or 'noise ?'})"
    click.echo(
        f"wrote {result.path}: {d.arch} {d.arch_args}, {result.parameters:,} parameters; {what}"
    )


@main.command()
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
    from restorekit.nets.files import count_parameters, read_descriptor

    rows = [["name", "task", "channels", "network", "trained", "PSNR (dB, input -> output)"]]
    for model in zoo_models:
        d = read_descriptor(model.weights)
        task = f"upscale x{d.scale}" if d.task == "upscale" else f"denoise {d.noise or ''}"
        network = f"{d.arch} ({count_parameters(model.weights) / 1e6:.2f} M)"
        trained = f"{d.method}, {d.training.get('step')} steps"
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


def _describe_model(model: ZooModel) -> None:
    """The long form of one shipped model for ``restorekit models NAME``."""
    from restorekit.infer.backends import onnx_status
    from restorekit.nets.files import read_descriptor

    d = read_descriptor(model.weights)
    args = ", ".join(f"{k}={v}" for k, v in d.arch_args.items())
    trained = d.training
    click.echo(
        f"{model.name}: {d.task} x{d.scale}, {d.in_channels} -> {d.out_channels} "
        f"channels, noise {d.noise}, {d.arch}({args}), size multiple "
        f"{d.size_multiple}, values {d.value_range[0]:g}-{d.value_range[1]:g}"
    )
    click.echo(
        f"  trained by {d.method} on {', '.join(trained.get('data', []))}, "
        f"{trained.get('step')} steps; card: {model.card}"
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


@main.command()
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


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--token", help="Required on every API call (needed for a --host other than local).")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Jobs at once."
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("restorekit-serve"),
    show_default=True,
    help="Jobs' files (kept --ttl seconds) and the models trained here.",
)
@click.option("--max-upload", default="256MB", show_default=True, help="Bytes per request.")
@click.option("--ttl", type=click.FloatRange(min=1), default=3600.0, show_default=True)
@max_pixels_option
@click.option(
    "--max-memory", default="2GB", show_default=True, help="Working memory of one job (tiling)."
)
def serve(
    host: str,
    port: int,
    token: str | None,
    workers: int,
    data_dir: Path,
    max_upload: str,
    ttl: float,
    max_memory: str,
) -> None:
    """A local web app and REST API (page at http://HOST:PORT/, API docs at /docs): denoise,
    upscale, compare before/after, and train a denoiser on your own noisy images."""
    try:
        import uvicorn

        from restorekit.serve.app import Settings, create_app
    except ImportError:
        raise click.ClickException(
            "the web app needs its extra: pip install 'restorekit[serve]'"
        ) from None
    from restorekit.units import parse_bytes

    if host not in LOCAL_HOSTS and not token:
        raise click.UsageError(
            f"--host {host} serves other machines: give --token SECRET (clients send "
            "Authorization: Bearer SECRET, or open the page with ?token=SECRET)"
        )
    settings = Settings(
        data_dir.resolve(),
        token=token,
        workers=workers,
        max_upload_bytes=parse_bytes(max_upload),
        max_memory=parse_bytes(max_memory),
        ttl_s=ttl,
    )
    click.echo(f"restorekit serve: http://{host}:{port}/ (API docs: /docs), files in {data_dir}")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
