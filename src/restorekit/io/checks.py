"""Sanity checks on input data, once for every command and the Python API (NumPy only).

The models work on values in [0, 1] (uint8 / 255, uint16 / 65535, float as is). Data that do
not fit that convention give a silently wrong result, so they are caught here:

* float data far outside [0, 1] (e.g. 0-255 or 0-65535 in a float TIFF): refused
  (:class:`InputScaleError`), with the scale to divide by;
* uint16 data using a small part of the range (max <= 4095, e.g. 12-bit cameras): a warning with
  the scale (the model would see a dark image);
* constant images (one value everywhere): a warning (nothing to restore); training skips them;
* images far less noisy than the model was trained for (estimated sigma below a third of the
  model's): a warning (the model then over-smooths);
* training: images smaller than the patch (reflect-padded) and synthetic noise added to data
  that look noisy already.

Functions return warning messages (the command line prints them, naming the file) or raise;
:func:`warn` emits them as :class:`InputWarning` for the Python API.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import ImageFormatError
from restorekit.pixels import INTEGER_TOP

FLOAT_LIMIT = 2.0
"""Float data whose max exceeds this (or whose min is below -FLOAT_LIMIT / 2) are refused."""
LOW_RANGE_MAX = 4095
"""uint16 data whose max is at most this use a small part of the range (12 bits or less)."""
CLEAN_RATIO = 1 / 3
"""Warn when the estimated noise sigma is below this fraction of the model's."""
NOISY_DATA_SIGMA = 5 / 255
"""Training data whose estimated sigma exceeds this look noisy already."""
_SCALES = (255.0, 1023.0, 4095.0, 16383.0, 65535.0)
_ESTIMATE_SIDE = 1024  # the noise estimate looks at a central crop at most this large
_MIN_ESTIMATE_SIDE = 16  # smaller images get no noise-level warning


class InputWarning(UserWarning):
    """Input data that look wrong for the model: the result may be poor."""


class InputScaleError(ImageFormatError):
    """Input values on another scale than the model's [0, 1]: the result would be wrong."""


def suggest_scale(top: float) -> float:
    """The full-scale value that data whose maximum is ``top`` were most likely stored on: 255,
    1023, 4095, 16383 or 65535 (10% headroom for noise), else ``top`` itself."""
    for scale in _SCALES:
        if top <= scale * 1.1:
            return scale
    return float(top)


def _fmt(value: float) -> str:
    return f"{value:g}"


def check_values(array: np.ndarray, where: str | Path = "the image") -> list[str]:
    """Warnings about ``array`` (H x W (x C), uint8 / uint16 / float); raises
    :class:`InputScaleError` for float values far outside [0, 1]."""
    array = np.asarray(array)
    if array.size == 0 or not (array.dtype in (np.uint8, np.uint16) or array.dtype.kind == "f"):
        return []  # unsupported types are refused where the image is converted
    low, high = float(array.min()), float(array.max())
    messages: list[str] = []
    finite = bool(np.isfinite([low, high]).all())
    if array.dtype.kind == "f" and finite and (high > FLOAT_LIMIT or low < -FLOAT_LIMIT / 2):
        scale = suggest_scale(max(high, -low))
        raise InputScaleError(
            f"{where}: float values span {_fmt(low)} to {_fmt(high)}, far outside the "
            f"[0, 1] range the models work in (data on a 0-{_fmt(scale)} scale?); divide "
            f"them by {_fmt(scale)} first, or on the command line pass --input-scale "
            f"{_fmt(scale)}"
        )
    if array.dtype == np.uint16 and low < high <= LOW_RANGE_MAX:
        scale = suggest_scale(high)
        bits = int(np.log2(scale + 1))
        messages.append(
            f"{where}: uint16 values reach only {int(high)} of 65535 ({bits}-bit data?); read "
            f"on the 0-65535 scale they look almost black to the model and come out wrong: "
            f"pass --input-scale {_fmt(scale)} (Python: divide by {_fmt(scale)} first), or "
            "rescale the files to the full range"
        )
    if low == high:
        messages.append(
            f"{where}: constant image (every value is {_fmt(low)}): nothing to restore; "
            "check that it is the file you meant"
        )
    return messages


STACK_SAMPLE_SLICES = 8
"""Slices of a stack (evenly spaced) that :func:`check_stack` reads: a memory-mapped stack
larger than memory is not read whole for the checks."""

STACK_SAMPLE_VALUES = 1 << 18
"""Values :func:`check_stack` reads of each sampled slice at most: a band of whole rows in its
middle (its leading planes for a volume), so that a slice of any size is checked in bounded
memory."""


def check_stack(stack: np.ndarray, where: str | Path, normalized: bool) -> list[str]:
    """Warnings about a stack in canonical layout (S x C x (Z) x Y x X), from a few of its
    slices; raises :class:`InputScaleError` for float values far outside [0, 1] when the model
    has no normalisation of its own (``normalized`` False). A model trained with
    ``data.normalization`` scales any range itself: then only a constant stack is reported."""
    picks = np.unique(np.linspace(0, len(stack) - 1, STACK_SAMPLE_SLICES).round().astype(int))
    if not len(stack):
        return []
    sample = np.concatenate([_sample_of_slice(stack, int(i)) for i in picks])
    if sample.size == 0 or not (sample.dtype in (np.uint8, np.uint16) or sample.dtype.kind == "f"):
        return []
    low, high = float(sample.min()), float(sample.max())
    if low == high:
        return [f"{where}: constant stack (every value is {_fmt(low)}): nothing to restore"]
    if normalized:
        return []
    advice = "or denoise with a model trained with data.normalization (e.g. the n2v-2d preset)"
    if sample.dtype.kind == "f" and (high > FLOAT_LIMIT or low < -FLOAT_LIMIT / 2):
        scale = suggest_scale(max(high, -low))
        raise InputScaleError(
            f"{where}: float values span {_fmt(low)} to {_fmt(high)}, but this model (trained "
            f"without data.normalization) takes values on [0, 1]: pass --input-scale "
            f"{_fmt(scale)} (Python: input_scale={_fmt(scale)}), divide the stack by "
            f"{_fmt(scale)} first, {advice}"
        )
    if sample.dtype == np.uint16 and high <= LOW_RANGE_MAX:
        bits = int(np.log2(suggest_scale(high) + 1))
        return [
            f"{where}: uint16 values reach only {int(high)} of 65535 ({bits}-bit data?); this "
            "model (trained without data.normalization) sees an almost black stack and gives "
            f"a wrong result: pass --input-scale {_fmt(suggest_scale(high))} (Python: "
            f"input_scale={_fmt(suggest_scale(high))}), rescale the stack to the full range, "
            f"{advice}"
        ]
    return []


def _sample_of_slice(stack: Any, s: int) -> np.ndarray:
    """At most :data:`STACK_SAMPLE_VALUES` values of S slice ``s``: whole rows of its middle."""
    shape = stack.shape[1:]
    rows, row_size = shape[-2], int(np.prod(shape[-1:])) * shape[0]
    planes = int(np.prod(shape[1:-2])) if len(shape) > 3 else 1
    if planes * rows * row_size <= STACK_SAMPLE_VALUES:
        return np.asarray(stack[s]).ravel()
    band = max(1, min(rows, STACK_SAMPLE_VALUES // row_size))
    top = (rows - band) // 2
    leading = (0,) * (len(shape) - 3)  # a volume: its first plane
    index = (s, slice(None), *leading, slice(top, top + band))
    return np.asarray(stack[index]).ravel()


def estimate_noise(array: np.ndarray) -> float:
    """Estimated standard deviation of additive white noise in ``array`` (H x W (x C)), on the
    [0, 1] scale (uint8 / 255, uint16 / 65535, float as is).

    Immerkaer's Laplacian-difference filter made robust as Donoho's estimator: the median
    absolute response / (0.6745 * 6) (the filter's gain on white noise is 6), per channel on a
    central crop of at most 1024 x 1024, the median over channels.
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    height, width = array.shape[:2]
    if height < 3 or width < 3:
        return 0.0
    top = max(0, (height - _ESTIMATE_SIDE) // 2)
    left = max(0, (width - _ESTIMATE_SIDE) // 2)
    crop = array[top : top + _ESTIMATE_SIDE, left : left + _ESTIMATE_SIDE]
    x = crop.astype(np.float32) / np.float32(INTEGER_TOP.get(crop.dtype, 1.0))
    # [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] = outer([1, -2, 1], [1, -2, 1]): separable
    rows = x[:-2] - 2 * x[1:-1] + x[2:]
    response = rows[:, :-2] - 2 * rows[:, 1:-1] + rows[:, 2:]
    sigmas = np.median(np.abs(response), axis=(0, 1)) / (0.6745 * 6)
    return float(np.median(sigmas))


def model_sigma(noise: str, mean: float = 0.5) -> float | None:
    """The lowest noise sigma (on the [0, 1] scale) a model trained for ``noise`` saw: Gaussian
    sigma / 255; Poisson sqrt(mean / lambda) at intensity ``mean``. None if unparsable."""
    from restorekit.degrade.noise import parse_noise
    from restorekit.errors import NoiseSpecError

    try:
        model = parse_noise(noise)
    except NoiseSpecError:
        return None
    if model.kind == "gauss":
        return model.low / 255.0
    return float(np.sqrt(max(mean, 1e-3) / model.high))


def check_noise_level(
    array: np.ndarray,
    noise: str | None,
    where: str | Path = "the image",
    weaker: tuple[str, str] | None = None,
) -> str | None:
    """A warning when ``array`` looks far less noisy (estimated sigma below a third) than the
    noise ``noise`` the model was trained for, else None. ``weaker``: a model to suggest,
    ``(name, its noise)`` (the shipped default denoiser), named when it was trained for weaker
    noise than ``noise``."""
    if not noise or min(np.shape(array)[:2]) < _MIN_ESTIMATE_SIDE:
        return None  # too small for a reliable estimate
    mean = float(np.mean(array)) / INTEGER_TOP.get(np.asarray(array).dtype, 1.0)
    trained = model_sigma(noise, mean)
    if trained is None:
        return None
    found = estimate_noise(array)
    if found >= trained * CLEAN_RATIO:
        return None
    return (
        f"{where}: looks far less noisy (estimated noise sigma {found * 255:.1f}/255) than the "
        f"model was trained for ({noise}, about {trained * 255:.1f}/255): it will over-smooth "
        f"the image; use a model trained for weaker noise{_suggestion(weaker, trained, mean)}"
    )


def _suggestion(weaker: tuple[str, str] | None, trained: float, mean: float) -> str:
    """``weaker`` as a suggestion when it was trained for weaker noise than ``trained``, else
    a generic one."""
    lowest = model_sigma(weaker[1], mean) if weaker else None
    if weaker is not None and lowest is not None and lowest < trained:
        name, noise = weaker
        return f", e.g. the shipped {name} ({noise}: --model {name})"
    return " (e.g. a real-data model, or one trained on these images)"


def check_image(
    array: np.ndarray,
    where: str | Path = "the image",
    noise: str | None = None,
    weaker: tuple[str, str] | None = None,
) -> list[str]:
    """:func:`check_values` and, for denoising (``noise``: the model's trained noise; ``weaker``
    as there), :func:`check_noise_level`, unless the image is constant."""
    messages = check_values(array, where)
    if noise and np.asarray(array).size and np.ptp(array) > 0:
        message = check_noise_level(array, noise, where, weaker)
        if message:
            messages.append(message)
    return messages


def warn(messages: Sequence[str], stacklevel: int = 3) -> None:
    """Emit ``messages`` as :class:`InputWarning` (for the Python API)."""
    for message in messages:
        warnings.warn(message, InputWarning, stacklevel=stacklevel)


def check_input_scale(scale: float) -> None:
    """Refuse an ``--input-scale`` that is not a positive number."""
    if not scale > 0:
        raise InputScaleError(f"--input-scale must be positive, not {scale}")


def to_input_scale(array: np.ndarray, scale: float) -> np.ndarray:
    """``array`` divided by ``scale`` (``--input-scale``) as float32, for the model."""
    check_input_scale(scale)
    return np.asarray(array, dtype=np.float32) / np.float32(scale)


def from_input_scale(result: np.ndarray, scale: float, dtype: np.dtype) -> np.ndarray:
    """A result on the [0, 1] scale back on the input's (times ``scale``), in ``dtype``
    (integers rounded and clipped to ``scale``)."""
    out = np.asarray(result, dtype=np.float32) * np.float32(scale)
    if np.dtype(dtype).kind in "ui":
        return np.clip(out + 0.5, 0, scale).astype(dtype)
    return out.astype(dtype)


def check_training_images(
    arrays: list[np.ndarray],
    names: Sequence[str | Path],
    patch_size: int,
    synthetic_noise: str | None,
) -> tuple[list[int], list[str]]:
    """Check decoded training images: returns the indices to keep (constant images are
    dropped) and the warnings. Raises :class:`InputScaleError` for float data far outside
    [0, 1] and :class:`ImageFormatError` when every image is constant.

    Warnings: per image (uint16 in a small range, constant: skipped), once for images smaller
    than ``patch_size`` (up to 5 named) and once when ``synthetic_noise`` (the config's
    ``noise``) would be added to data most of which look noisy already.
    """
    keep: list[int] = []
    messages: list[str] = []
    constant: list[str] = []
    small: list[str] = []
    noisy = 0
    for index, (array, name) in enumerate(zip(arrays, names, strict=True)):
        found = check_values(array, name)
        if np.ptp(array) == 0:
            constant.append(str(name))
            continue
        messages += found
        keep.append(index)
        if min(array.shape[:2]) < patch_size:
            small.append(f"{name} ({array.shape[1]}x{array.shape[0]})")
        if synthetic_noise and estimate_noise(array) > NOISY_DATA_SIGMA:
            noisy += 1
    if constant:
        messages.append(
            f"skipped {len(constant)} constant training image(s) (one value everywhere, nothing "
            f"to learn): {_first(constant)}"
        )
        if not keep:
            raise ImageFormatError(
                f"every training image is constant (one value everywhere): {_first(constant)}; "
                "check data.train"
            )
    if small:
        messages.append(
            f"{len(small)} training image(s) smaller than the {patch_size}-pixel patch are "
            f"reflect-padded: {_first(small)}; use larger images or a smaller data.patch_size"
        )
    if synthetic_noise and keep and noisy > len(keep) / 2:
        messages.append(
            f"{noisy} of {len(keep)} training images look noisy already (estimated sigma above "
            f"{NOISY_DATA_SIGMA * 255:g}/255), and this config adds synthetic noise "
            f"({synthetic_noise}) on top: for real noisy data pass --set noise=null (with a "
            "method that learns from noisy data alone: n2v, ne2ne), or use the preset for real "
            "noisy 2D data, n2v-2d"
        )
    return keep, messages


def _first(names: list[str], count: int = 5) -> str:
    shown = ", ".join(names[:count])
    rest = len(names) - count
    return shown + (f" and {rest} more" if rest > 0 else "")
