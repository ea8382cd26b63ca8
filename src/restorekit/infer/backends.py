"""Which backend and precision run a model (``--backend auto|torch|onnx``, ``--precision
auto|fp32|bf16|fp16``).

``auto`` (the command line's default for both) takes the fastest measured way that keeps the
model's figures: for a shipped model with measurements (``speed.json`` and ``precision.json``,
written at ship time by ``benchmarks/inference.py --record-zoo``), :func:`restorekit.infer.paths.
choose_path` picks among the paths this machine can run — PyTorch fp32 (channels_last),
PyTorch bf16 (where the CPU runs bfloat16 natively, or on a GPU) and the shipped model's ONNX
export on ONNX Runtime — the fastest at the measured image size nearest the image's (``pixels``:
the command line gives its largest input's), among those whose evaluation figure moved at most
0.02 dB from fp32. The line :meth:`Backend.describe` prints says which and why.

ONNX Runtime is ruled out when the model is not a shipped one nor an ``.onnx`` file, when an
option only PyTorch runs is given (self-ensemble / TTA, stacks: the caller's
``torch_options``), on a GPU, when ``onnxruntime`` is missing, or (not exported yet) ``onnx``.
Without measurements ``auto`` takes ONNX Runtime for a shipped model where it can and PyTorch
fp32 otherwise. An ``.onnx`` file always runs on ONNX Runtime. ``torch``, ``onnx`` and an
explicit precision force their choice; one that cannot run raises an error that says why. Both
backends share :class:`restorekit.infer.array_model.ArrayModel`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from restorekit.errors import ConfigError, ModelLoadError
from restorekit.infer.array_model import ArrayModel
from restorekit.infer.onnx_cache import cached_onnx, is_current, onnx_cache_path, why_no_export
from restorekit.infer.paths import choose_path, split_path
from restorekit.io.files import sha256_file
from restorekit.zoo import ZooModel, shipped_model

BACKENDS = ("auto", "torch", "onnx")
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Backend:
    """A loaded model, the backend that runs it ("onnxruntime" or "torch"), its precision and
    why."""

    model: ArrayModel
    name: str
    reason: str
    precision: str = "fp32"

    def describe(self) -> str:
        """One line for the user, e.g. ``backend: onnxruntime fp32 (measured fastest ...)``."""
        return f"backend: {self.name} {self.precision} ({self.reason})"


def open_model(
    name_or_path: str | Path,
    backend: str = "auto",
    device: str | None = None,
    torch_options: Sequence[str] = (),
    tile: int | None = None,
    max_memory: float | None = None,
    overlap: int | None = None,
    precision: str = "auto",
    pixels: int | None = None,
) -> Backend:
    """Load a model (shipped name, model file, run folder or ``.onnx`` file) on ``backend`` in
    ``precision`` (see the module docstring).

    ``torch_options``: names of the options given that ``auto`` leaves to PyTorch (e.g.
    ``["--tta"]``). ``tile``, ``max_memory`` and ``overlap``: the tiling (None: the defaults).
    ``pixels``: the size of the images to come (``auto`` chooses for it; None: the smallest
    measured size).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISION_CHOICES:
        raise ConfigError(
            f"unknown precision {precision!r}; choose one of {', '.join(PRECISION_CHOICES)}"
        )
    tiling = {k: v for k, v in (("max_memory", max_memory), ("overlap", overlap)) if v is not None}
    name = str(name_or_path)
    is_onnx_file = Path(name).suffix.lower() == ".onnx"
    if backend == "torch" and is_onnx_file:
        raise ConfigError(f"{name} is an ONNX file: run it with --backend onnx (or auto)")
    if backend == "onnx" or is_onnx_file:
        return _forced_onnx(name, is_onnx_file, device, precision, tile, tiling)
    zoo = _shipped(name)
    if precision not in ("auto", "fp32"):
        reason = f"--precision {precision}" + (" --backend torch" if backend == "torch" else "")
        model = _torch(name, device, tile, tiling, precision)
        return Backend(model, "torch", reason, precision)
    torch_only = backend == "torch"
    why_torch = "--backend torch" if torch_only else _why_torch(name, device, torch_options)
    available = _available(device, why_torch is None, precision)
    if zoo is not None and zoo.speed:
        path, reason = choose_path(zoo.speed, zoo.precision, pixels, available)
        chosen_backend, chosen_precision = split_path(path)
        if chosen_backend == "onnxruntime":
            opened = _shipped_onnx(zoo, tile, tiling, reason)
            if isinstance(opened, Backend):
                return opened
            why_torch = opened
        else:
            model = _torch(name, device, tile, tiling, chosen_precision)
            if why_torch is not None and chosen_precision == "fp32":
                reason = why_torch
            return Backend(model, "torch", reason, chosen_precision)
    if why_torch is None and zoo is not None:
        opened = _shipped_onnx(zoo, tile, tiling, "the shipped model's ONNX export")
        if isinstance(opened, Backend):
            return opened
        why_torch = opened
    return Backend(_torch(name, device, tile, tiling, "fp32"), "torch", why_torch or "")


def _forced_onnx(
    name: str,
    is_onnx_file: bool,
    device: str | None,
    precision: str,
    tile: int | None,
    tiling: dict,
) -> Backend:
    """An ``.onnx`` file, or a shipped model's export (``--backend onnx``), on ONNX Runtime."""
    if device not in (None, "cpu"):
        raise ConfigError(
            f"the ONNX backend runs on the CPU: drop --device {device}, or use --backend torch"
        )
    if precision not in ("auto", "fp32"):
        raise ConfigError(
            f"ONNX Runtime runs these models in fp32: drop --precision {precision}, or use "
            "--backend torch"
        )
    if is_onnx_file:
        return Backend(_onnx(Path(name), tile, tiling), "onnxruntime", "an .onnx model file")
    zoo = _shipped(name)
    if zoo is None:
        raise ModelLoadError(
            f"{name}: the ONNX backend takes an .onnx file or a shipped model; export this "
            "model with `restorekit export` and pass the .onnx file"
        )
    model = _onnx(cached_onnx(zoo.weights), tile, tiling)
    return Backend(model, "onnxruntime", "--backend onnx: the shipped model's ONNX export")


def _shipped_onnx(zoo: ZooModel, tile: int | None, tiling: dict, reason: str) -> Backend | str:
    """The shipped model's export on ONNX Runtime, or why it cannot be made (e.g. an
    unwritable cache: PyTorch still runs the model)."""
    try:
        model = _onnx(cached_onnx(zoo.weights), tile, tiling)
    except ModelLoadError as error:
        return f"no ONNX export: {error}"
    return Backend(model, "onnxruntime", reason)


def _available(device: str | None, onnx_possible: bool, precision: str) -> set[str]:
    """The paths this machine can run for the request (see :mod:`restorekit.infer.paths`)."""
    paths = {"torch-fp32"}
    if onnx_possible:
        paths.add("onnxruntime-fp32")
    if precision == "auto" and _bf16_runs_natively(device):
        paths.add("torch-bf16")
    return paths


def _bf16_runs_natively(device: str | None) -> bool:
    from restorekit.devices import bf16_is_native, resolve_device

    return bf16_is_native(resolve_device(device))  # a bad name: its clear ConfigError


def _why_torch(name: str, device: str | None, torch_options: Sequence[str]) -> str | None:
    """Why ``auto`` runs PyTorch (before loading anything), or None to consider ONNX Runtime."""
    if torch_options:
        return f"{', '.join(torch_options)} given"
    if device not in (None, "cpu"):
        return f"--device {device}"
    zoo = _shipped(name)
    if zoo is None:
        return "not a shipped model nor an .onnx file"
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed: pip install 'restorekit[onnx]'"
    if not is_current(onnx_cache_path(zoo.weights), sha256_file(zoo.weights)):
        missing = why_no_export()
        if missing:
            return f"no cached ONNX export and {missing}"
    if device is None:
        import torch

        if torch.cuda.is_available():
            return "a GPU is available"
    return None


def _shipped(name: str) -> ZooModel | None:
    """The shipped model ``name`` (a local path is never a shipped model)."""
    return None if Path(name).exists() else shipped_model(name)


def onnx_status(zoo: ZooModel) -> str:
    """A shipped model's ONNX export in words: cached (where), or made on first use."""
    path = onnx_cache_path(zoo.weights)
    if path.is_file():
        size = f"{path.stat().st_size / 1e6:.1f} MB"
        return f"exported from these weights, cached at {path} ({size})"
    missing = why_no_export()
    if missing:
        return f"not exported yet ({missing}); PyTorch runs it"
    return f"exported from these weights on first use into {path.parent}"


def _onnx(path: Path, tile: int | None, tiling: dict) -> ArrayModel:
    from restorekit.infer.onnx_backend import load_onnx_model

    return load_onnx_model(path, tile=tile, **tiling)


def _torch(
    name: str, device: str | None, tile: int | None, tiling: dict, precision: str
) -> ArrayModel:
    from restorekit.infer.model import load_model

    return load_model(name, device, tile=tile, precision=precision, **tiling)
