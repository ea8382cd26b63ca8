"""Tiled inference: any network on images of any size, in overlapping tiles blended without seams.

This module does not import torch (the ONNX Runtime path uses it); the network is a callable
``run(batch) -> batch`` on NumPy float32 arrays (:func:`restorekit.infer.predict.predict_tiled`
wraps a torch network).

Conventions:

* Images are N x C x *spatial float32 (``spatial_dims`` trailing axes: 2 for H x W; the code is
  written per axis so that 3D volumes only need ``spatial_dims=3``).
* The image is first padded at the end of each axis to a multiple of the network's
  ``size_multiple``, exactly as whole-image prediction does (reflect; replicate where the image is
  too small to reflect). Tiles are cut from this padded image: their sizes and origins are
  multiples of ``size_multiple``, so every tile's pooling grid coincides with the whole image's.
  An image whose padded size fits in one tile is run whole: the result is then identical to
  whole-image prediction.
* ``tile`` and ``overlap`` are in input pixels, rounded to multiples of ``size_multiple`` (tile
  down, overlap up). Neighbouring tiles overlap by at least ``overlap`` pixels; origins are spread
  evenly over the image.
* Blending: each tile's output is weighted by a separable window. Along an axis, at a side that
  borders another tile the weight is 0 over the first 3/8 of the overlap (where the tile lacks
  context), rises as a raised cosine over the next 1/4 and is 1 beyond; at an image border it is
  1. Neighbouring tiles thus cross-fade over the middle quarter of their overlap; the weighted
  outputs are summed and divided by the summed weights. A network whose output at a pixel
  depends on input at most ``3/8 * overlap`` away (its context) gives the whole-image result up
  to float rounding; any network gives a seamless one.
* Overlap from the network's reach (its receptive-field radius, measured by
  :func:`restorekit.infer.reach.measure_reach`): :func:`overlap_for_reach` gives the smallest
  overlap whose 3/8 covers it, so tiled equals whole. E.g. the N2N U-Net reaches 128 pixels
  (overlap 352), EDSR-baseline 36 (overlap 96), the n2v-bsd68 U-Net 22 (overlap 60).
  :data:`DEFAULT_OVERLAP` is for networks whose reach is unknown (ONNX files exported before it
  was recorded).
* ``scale``: output tiles are ``scale`` times larger on each spatial axis (super-resolution);
  windows are built in output pixels.
* Memory: see :func:`choose_tile`. The estimate is ``batch_size * tile ** spatial_dims *
  bytes_per_pixel`` where ``bytes_per_pixel`` is the peak working memory of one forward pass
  per input pixel, measured by :func:`restorekit.infer.memory.measure_bytes_per_pixel`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

from restorekit.errors import ConfigError, ModelLoadError
from restorekit.units import format_bytes

DEFAULT_MAX_MEMORY = 2 * 1024**3
"""Default working-memory budget of one tiled forward pass, in bytes (2 GiB)."""

MAX_WORK_FACTOR = 3.0
"""Tiling may cost at most this many times the work of one pass over the whole image along each
spatial axis (9 times in all for images, 27 for volumes)."""
DEFAULT_OVERLAP = 352
"""Overlap of neighbouring tiles, in input pixels, for a network of unknown reach (enough for
the N2N U-Net, the widest-reaching shipped network: see the module docstring)."""

FALLBACK_BYTES_PER_PIXEL = 4.0 * 4 * 64
"""Estimate for a network whose layers cannot be inspected: as a float32 64-channel conv net."""

Run = Callable[[np.ndarray], np.ndarray]


def pad_to_multiple(x: np.ndarray, multiple: int, spatial_dims: int = 2) -> np.ndarray:
    """Pad the last ``spatial_dims`` axes of ``x`` at their end to multiples of ``multiple``.

    The NumPy twin of :func:`restorekit.infer.predict.pad_to_multiple` (same values): reflect
    padding, repeated while the pad exceeds what one reflection can give, then replicate padding
    along an axis of length one.
    """
    for axis in range(x.ndim - spatial_dims, x.ndim):
        pad = -x.shape[axis] % multiple
        while pad:
            step = min(pad, x.shape[axis] - 1)
            widths = [(0, 0)] * x.ndim
            if step == 0:  # one pixel: nothing to reflect
                widths[axis] = (0, pad)
                x = np.pad(x, widths, mode="edge")
                break
            widths[axis] = (0, step)
            x = np.pad(x, widths, mode="reflect")
            pad -= step
    return x


def round_tile(tile: int, size_multiple: int) -> int:
    """``tile`` rounded down to a multiple of ``size_multiple`` (at least one multiple)."""
    return max(size_multiple, tile // size_multiple * size_multiple)


def round_up(length: int, size_multiple: int) -> int:
    """``length`` (an overlap, an image side) rounded up to a multiple of ``size_multiple``."""
    return -(-length // size_multiple) * size_multiple


def overlap_for_reach(reach: int, size_multiple: int) -> int:
    """Smallest overlap (a multiple of ``size_multiple``) whose blending margin, 3/8 of it,
    covers ``reach`` input pixels: tiles then give the whole-image result (module docstring)."""
    return round_up(math.ceil(reach * 8 / 3), size_multiple)


def tile_origins(length: int, tile: int, overlap: int, size_multiple: int) -> list[int]:
    """Start of each tile along an axis of ``length`` (all multiples of ``size_multiple``).

    ``length``, ``tile`` and ``overlap`` are multiples of ``size_multiple`` and
    ``overlap < tile``. The first tile starts at 0, the last ends at ``length``; neighbours
    overlap by at least ``overlap``.
    """
    if length <= tile:
        return [0]
    span, stride = (length - tile) // size_multiple, (tile - overlap) // size_multiple
    steps = -(-span // stride)  # number of gaps between tiles
    return [size_multiple * (i * span // steps) for i in range(steps + 1)]


def edge_window(length: int, before: bool, after: bool, overlap: int) -> np.ndarray:
    """1D blending weights of a tile of ``length`` output pixels.

    ``before`` / ``after``: whether another tile overlaps this one at its start / end (else the
    side is an image border and keeps weight 1). ``overlap`` in output pixels.
    """
    if overlap <= 0:
        return np.ones(length, np.float32)
    start = np.arange(length, dtype=np.float64)
    end = start[::-1]
    margin, ramp = overlap * 3 / 8, overlap / 4

    def rise(d: np.ndarray) -> np.ndarray:
        t = np.clip((d + 0.5 - margin) / ramp, 0.0, 1.0)
        return 0.5 - 0.5 * np.cos(np.pi * t)

    weight = np.ones(length)
    if before:
        weight *= rise(start)
    if after:
        weight *= rise(end)
    return weight.astype(np.float32)


def choose_tile(
    max_memory: float,
    bytes_per_pixel: float,
    size_multiple: int,
    overlap: int = DEFAULT_OVERLAP,
    batch_size: int = 1,
    spatial_dims: int = 2,
) -> int:
    """Largest tile side (a multiple of ``size_multiple``) whose forward pass fits ``max_memory``.

    Estimate: ``batch_size * tile ** spatial_dims * bytes_per_pixel <= max_memory``. The tile
    must exceed the overlap by at least one size multiple; a budget too small for that is a
    :class:`ConfigError`.
    """
    side = (max_memory / (batch_size * bytes_per_pixel)) ** (1 / spatial_dims)
    tile = int(side) // size_multiple * size_multiple
    overlap = round_up(overlap, size_multiple)
    smallest = overlap + size_multiple
    if tile < smallest:
        need = batch_size * smallest**spatial_dims * bytes_per_pixel
        raise ConfigError(
            f"memory budget {format_bytes(max_memory)} is too small for tiles of {smallest} "
            f"pixels (overlap {overlap} + {size_multiple}), which need about {format_bytes(need)}; "
            "raise the budget (--max-memory), lower the overlap (--overlap) or give a tile size "
            "(--tile)"
        )
    return tile


def plan_tiles(
    shape: Sequence[int],
    size_multiple: int,
    bytes_per_pixel: float,
    tile: int | None = None,
    max_memory: float = DEFAULT_MAX_MEMORY,
    overlap: int = DEFAULT_OVERLAP,
    batch_size: int = 1,
) -> tuple[int, int]:
    """``(tile, batch_size)`` for :func:`tiled_apply` on an N x C x *spatial batch of ``shape``.

    With an explicit ``tile``: the images run whole (all N in one batch) when their padded sides
    fit in it, else in tiles of that size. Without: they run whole when the estimate for the
    whole padded batch fits ``max_memory``, else in tiles from :func:`choose_tile`.
    """
    n_images, spatial = shape[0], [round_up(s, size_multiple) for s in shape[2:]]
    whole = max(spatial)
    if tile is not None:
        tile = round_tile(tile, size_multiple)
        return (whole, n_images) if whole <= tile else (tile, batch_size)
    if n_images * math.prod(spatial) * bytes_per_pixel <= max_memory:
        return whole, n_images
    dims = len(spatial)
    side = choose_tile(max_memory, bytes_per_pixel, size_multiple, overlap, batch_size, dims)
    return side, batch_size


def tiled_apply(
    run: Run,
    x: np.ndarray,
    size_multiple: int,
    tile: int,
    overlap: int = DEFAULT_OVERLAP,
    scale: int = 1,
    batch_size: int = 1,
    spatial_dims: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``run`` applied to N x C x *spatial ``x`` in blended tiles; output cropped to the input.

    ``run`` takes a B x C x *tile float32 batch (B <= ``batch_size``, sides multiples of
    ``size_multiple``) and returns B x C' x *(scale * tile). See the module docstring.
    ``progress(done, total)`` is called after each batch of tiles. Tiles whose overlap would
    multiply the work more than :data:`MAX_WORK_FACTOR` times per axis over the whole image (a
    tile barely larger than the overlap) are refused with the tile count and a tile that works.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != spatial_dims + 2:
        raise ValueError(f"expected N x C x {spatial_dims} spatial axes, got shape {x.shape}")
    size = x.shape[2:]
    padded = pad_to_multiple(x, size_multiple, spatial_dims)
    tile = round_tile(tile, size_multiple)
    overlap = round_up(overlap, size_multiple)
    grid = padded.shape[2:]
    sides = [min(tile, length) for length in grid]
    if any(side < length for side, length in zip(sides, grid, strict=True)) and overlap >= tile:
        raise ConfigError(
            f"tile {tile} must exceed the overlap {overlap} by at least {size_multiple} pixels; "
            "give a larger tile (--tile) or a smaller overlap (--overlap)"
        )
    origins = [
        tile_origins(length, side, overlap, size_multiple)
        for length, side in zip(grid, sides, strict=True)
    ]
    windows = [
        _axis_windows(o, side * scale, overlap * scale)
        for o, side in zip(origins, sides, strict=True)
    ]

    positions = list(itertools.product(*[range(len(o)) for o in origins]))
    work = len(positions) * math.prod(sides) / math.prod(grid)
    if work > MAX_WORK_FACTOR**spatial_dims:
        shape = "x".join(map(str, size))
        better = round_tile(4 * overlap, size_multiple)
        raise ConfigError(
            f"tiles of {tile} pixels with an overlap of {overlap} cut this {shape} image into "
            f"{len(positions)} tiles, {work:.0f} times the work of the whole image; give --tile "
            f"{better} or more (or raise --max-memory, which sets the tile), or a smaller "
            "--overlap"
        )
    weights = np.zeros([length * scale for length in grid], np.float32)
    for pos in positions:
        weights[_region(origins, pos, sides, scale)] += _window(windows, pos)

    out: np.ndarray | None = None
    jobs = list(itertools.product(range(x.shape[0]), positions))
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        batch = np.stack(
            [padded[_index(image, _region(origins, pos, sides, 1))] for image, pos in chunk]
        )
        result = np.asarray(run(np.ascontiguousarray(batch)), dtype=np.float32)
        expected = [side * scale for side in sides]
        if result.ndim != batch.ndim or list(result.shape[2:]) != expected:
            raise ModelLoadError(
                f"the network returned shape {result.shape} for tiles of shape {batch.shape}; "
                f"expected spatial size {expected} (scale {scale}): the model's descriptor "
                "does not match its network"
            )
        if out is None:
            out = np.zeros((x.shape[0], result.shape[1], *weights.shape), np.float32)
        for (image, pos), tile_out in zip(chunk, result, strict=True):
            region = _region(origins, pos, sides, scale)
            out[_index(image, region)] += tile_out * _window(windows, pos)
        if progress is not None:
            progress(start + len(chunk), len(jobs))
    assert out is not None
    out /= weights
    crop = tuple(slice(0, length * scale) for length in size)
    return np.ascontiguousarray(out[_index(slice(None), crop)])


def _index(image: int | slice, region: Sequence[slice]) -> tuple[int | slice, ...]:
    """The index of ``region`` (spatial slices) of all channels of ``image`` (N x C x ...)."""
    return (image, slice(None), *region)


def _axis_windows(origins: Sequence[int], length: int, overlap: int) -> list[np.ndarray]:
    last = len(origins) - 1
    return [edge_window(length, i > 0, i < last, overlap) for i in range(len(origins))]


def _window(windows: Sequence[Sequence[np.ndarray]], positions: Sequence[int]) -> np.ndarray:
    """The separable window of the tile at ``positions``: outer product of its axis windows."""
    result = windows[0][positions[0]]
    for axis in range(1, len(positions)):
        result = np.multiply.outer(result, windows[axis][positions[axis]])
    return result


def _region(
    origins: Sequence[Sequence[int]], positions: Sequence[int], sides: Sequence[int], scale: int
) -> tuple[slice, ...]:
    return tuple(
        slice(scale * o[i], scale * (o[i] + side))
        for o, i, side in zip(origins, positions, sides, strict=True)
    )
