"""``restorekit export`` (ONNX, BioImage Model Zoo) and ``restorekit import`` (the authors'
published checkpoints)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import numpy as np


@click.command()
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
    from restorekit.io.outputs import OutputPathError, plan_export
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

    if out.suffix.lower() == ".zip":
        raise OutputPathError(
            f"-o {out}: a .zip is a BioImage Model Zoo package. Nothing was written. Fix: add "
            f"--format bioimageio, or name an .onnx file for the bare network, e.g. -o "
            f"{out.with_suffix('.onnx')}"
        )
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


@click.command(name="import")
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
