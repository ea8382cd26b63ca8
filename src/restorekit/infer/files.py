"""One image file (or TIFF stack) through a model, as ``restorekit denoise`` / ``upscale`` and
the web app (:mod:`restorekit.serve`) both do it, so that their results are the same bytes.

The file is read (:func:`restorekit.io.read_image`: format, bit depth, alpha, EXIF), divided
by ``input_scale`` if given, checked (:mod:`restorekit.io.checks`: the warnings are returned),
run through the model by its task (alpha passed through, or upscaled by bicubic), brought back
to the input's scale and written atomically in the target's format, at ``bit_depth`` if given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restorekit.infer.array_model import ArrayModel
from restorekit.infer.arrays import upscale_alpha
from restorekit.io import convert_depth, read_image, read_tiff, write_image, write_stack
from restorekit.io.checks import check_image, from_input_scale, to_input_scale


@dataclass(frozen=True)
class FileOptions:
    """What is asked of each file: the 8-pass ensemble, an upscaling model's scale (None: its
    default), a full-scale value the data were stored on (``input_scale``, e.g. 4095 for 12-bit
    data in uint16) and the output's bit depth (8, 16 or 32; None: the input's)."""

    ensemble: bool = False
    scale: int | None = None
    input_scale: float | None = None
    bit_depth: int | None = None


def restore_file(
    model: ArrayModel,
    source: Path,
    target: Path,
    options: FileOptions = FileOptions(),
    task: str | None = None,
) -> list[str]:
    """Denoise or upscale ``source`` into ``target``; returns the input checks' warnings, each
    naming ``source``. ``task`` ("denoise" or "upscale"; None: the model's) is what the caller
    asked: a model of the other task is refused (ModelLoadError), never run silently."""
    image = read_image(source)
    array = image.array
    if options.input_scale is not None:
        array = to_input_scale(array, options.input_scale)
    colour = array[..., :3] if array.ndim == 3 and array.shape[2] == 4 else array
    upscaling = (task or model.descriptor.task) == "upscale"
    warnings = check_image(colour, source, None if upscaling else model.descriptor.noise)
    alpha = image.alpha
    if upscaling:
        scale = model.descriptor.chosen_scale(options.scale)
        alpha = None if alpha is None else upscale_alpha(alpha, scale)
        result = model.upscale(array, ensemble=options.ensemble, scale=scale, check=False)
    else:
        result = model.denoise(array, ensemble=options.ensemble, check=False)
    if options.input_scale is not None:
        result = from_input_scale(result, options.input_scale, image.array.dtype)
    save(target, result, alpha, options.bit_depth)
    return warnings


def restore_stack(
    model: ArrayModel,
    source: Path,
    target: Path,
    axes: str,
    ensemble: bool = False,
    float32: bool = False,
    in_place: bool = False,
) -> None:
    """Denoise the TIFF stack or volume ``source`` (laid out as ``axes``, e.g. SYX, ZYX) into
    ``target``, in the input's dtype (``float32``: float32 on the input's value scale).
    ``in_place``: ``target`` is ``source``, read whole before its result replaces it."""
    stack = read_tiff(source)  # memory-mapped when it can be
    if in_place:
        stack = np.array(stack)
    dtype = np.float32 if float32 else None
    denoised = model.denoise_stack(stack, axes, ensemble, dtype, where=str(source))
    del stack
    write_stack(target, denoised)


def save(target: Path, array: np.ndarray, alpha: np.ndarray | None, bit_depth: int | None) -> None:
    """Write a result to ``target``, converted to ``bit_depth`` if asked (alpha too)."""
    if bit_depth is not None:
        array = convert_depth(array, bit_depth)
        alpha = None if alpha is None else convert_depth(alpha[..., None], bit_depth)[..., 0]
    write_image(target, array, alpha=alpha)
