"""Options that several commands share: device, backend, precision, pixel limit, the file
commands' inputs and outputs, tiling and memory."""

from __future__ import annotations

from pathlib import Path

import click

from restorekit.errors import RestorekitError

device_option = click.option(
    "--device", help="cpu, cuda, cuda:1, ... (default: the GPU when there is one)."
)


def backend_option_for(condition: str):  # noqa: ANN202 - a click decorator
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


backend_option = backend_option_for(" and without --tta/--ensemble/--axes")


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


def _memory(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    from restorekit.units import parse_bytes

    try:
        size = None if value is None else parse_bytes(value)
    except RestorekitError as error:
        raise click.BadParameter(str(error)) from None
    if value is not None and size is not None and size < 2**20 and value.strip().isdigit():
        raise click.BadParameter(
            f"{value} without a unit is {size} bytes, less than any model needs: give a unit, "
            f"e.g. {value}GB"
        )
    return size


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
