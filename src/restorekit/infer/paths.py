"""Which way to run a shipped model fastest without changing its results: backend x precision.

A *path* is a backend and a precision: ``torch-fp32`` (channels_last PyTorch), ``torch-bf16``
(the network in bfloat16, :data:`restorekit.infer.predict.PRECISIONS`), ``onnxruntime-fp32``
(its ONNX export), and, measured but never taken by ``auto``, ``onnxruntime-int8``. Two
records in a shipped model's folder, both written at ship time by ``python
benchmarks/inference.py --record-zoo``, decide:

* ``speed.json``: megapixels/s of each path at each measured image size (``"768x512"``,
  ``"4000x3000"``), on the machine it names;
* ``precision.json``: the change of the model's evaluation figure (its card's benchmark, PSNR
  in dB) on each path against torch-fp32.

:func:`choose_path` takes, among the paths this machine can run, those whose figure moved at
most :data:`FIGURE_TOLERANCE_DB` (fp32 paths always qualify), the fastest at the measured size
nearest the image's pixel count (the next nearest where none was measured there), and says why
in one line. No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

FIGURE_TOLERANCE_DB = 0.02
"""The most a reduced precision may move a model's evaluation figure for ``auto`` to take it."""

BACKEND_NAMES = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime"}


def split_path(path: str) -> tuple[str, str]:
    """``"torch-bf16"`` -> ``("torch", "bf16")``."""
    backend, precision = path.rsplit("-", 1)
    return backend, precision


def describe_path(path: str) -> str:
    """``"torch-bf16"`` -> ``"PyTorch bf16"``."""
    backend, precision = split_path(path)
    return f"{BACKEND_NAMES.get(backend, backend)} {precision}"


def size_pixels(size: str) -> int:
    """``"768x512"`` -> 393216."""
    width, height = (int(side) for side in size.lower().split("x"))
    return width * height


def nearest_size(sizes: Collection[str], pixels: int | None) -> str:
    """The measured size (``"WxH"``) nearest ``pixels`` in ratio; the smallest when None."""
    return min(sizes, key=lambda size: _distance(size, pixels))


def _distance(size: str, pixels: int | None) -> float:
    if pixels is None:
        return size_pixels(size)
    return abs(math.log(size_pixels(size) / max(pixels, 1)))


def figure_changes(precision: dict[str, Any] | None) -> dict[str, float]:
    """Each path's measured change of the evaluation figure (dB), from ``precision.json``."""
    return dict(precision["change_db"]) if precision else {}


def allowed(path: str, changes: dict[str, float]) -> bool:
    """Whether ``auto`` may take ``path``: fp32 always; a reduced precision only when measured
    within :data:`FIGURE_TOLERANCE_DB` of fp32."""
    if split_path(path)[1] == "fp32":
        return True
    change = changes.get(path)
    return change is not None and abs(change) <= FIGURE_TOLERANCE_DB


def choose_path(
    speed: dict[str, Any],
    precision: dict[str, Any] | None,
    pixels: int | None,
    available: Collection[str],
) -> tuple[str, str]:
    """The fastest allowed path among ``available`` for an image of ``pixels`` pixels, and why
    (one line naming the rates, the size they were measured at and the figure's change)."""
    changes = figure_changes(precision)
    by_nearness = sorted(speed["megapixels_per_s"], key=lambda size: _distance(size, pixels))
    for size in by_nearness:  # a size where some runnable, allowed path was measured
        rates = speed["megapixels_per_s"][size]
        candidates = [p for p in rates if p in available and allowed(p, changes)]
        if candidates:
            break
    else:
        raise ValueError(f"no measured path among {sorted(available)}")
    best = max(candidates, key=lambda p: rates[p])
    others = sorted((p for p in candidates if p != best), key=lambda p: -rates[p])
    versus = ", ".join(f"{rates[p]:.3g} {describe_path(p)}" for p in others)
    reason = f"measured fastest for this model at {size}: {rates[best]:.3g} MP/s"
    if versus:
        reason += f" vs {versus}"
    if best in changes and split_path(best)[1] != "fp32":
        reason += f"; {changes[best]:+.3f} dB on {precision['evaluation']}"  # type: ignore[index]
    rejected = [p for p in rates if p in available and not allowed(p, changes)]
    if rejected:
        reason += "; not taken: " + ", ".join(_why_not(p, changes) for p in rejected)
    return best, reason


def _why_not(path: str, changes: dict[str, float]) -> str:
    change = changes.get(path)
    if change is None:
        return f"{describe_path(path)} (figures not measured)"
    return f"{describe_path(path)} ({change:+.3f} dB)"
