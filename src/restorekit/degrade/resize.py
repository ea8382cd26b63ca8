"""MATLAB-compatible bicubic resizing, the degradation of the super-resolution benchmarks.

``imresize`` reproduces MATLAB's ``imresize(img, scale)`` / ``imresize(img, [rows cols])`` with
the default ``'bicubic'`` method for float images:

- Keys' cubic convolution kernel with ``a = -0.5`` (support 4 pixels);
- antialiasing when downscaling: the kernel is stretched by ``1 / scale`` (and scaled by
  ``scale``), so it averages over every input pixel an output pixel covers;
- pixel centres aligned: output pixel ``x`` (1-based) samples input position
  ``x / scale + (1 - 1 / scale) / 2``;
- borders by MATLAB's symmetric index mirroring (``1 2 3 ... n n ... 3 2 1``, the edge
  pixel repeated);
- weights normalised to sum to 1 for every output pixel;
- output size ``ceil(in * scale)``; with ``output_shape`` the scale of each axis is
  ``out / in``;
- separable, one axis after the other, the axis with the smaller scale first (MATLAB's
  ``getResizeDimOrder``; rows first on a tie). The two one-axis resizes are linear maps on
  different axes and commute, so the order changes the result only by float64 rounding.

Images are numpy arrays, H x W or H x W x C, float, nominally in [0, 1]. The arithmetic is in
float64 with no clipping and no rounding (bicubic overshoots slightly at edges); the result has
the input's float dtype. Integer images must be converted first (MATLAB rounds and clips uint8
results, which this function never does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_KERNEL_WIDTH = 4.0  # support of the cubic kernel, in input pixels at scale 1


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1.0)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1.0) & (ax <= 2.0))
    return near + far


def resize_matrix(in_length: int, out_length: int, scale: float) -> np.ndarray:
    """The out_length x in_length float64 matrix that resizes one axis (rows sum to 1)."""
    if scale < 1.0:  # antialiasing: a wider, lower kernel
        width = _KERNEL_WIDTH / scale

        def kernel(x: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * x)
    else:
        width = _KERNEL_WIDTH
        kernel = _cubic

    # 1-based coordinates, as in MATLAB's ``contributions``.
    x = np.arange(1, out_length + 1, dtype=np.float64)
    centre = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(centre - width / 2.0)
    taps = math.ceil(width) + 2
    index = left[:, None] + np.arange(taps)[None, :]  # out_length x taps, 1-based
    weights = kernel(centre[:, None] - index)
    weights /= weights.sum(axis=1, keepdims=True)

    # Symmetric mirroring of out-of-range indices: period 2n, edge pixel repeated.
    period = 2 * in_length
    folded = np.mod(index.astype(np.int64) - 1, period)
    source = np.where(folded < in_length, folded, period - 1 - folded)  # 0-based

    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_length)[:, None], source.shape)
    np.add.at(matrix, (rows, source), weights)
    return matrix


def _output_plan(
    shape: tuple[int, int], scale: float | None, output_shape: Sequence[int] | None
) -> tuple[tuple[int, int], tuple[float, float]]:
    """Output height/width and the scale used for each axis."""
    if (scale is None) == (output_shape is None):
        raise ValueError("imresize: give exactly one of scale or output_shape")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.number)):
            raise ValueError(f"imresize: scale must be a positive number, got {scale!r}")
        scale = float(scale)
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"imresize: scale must be positive and finite, got {scale!r}")
        out = (math.ceil(shape[0] * scale), math.ceil(shape[1] * scale))
        return out, (scale, scale)
    assert output_shape is not None
    values = tuple(output_shape)
    if len(values) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise ValueError(
            "imresize: output_shape must be two positive integers (height, width), "
            f"got {output_shape!r}"
        )
    out = (int(values[0]), int(values[1]))
    return out, (out[0] / shape[0], out[1] / shape[1])


def imresize(
    img: np.ndarray, scale: float | None = None, output_shape: Sequence[int] | None = None
) -> np.ndarray:
    """Resize an H x W (x C) float image like MATLAB's bicubic ``imresize``.

    Give either ``scale`` (output size ``ceil(H * scale) x ceil(W * scale)``; e.g. ``0.5``,
    ``1 / 3``, ``4``) or ``output_shape=(height, width)``. Channels are resized independently.
    Computed in float64, returned in the input's float dtype, never clipped or rounded.
    """
    if not isinstance(img, np.ndarray):
        raise ValueError(f"imresize: expected a numpy array, got {type(img).__name__}")
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize: expected an H x W or H x W x C image, got shape {img.shape}")
    if img.size == 0:
        raise ValueError(f"imresize: empty image of shape {img.shape}")
    if not np.issubdtype(img.dtype, np.floating):
        raise ValueError(
            f"imresize: expected a float image in [0, 1], got dtype {img.dtype}; convert "
            "integer images first (e.g. uint8 / 255)"
        )
    in_shape = (img.shape[0], img.shape[1])
    out_shape, scales = _output_plan(in_shape, scale, output_shape)

    result = img.astype(np.float64)
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    for axis in order:
        matrix = resize_matrix(in_shape[axis], out_shape[axis], scales[axis])
        moved = np.moveaxis(result, axis, 0)
        result = np.moveaxis(np.tensordot(matrix, moved, axes=(1, 0)), 0, axis)
    return np.ascontiguousarray(result, dtype=img.dtype)
