"""The array API shared by the PyTorch and the ONNX Runtime models (NumPy only, no torch here).

A backend subclasses :class:`ArrayModel` and provides :meth:`ArrayModel.forward`: its bare
network on a B x C x *spatial float32 batch whose sides are multiples of the size multiple. All
the rest lives here once, so both backends do exactly the same around the network:

* per-channel normalisation from the descriptor's ``normalization`` record (Noise2Void stacks:
  :class:`restorekit.normalization.Normalization`), applied to the input and undone on the
  output;
* padding and the whole-or-tiled decision (:mod:`restorekit.infer.tiling`), 2D images and 3D
  volumes alike;
* the caller's array conventions (:mod:`restorekit.infer.arrays`), the geometric self-ensemble
  (:mod:`restorekit.infer.ensemble`), the bicubic-upscaled input of RED-Net super-resolution
  (``upsample_input``) and stacks laid out as any axes (:mod:`restorekit.io.axes`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from restorekit.degrade.resize import imresize
from restorekit.descriptor import ModelDescriptor
from restorekit.errors import ImageFormatError, ModelLoadError
from restorekit.infer.arrays import Blocks, apply_to_image, image_rows
from restorekit.infer.ensemble import self_ensemble
from restorekit.infer.process_memory import release_freed_memory
from restorekit.infer.tiling import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_OVERLAP,
    ArraySource,
    overlap_for_reach,
    plan_tiles,
    tiled_blocks,
)
from restorekit.io.axes import (
    ScaledView,
    SliceView,
    from_canonical,
    parse_axes,
    planes_as_slices,
    to_canonical,
)
from restorekit.io.checks import check_image, check_stack, from_input_scale, warn
from restorekit.io.stacks import check_finite
from restorekit.normalization import Normalization
from restorekit.pixels import from_unit, to_unit, unit_scale
from restorekit.zoo import DEFAULT_DENOISER, default_denoiser_noise, shipped_denoisers

_OUTPUT_BYTES = 8
"""Bytes per output value held while a band of output rows is blended: the float32 band and
the finished block divided out of it (see :func:`restorekit.infer.tiling.plan_tiles`)."""


class ArrayModel:
    """Arrays in, arrays out, in the caller's dtype, around a backend's :meth:`forward`.

    Size: an image (or batch, or volume) whose estimated working memory (``bytes_per_pixel``
    per input pixel) fits ``max_memory`` bytes runs whole, padded to the size multiple; a larger
    one runs in overlapping tiles blended without seams, the tile side chosen from
    ``max_memory``. ``tile`` overrides that choice: inputs whose padded sides fit in it run
    whole, others in tiles of that side. ``overlap`` (input pixels; default: from ``reach``, the
    network's measured receptive-field radius, so that tiles give the whole-image result; 352
    when the reach is unknown) and ``batch_size`` (tiles per forward pass) tune the tiling; all
    four may be changed on the instance at any time.
    """

    def __init__(
        self,
        descriptor: ModelDescriptor,
        bytes_per_pixel: float,
        reach: int | None = None,
        tile: int | None = None,
        max_memory: float = DEFAULT_MAX_MEMORY,
        overlap: int | None = None,
        batch_size: int = 1,
    ) -> None:
        self.descriptor = descriptor
        record = descriptor.normalization
        self.normalization = Normalization.from_record(record) if record else None
        self.bytes_per_pixel = bytes_per_pixel
        self.reach = reach
        self.tile = tile
        self.tile_progress: Callable[[int, int], None] | None = None
        """Called with (tiles done, tiles in all) while an image is processed in tiles."""
        self.max_memory = max_memory
        if overlap is None:
            overlap = DEFAULT_OVERLAP
            if reach is not None:
                overlap = overlap_for_reach(reach, descriptor.size_multiple)
        self.overlap: int = overlap
        self.batch_size = batch_size

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """The bare network on a B x C x *spatial float32 batch whose sides are multiples of the
        size multiple (no normalisation, padding or tiling): B x C' x *(net_scale * spatial)."""
        raise NotImplementedError

    def predict(self, batch: np.ndarray, ensemble: bool = False) -> np.ndarray:
        """The model on an N x C x H x W (volumes: N x C x D x H x W) float batch of any size in
        the model's value range: normalised if the model is, padded, tiled when large.
        ``ensemble``: each forward pass is the mean over the 8 flips/rotations.

        Output: float32, N x out_channels x the spatial sizes times ``descriptor.net_scale``.
        """
        batch = np.asarray(batch, dtype=np.float32)
        out: np.ndarray | None = None
        for row, block in self.blocks(batch, ensemble):
            if out is None:
                size = [n * self.descriptor.net_scale for n in batch.shape[2:]]
                out = np.empty((batch.shape[0], block.shape[1], *size), np.float32)
            out[:, :, row : row + block.shape[2]] = block
        assert out is not None
        return out

    def blocks(self, batch: Any, ensemble: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """:meth:`predict` as finished blocks of output rows, ``(first_row, N x C' x rows x
        ...)`` float32 (:func:`restorekit.infer.tiling.tiled_blocks`).

        ``batch``: N x C x *spatial, any array-like (a view of an image, a memory map) of pixel
        values (uint8 / uint16 taken to [0, 1], float as is); it is read tile by tile, so
        only the tiles and one band of output rows are held in float32.
        """
        spatial = batch.shape[2:]
        scale = self.descriptor.net_scale
        out_values = self.descriptor.out_channels * scale ** len(spatial)
        # around the network, per tile pixel: its float32 input read, converted and stacked;
        # its output and the output times the blending window
        tile_io = 4 * (3 * batch.shape[1] + 2 * out_values)
        tile, batch_size = plan_tiles(
            batch.shape,
            self.descriptor.size_multiple,
            self.bytes_per_pixel + tile_io,
            self.tile,
            self.max_memory,
            self.overlap,
            self.batch_size,
            _OUTPUT_BYTES * out_values,
        )
        run = self.forward
        if ensemble:
            run = functools.partial(self_ensemble, self.forward)
        source = ArraySource(batch, self.descriptor.size_multiple, self._network_input)
        for row, block in tiled_blocks(
            run,
            source,
            self.descriptor.size_multiple,
            tile,
            self.overlap,
            scale,
            batch_size,
            self.tile_progress,
        ):
            if self.normalization is not None:
                block = self.normalization.undo(block.swapaxes(0, 1)).swapaxes(0, 1)
            yield row, block

    def _network_input(self, block: np.ndarray) -> np.ndarray:
        """A C x *region block read from the caller's array, as the network takes it."""
        values = to_unit(block) if block.dtype.kind in "ui" else block.astype(np.float32)
        if self.normalization is not None:
            values = self.normalization.apply(values)
        return np.asarray(values, dtype=np.float32)

    def denoise(self, image: np.ndarray, ensemble: bool = False, check: bool = True) -> np.ndarray:
        """Denoised copy of ``image`` (H x W or H x W x C, uint8 / uint16 / float: see
        :mod:`restorekit.infer.arrays`), same dtype out; ``ensemble``: each forward pass is the
        mean over the 8 flips/rotations (test-time augmentation, 8 passes).

        ``check`` (:mod:`restorekit.io.checks`): float values far outside [0, 1] raise
        InputScaleError; uint16 data in a small range, a constant image or one far less noisy
        than the model was trained for emit an InputWarning."""
        self.require_task("denoise")
        if check:
            noise = self.descriptor.noise
            warn(check_image(_colour(image), "the image", noise, default_denoiser_noise()))
        return apply_to_image(self._image_blocks(ensemble), image, self.descriptor.in_channels)

    def upscale(
        self,
        image: np.ndarray,
        ensemble: bool = False,
        scale: int | None = None,
        check: bool = True,
    ) -> np.ndarray:
        """``image`` upscaled ``scale`` times (default ``descriptor.scale``; a multi-scale model
        takes any of ``descriptor.trained_scales``) (arrays as for :meth:`denoise`; alpha
        upscaled with bicubic ``imresize`` and clipped; float output not clipped).

        ``ensemble``: the x8 geometric self-ensemble of each forward pass (8 passes). A network
        with ``upsample_input`` (RED-Net) gets the bicubic-upscaled image. ``check``: as for
        :meth:`denoise`, without the noise level.
        """
        self.require_task("upscale")
        if check:
            warn(check_image(_colour(image), "the image"))
        scale = self.descriptor.chosen_scale(scale)
        blocks = self._image_blocks(ensemble)
        if self.descriptor.upsample_input:
            inner = blocks

            def blocks(pixels: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
                size = (pixels.shape[2] * scale, pixels.shape[3] * scale)
                unit = [to_unit(np.moveaxis(np.asarray(p), 0, 2)) for p in pixels]
                up = [imresize(p, output_shape=size) for p in unit]
                return inner(np.ascontiguousarray(np.stack(up).transpose(0, 3, 1, 2)))

        return apply_to_image(blocks, image, self.descriptor.in_channels, scale)

    def image_rows(
        self, image: np.ndarray, ensemble: bool = False, scale: int | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """:meth:`denoise` (or :meth:`upscale` for an upscaling model, at ``scale``) of an H x W
        x C image (C 1 or 3, no alpha, no checks), as ``(first_row, rows x W' x C)`` blocks in
        the image's dtype: the result written as it is made, without holding it whole.
        Upscaling models with ``upsample_input`` are not streamed (use :meth:`upscale`)."""
        if self.descriptor.upsample_input:
            raise ModelLoadError("a model with bicubic-upscaled input is not streamed: upscale()")
        if self.descriptor.task == "upscale":
            self.descriptor.chosen_scale(scale)
        return image_rows(self._image_blocks(ensemble), image, self.descriptor.in_channels)

    def _image_blocks(self, ensemble: bool) -> Blocks:
        return functools.partial(self.blocks, ensemble=ensemble)

    def denoise_stack(
        self,
        array: np.ndarray,
        axes: str,
        ensemble: bool = False,
        dtype: DTypeLike | None = None,
        check: bool = True,
        where: str = "the stack",
        input_scale: float | None = None,
    ) -> np.ndarray:
        """Denoised copy of a stack or volume laid out as ``axes`` (e.g. ``SZYX``, ``YXC``;
        :mod:`restorekit.io.axes`), one S slice at a time, in tiles when large.

        Values: uint8 / uint16 scaled to [0, 1] for the network and back (rounded, clipped),
        float as is. ``dtype`` (default: the input's) sets the output type; float output of
        integer input keeps the input's value scale (e.g. 0-65535). ``ensemble``: the mean over
        the 8 flips/rotations in the YX plane (8 passes). ``check``
        (:func:`restorekit.io.checks.check_stack`, naming ``where``): float values far outside
        [0, 1] for a model without normalisation raise InputScaleError; a constant stack or
        12-bit data in uint16 emit an InputWarning. ``input_scale``: the data's full-scale value
        when it is not their type's (e.g. 4095 for 12-bit data in uint16): values are divided
        by it for the network and the result multiplied back (integers clipped to it).
        """
        axes = self.stack_axes(axes)
        canonical = to_canonical(np.asanyarray(array), axes)
        out_dtype = np.dtype(dtype or canonical.dtype)
        values = canonical if input_scale is None else ScaledView(canonical, input_scale)
        self.check_stack(values, axes, check, where)
        result = np.empty(canonical.shape, out_dtype)
        for s, row, block in self.stack_blocks(values, ensemble, out_dtype, input_scale):
            result[s, :, row : row + block.shape[2]] = block[0]
        return from_canonical(result, axes, np.shape(array))

    def stack_axes(self, axes: str) -> str:
        """The axes a stack is read with: a 2D model takes the Z planes of a volume as slices
        (:func:`restorekit.io.axes.planes_as_slices`); a 3D model takes them as they are."""
        return planes_as_slices(axes) if self.descriptor.dims == 2 else parse_axes(axes)

    def check_stack(self, canonical: Any, axes: str, check: bool, where: str) -> None:
        """Refuse a canonical stack this model cannot denoise (NaN or infinite values, channel
        count, 2D / 3D); ``check``: also :func:`restorekit.io.checks.check_stack`'s warnings."""
        self.require_task("denoise")
        check_finite(canonical, where)
        if canonical.shape[1] != self.descriptor.in_channels:
            raise ImageFormatError(
                f"{where} has {canonical.shape[1]} channel(s) (read as {axes}); this model takes "
                f"{self.descriptor.in_channels}{_shipped_for(canonical.shape[1])}"
            )
        dims = self.descriptor.dims
        if canonical.ndim - 2 != dims:
            raise ImageFormatError(
                f"this model is 3D: it denoises volumes, laid out with a Z axis (e.g. ZYX, "
                f"SZYX), not axes {axes}"
            )
        if check:
            warn(check_stack(canonical, where, self.normalization is not None))

    def stack_blocks(
        self, canonical: Any, ensemble: bool, dtype: DTypeLike, input_scale: float | None = None
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """A checked canonical stack (any array-like: a memory map, a lazy zarr view) denoised
        as ``(s, first_row, block)``: blocks of finished rows (first spatial axis) of S slice
        ``s``, 1 x C x rows x ... in ``dtype`` (float: on the input's value scale). Each slice
        is read tile by tile, so only the tiles and one band of rows are held. ``input_scale``:
        ``canonical`` is a :class:`~restorekit.io.axes.ScaledView` by it; the blocks are
        multiplied back."""
        in_dtype, out_dtype = np.dtype(canonical.dtype), np.dtype(dtype)
        for s in range(canonical.shape[0]):
            release_freed_memory()  # each slice starts from what is really held
            for row, block in self.blocks(SliceView(canonical, s), ensemble):
                if input_scale is not None:
                    yield s, row, from_input_scale(block, input_scale, out_dtype)
                elif out_dtype.kind == "f":  # float output on the input's scale
                    yield s, row, (block * unit_scale(in_dtype)).astype(out_dtype)
                else:
                    yield s, row, from_unit(block, out_dtype)

    def require_task(self, task: str) -> None:
        have = self.descriptor.task
        if have != task:
            what = f"upscales x{self.descriptor.scale}" if have == "upscale" else "denoises"
            raise ModelLoadError(
                f"this {self.descriptor.arch} model {what}: use {have}(), not {task}() "
                f"(restorekit {have})"
            )


def _colour(image: np.ndarray) -> np.ndarray:
    """An H x W (x C) image without its alpha channel (C = 4), for the checks."""
    array = np.asarray(image)
    return array[..., :3] if array.ndim == 3 and array.shape[2] == 4 else array


def _shipped_for(channels: int) -> str:
    """A suggestion of the shipped denoisers for data of ``channels`` channels, or nothing."""
    names = shipped_denoisers(channels)
    if not names:
        return ""
    name = DEFAULT_DENOISER if DEFAULT_DENOISER in names else names[0]
    return f": use a model for {channels}-channel data, e.g. --model {name}, or train one"
