"""One image file (or stack: TIFF, zarr) through a model, as ``restorekit denoise`` /
``upscale`` and the web app (:mod:`restorekit.serve`) both do it, so that their results are the
same bytes.

The file is read (:func:`restorekit.io.read_image`: format, bit depth, alpha, EXIF), divided
by ``input_scale`` if given, checked (:mod:`restorekit.io.checks`: the warnings are returned),
run through the model by its task (alpha passed through, or upscaled by bicubic), brought back
to the input's scale and written atomically in the target's format, at ``bit_depth`` if given,
with the input's colour profile and EXIF data (:mod:`restorekit.io.metadata`; EXIF's pixel
dimensions set to the result's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restorekit.errors import ImageFormatError
from restorekit.infer.array_model import ArrayModel
from restorekit.infer.arrays import upscale_alpha
from restorekit.infer.process_memory import STACK_SLACK, working_budget
from restorekit.io import convert_depth, read_image, read_tiff, write_stack
from restorekit.io.axes import CanonicalView, ScaledView
from restorekit.io.checks import check_image, from_input_scale, to_input_scale
from restorekit.io.stacks import read_ome_tiff
from restorekit.io.streaming import Rows, held_bytes, write_image_rows
from restorekit.io.zarr_stacks import ZarrStackWriter, is_zarr, open_zarr_stack
from restorekit.zoo import default_denoiser_noise


@dataclass(frozen=True)
class FileOptions:
    """What is asked of each file: the 8-pass ensemble, an upscaling model's scale (None: its
    default), a full-scale value the data were stored on (``input_scale``, e.g. 4095 for 12-bit
    data in uint16), the output's bit depth (8, 16 or 32; None: the input's) and a bound on the
    whole process's memory in bytes (``memory_limit``: the tiles get what it leaves, see
    :mod:`restorekit.infer.process_memory`; None: the model's own ``max_memory``)."""

    ensemble: bool = False
    scale: int | None = None
    input_scale: float | None = None
    bit_depth: int | None = None
    memory_limit: float | None = None


def restore_file(
    model: ArrayModel,
    source: Path,
    target: Path,
    options: FileOptions = FileOptions(),
    task: str | None = None,
) -> list[str]:
    """Denoise or upscale ``source`` into ``target``; returns the input checks' warnings, each
    naming ``source``. ``task`` ("denoise" or "upscale"; None: the model's) is what the caller
    asked: a model of the other task is refused (ModelLoadError), never run silently.

    The result is written as its rows are made (:mod:`restorekit.io.streaming`), so only the
    decoded input, the tiles and a band of output rows are held (and the whole result for
    formats written whole: JPEG, WebP, BMP)."""
    image = read_image(source)
    array = image.array
    if options.input_scale is not None:
        array = to_input_scale(array, options.input_scale)
    upscaling = (task or model.descriptor.task) == "upscale"
    noise = None if upscaling else model.descriptor.noise
    warnings = check_image(array, source, noise, default_denoiser_noise())
    model.require_task("upscale" if upscaling else "denoise")
    scale = model.descriptor.chosen_scale(options.scale) if upscaling else 1
    alpha = image.alpha
    if alpha is not None and scale > 1:
        alpha = upscale_alpha(alpha, scale)
    dtype = _output_dtype(image.array.dtype, options.bit_depth)
    shape = (array.shape[0] * scale, array.shape[1] * scale, array.shape[2])
    if model.descriptor.upsample_input:  # bicubic input first: not streamed
        result = model.upscale(array, ensemble=options.ensemble, scale=scale, check=False)
        rows: Rows = [(0, result)]
    else:
        rows = model.image_rows(array, ensemble=options.ensemble, scale=scale)
    converted = ((first, _to_output(block, image.array.dtype, options)) for first, block in rows)
    if alpha is not None and options.bit_depth is not None:
        alpha = convert_depth(alpha[..., None], options.bit_depth)[..., 0]
    budget = model.max_memory
    if options.memory_limit is not None:
        held = held_bytes(target, shape, dtype) + (0 if alpha is None else alpha.nbytes)
        model.max_memory = working_budget(options.memory_limit, held, str(source))
    try:
        metadata = image.metadata.sized(shape[1], shape[0])
        write_image_rows(target, shape, dtype, converted, alpha, metadata)
    finally:
        model.max_memory = budget
    return warnings


def _output_dtype(input_dtype: np.dtype, bit_depth: int | None) -> np.dtype:
    """The dtype written: the input's, or that of ``bit_depth`` (8, 16, 32)."""
    if bit_depth is None:
        return np.dtype(input_dtype)
    return convert_depth(np.zeros((1, 1, 1), input_dtype), bit_depth).dtype


def _to_output(block: np.ndarray, input_dtype: np.dtype, options: FileOptions) -> np.ndarray:
    """A block of result rows (in the model's input dtype) on the input's scale and in the
    output's bit depth."""
    if options.input_scale is not None:
        block = from_input_scale(block, options.input_scale, input_dtype)
    if options.bit_depth is not None:
        block = convert_depth(block, options.bit_depth)
    return block


def restore_stack(
    model: ArrayModel,
    source: Path,
    target: Path,
    axes: str | None,
    ensemble: bool = False,
    float32: bool = False,
    in_place: bool = False,
    memory_limit: float | None = None,
    input_scale: float | None = None,
) -> None:
    """Denoise the stack or volume ``source`` (a TIFF or a zarr store laid out as ``axes``, e.g.
    SYX, ZYX; None: the axes its OME metadata names) into ``target``, in the input's dtype
    (``float32``: float32 on the input's value scale), keeping its OME axes, units and pixel
    sizes. ``memory_limit`` and ``input_scale``: as in :class:`FileOptions`.

    A zarr store is read tile by tile and written chunk by chunk (:func:`restore_zarr_stack`):
    memory is bounded whatever its size. A TIFF's result is held whole in the output dtype
    (``in_place``: ``target`` is ``source``, read whole before its result replaces it)."""
    if is_zarr(source):
        restore_zarr_stack(
            model, source, target, axes, ensemble, float32, memory_limit, input_scale
        )
        return
    ome = read_ome_tiff(source)
    if ome is not None:
        axes = ome.layout.agree(axes, str(source))
    if axes is None:
        raise ImageFormatError(f"{source}: give the TIFF stack's layout with --axes")
    stack = read_tiff(source)  # memory-mapped when it can be
    if in_place:
        stack = np.array(stack)
    dtype = np.dtype(np.float32 if float32 else stack.dtype)
    budget = model.max_memory
    if memory_limit is not None:
        model.max_memory = working_budget(memory_limit, stack.size * dtype.itemsize, str(source))
    try:
        denoised = model.denoise_stack(
            stack, axes, ensemble, dtype, where=str(source), input_scale=input_scale
        )
    finally:
        model.max_memory = budget
    del stack
    write_stack(target, denoised, ome)


def restore_zarr_stack(
    model: ArrayModel,
    source: Path,
    target: Path,
    axes: str | None = None,
    ensemble: bool = False,
    float32: bool = False,
    memory_limit: float | None = None,
    input_scale: float | None = None,
) -> None:
    """Denoise the zarr store ``source`` into a zarr store ``target`` (OME-Zarr for OME-Zarr,
    same axes, chunks and scales), one S slice at a time, tile by tile: the process holds the
    tiles, one band of output rows and the chunks being written, never the stack. ``target``
    replaces what was there only once complete; it may be ``source`` itself (the input is read
    until the new store moves into place)."""
    stack = open_zarr_stack(source, axes)
    axes = model.stack_axes(stack.layout.axes)
    canonical = CanonicalView(stack.array, axes)
    values = canonical if input_scale is None else ScaledView(canonical, input_scale)
    model.check_stack(values, axes, True, str(source))
    dtype = np.dtype(np.float32 if float32 else canonical.dtype)
    budget = model.max_memory
    if memory_limit is not None:
        chunk_bytes = int(np.prod(stack.chunks)) * max(dtype.itemsize, canonical.dtype.itemsize)
        left = working_budget(memory_limit, 4 * chunk_bytes, str(source))
        model.max_memory = left * STACK_SLACK
    try:
        with ZarrStackWriter(target, stack, tuple(stack.array.shape), dtype) as writer:
            output = CanonicalView(writer.array, axes)
            for s, row, block in model.stack_blocks(values, ensemble, dtype, input_scale):
                output[s, :, row : row + block.shape[2]] = block[0]
            writer.finish()
    finally:
        model.max_memory = budget
