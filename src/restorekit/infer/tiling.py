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
  per input pixel, measured by :func:`restorekit.infer.memory.measure_bytes_per_pixel`, plus
  the band of output rows being blended. The input is read tile by tile from the caller's
  array (:class:`ArraySource`: any dtype, a view or a memory map) and the output leaves as
  finished rows (:func:`tiled_blocks`), so neither is held whole in float32 here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

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
    row_bytes: float = 0.0,
) -> int:
    """Largest tile side (a multiple of ``size_multiple``) whose forward pass, and the band of
    output rows it fills, fit ``max_memory``.

    Estimate: ``batch_size * tile ** spatial_dims * bytes_per_pixel + tile * row_bytes <=
    max_memory``, ``row_bytes`` being what one input row of the band of output rows holds (see
    :func:`tiled_blocks`). The tile must exceed the overlap by at least one size multiple; a
    budget too small for that is a :class:`ConfigError`.
    """

    def need(side: int) -> float:
        return batch_size * side**spatial_dims * bytes_per_pixel + side * row_bytes

    side = (max_memory / (batch_size * bytes_per_pixel)) ** (1 / spatial_dims)
    tile = int(side) // size_multiple * size_multiple
    while tile > 0 and need(tile) > max_memory:
        tile -= size_multiple
    overlap = round_up(overlap, size_multiple)
    smallest = overlap + size_multiple
    if tile < smallest:
        raise ConfigError(
            f"memory budget {format_bytes(max_memory)} is too small for tiles of {smallest} "
            f"pixels (overlap {overlap} + {size_multiple}), which need about "
            f"{format_bytes(need(smallest))}; raise the budget (--max-memory), lower the overlap "
            "(--overlap) or give a tile size (--tile)"
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
    output_bytes_per_pixel: float = 0.0,
) -> tuple[int, int]:
    """``(tile, batch_size)`` for :func:`tiled_blocks` on an N x C x *spatial batch of ``shape``.

    With an explicit ``tile``: the images run whole (all N in one batch) when their padded sides
    fit in it, else in tiles of that size. Without: they run whole when the estimate for the
    whole padded batch fits ``max_memory``, else in tiles from :func:`choose_tile`.
    ``output_bytes_per_pixel``: what the blended output holds per input pixel (counted over the
    whole image when it runs whole, over one band of rows when tiled).
    """
    n_images, spatial = shape[0], [round_up(s, size_multiple) for s in shape[2:]]
    whole = max(spatial)
    if tile is not None:
        tile = round_tile(tile, size_multiple)
        return (whole, n_images) if whole <= tile else (tile, batch_size)
    if n_images * math.prod(spatial) * (bytes_per_pixel + output_bytes_per_pixel) <= max_memory:
        return whole, n_images
    dims = len(spatial)
    row_bytes = n_images * math.prod(spatial[1:]) * output_bytes_per_pixel
    side = choose_tile(
        max_memory, bytes_per_pixel, size_multiple, overlap, batch_size, dims, row_bytes
    )
    return side, batch_size


class TileSource(Protocol):
    """What :func:`tiled_blocks` reads tiles from: an N x C x *spatial image batch (``shape``,
    unpadded) whose padded regions ``read`` returns as float32, so that the batch itself can
    stay in its own dtype, memory-mapped or lazily decoded (:class:`ArraySource`)."""

    shape: tuple[int, ...]

    def read(self, image: int, region: Sequence[slice]) -> np.ndarray:
        """Image ``image``'s C x *region float32 pixels; ``region`` lies in the batch padded to
        the size multiple (:func:`pad_to_multiple`'s values beyond the end)."""
        ...


class ArraySource:
    """A :class:`TileSource` over an N x C x *spatial array-like of any dtype (a NumPy array,
    a view of an H x W x C image, a memory map): ``read`` slices it, pads beyond its end as
    :func:`pad_to_multiple` does (from an index map, never a padded copy) and applies
    ``convert`` (default: to float32) to the C x *region block it read."""

    def __init__(
        self,
        array: np.ndarray,
        size_multiple: int,
        convert: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.array = array
        self.shape = tuple(array.shape)
        self.convert = convert
        self._maps = [padded_index(length, size_multiple) for length in self.shape[2:]]

    def read(self, image: int, region: Sequence[slice]) -> np.ndarray:
        inside = all(r.stop <= length for r, length in zip(region, self.shape[2:], strict=True))
        if inside:
            block = np.asarray(self.array[(image, slice(None)) + tuple(region)])
        else:  # read the box of source pixels the padded region maps to, then index into it
            maps = [m[r] for m, r in zip(self._maps, region, strict=True)]
            box = tuple(slice(int(m.min()), int(m.max()) + 1) for m in maps)
            block = np.asarray(self.array[(image, slice(None)) + box])
            index = np.ix_(*[m - b.start for m, b in zip(maps, box, strict=True)])
            block = block[(slice(None),) + index]
        if self.convert is not None:
            return self.convert(block)
        return np.asarray(block, dtype=np.float32)


def padded_index(length: int, size_multiple: int) -> np.ndarray:
    """Source index of each position along an axis of ``length`` padded to a multiple of
    ``size_multiple`` (the padding of :func:`pad_to_multiple`)."""
    positions = np.arange(length)[None, None]
    return pad_to_multiple(positions, size_multiple, 1)[0, 0]


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
    ``size_multiple``) and returns B x C' x *(scale * tile). See the module docstring and
    :func:`tiled_blocks`, whose blocks this gathers into one array.
    """
    x = np.asarray(x)
    if x.ndim != spatial_dims + 2:
        raise ValueError(f"expected N x C x {spatial_dims} spatial axes, got shape {x.shape}")
    source = ArraySource(x, size_multiple)
    out: np.ndarray | None = None
    for row, block in tiled_blocks(
        run, source, size_multiple, tile, overlap, scale, batch_size, progress
    ):
        if out is None:
            size = [length * scale for length in x.shape[2:]]
            out = np.empty((x.shape[0], block.shape[1], *size), np.float32)
        out[:, :, row : row + block.shape[2]] = block
    assert out is not None
    return out


def tiled_blocks(
    run: Run,
    source: TileSource,
    size_multiple: int,
    tile: int,
    overlap: int = DEFAULT_OVERLAP,
    scale: int = 1,
    batch_size: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """``run`` on ``source`` in blended tiles, yielded as finished blocks of output rows.

    Yields ``(first_row, block)``: N x C' x rows x *(the other output axes) float32, the rows
    (first spatial axis, output pixels) in order and cropped to the input times ``scale``. Tiles
    are run one row of tiles at a time (its tiles in batches of up to ``batch_size``); rows that
    no later tile touches are blended and yielded at once, so the memory held beyond the tiles
    is one band of output rows (``tile * scale`` of them, the full padded width), never the
    whole output. ``progress(done, total)`` is called after each batch of tiles. Tiles whose
    overlap would multiply the work more than :data:`MAX_WORK_FACTOR` times per axis over the
    whole image (a tile barely larger than the overlap) are refused with the tile count and a
    tile that works.
    """
    n_images, size = source.shape[0], source.shape[2:]
    dims = len(size)
    asked, tile = tile, round_tile(tile, size_multiple)
    overlap = round_up(overlap, size_multiple)
    grid = [round_up(length, size_multiple) for length in size]
    sides = [min(tile, length) for length in grid]
    if any(side < length for side, length in zip(sides, grid, strict=True)) and overlap >= tile:
        rounded = f" ({asked} rounded to a multiple of {size_multiple})" if asked != tile else ""
        raise ConfigError(
            f"tile {tile}{rounded} must exceed the overlap {overlap} by at least "
            f"{size_multiple} pixels: give --tile {overlap + size_multiple} or more, or a "
            "smaller overlap (--overlap)"
        )
    origins = [
        tile_origins(length, side, overlap, size_multiple)
        for length, side in zip(grid, sides, strict=True)
    ]
    _check_work(origins, sides, grid, size, tile, overlap, size_multiple)
    windows = [
        _axis_windows(o, side * scale, overlap * scale)
        for o, side in zip(origins, sides, strict=True)
    ]
    # The tiles form a full grid of separable windows, so their summed weight is separable too.
    sums = [
        _axis_weight_sum(o, w, scale, length * scale)
        for o, w, length in zip(origins, windows, grid, strict=True)
    ]
    other_weight = _outer(sums[1:]) if dims > 1 else np.ones((), np.float32)
    expected = [side * scale for side in sides]
    crop_rows, crop_rest = size[0] * scale, tuple(slice(0, n * scale) for n in size[1:])
    others = list(itertools.product(*[range(len(o)) for o in origins[1:]]))
    total, done = n_images * len(origins[0]) * len(others), 0
    band: np.ndarray | None = None  # output rows [band_start, band_start + len(band))
    band_start = 0
    for row_index, row_origin in enumerate(origins[0]):
        top, bottom = row_origin * scale, (row_origin + sides[0]) * scale
        if band is not None and top > band_start:  # rows above this tile row are final
            finished = min(top, band_start + band.shape[2])
            yield from _finish(
                band[:, :, : finished - band_start],
                band_start,
                sums[0],
                other_weight,
                crop_rows,
                crop_rest,
            )
            band = band[:, :, finished - band_start :]
            band_start = finished
        jobs = list(itertools.product(range(n_images), others))
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            regions = [_region(origins, (row_index, *pos), sides, 1) for _, pos in chunk]
            batch = np.stack([source.read(i, r) for (i, _), r in zip(chunk, regions, strict=True)])
            result = np.asarray(run(np.ascontiguousarray(batch)), dtype=np.float32)
            if result.ndim != batch.ndim or list(result.shape[2:]) != expected:
                raise ModelLoadError(
                    f"the network returned shape {result.shape} for tiles of shape "
                    f"{batch.shape}; expected spatial size {expected} (scale {scale}): the "
                    "model's descriptor does not match its network"
                )
            if band is None or band.shape[2] < bottom - band_start:
                band = _grow(band, result.shape[1], n_images, bottom - band_start, grid, scale)
            for (image, pos), tile_out in zip(chunk, result, strict=True):
                region = _region(origins, (row_index, *pos), sides, scale)
                local = (
                    slice(region[0].start - band_start, region[0].stop - band_start),
                    *region[1:],
                )
                out_index = _index(image, local)
                band[out_index] += tile_out * _window(windows, (row_index, *pos))
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    assert band is not None
    yield from _finish(band, band_start, sums[0], other_weight, crop_rows, crop_rest)


def _grow(
    band: np.ndarray | None,
    channels: int,
    n_images: int,
    rows: int,
    grid: Sequence[int],
    scale: int,
) -> np.ndarray:
    """``band`` extended with zero rows to ``rows`` output rows (a new band if None)."""
    shape = (n_images, channels, rows, *[length * scale for length in grid[1:]])
    grown = np.zeros(shape, np.float32)
    if band is not None:
        grown[:, :, : band.shape[2]] = band
    return grown


def _finish(
    rows: np.ndarray,
    first: int,
    row_weight: np.ndarray,
    other_weight: np.ndarray,
    crop_rows: int,
    crop_rest: tuple[slice, ...],
) -> Iterator[tuple[int, np.ndarray]]:
    """Blended rows ``first``.. of a band, divided by their summed weight and cropped."""
    count = min(rows.shape[2], crop_rows - first)
    if count <= 0:
        return
    weight = np.multiply.outer(row_weight[first : first + count], other_weight)
    block = rows[(slice(None), slice(None), slice(0, count)) + crop_rest]
    crop_weight = weight[(slice(None),) + crop_rest]
    yield first, np.ascontiguousarray(block / crop_weight)


def _check_work(
    origins: Sequence[Sequence[int]],
    sides: Sequence[int],
    grid: Sequence[int],
    size: Sequence[int],
    tile: int,
    overlap: int,
    size_multiple: int,
) -> None:
    """Refuse tiles whose overlap multiplies the work beyond :data:`MAX_WORK_FACTOR` per axis."""
    count = math.prod(len(o) for o in origins)
    work = count * math.prod(sides) / math.prod(grid)
    if work > MAX_WORK_FACTOR ** len(grid):
        shape = "x".join(map(str, size))
        better = round_tile(4 * overlap, size_multiple)
        raise ConfigError(
            f"tiles of {tile} pixels with an overlap of {overlap} cut this {shape} image into "
            f"{count} tiles, {work:.0f} times the work of the whole image; give --tile "
            f"{better} or more (or raise --max-memory, which sets the tile), or a smaller "
            "--overlap"
        )


def _axis_weight_sum(
    origins: Sequence[int], windows: Sequence[np.ndarray], scale: int, length: int
) -> np.ndarray:
    """The summed blending weight along one axis (``length`` output pixels) of the tiles at
    ``origins`` (input pixels) with their ``windows`` (output pixels)."""
    total = np.zeros(length, np.float32)
    for origin, window in zip(origins, windows, strict=True):
        total[origin * scale : origin * scale + len(window)] += window
    return total


def _outer(vectors: Sequence[np.ndarray]) -> np.ndarray:
    result = vectors[0]
    for vector in vectors[1:]:
        result = np.multiply.outer(result, vector)
    return result


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
