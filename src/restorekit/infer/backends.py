"""Which backend runs a model: PyTorch or ONNX Runtime (``--backend auto|torch|onnx``).

``auto`` (the command line's default) takes the fastest measured path. ONNX Runtime is faster
than channels_last PyTorch on the CPU for most models measured by ``benchmarks/inference.py``,
but not for all, so a shipped model's own measurement decides when it has one (``speed.json``,
written by ``benchmarks/inference.py --record-zoo``; the figures are printed with the choice).
``auto`` picks ONNX Runtime when

* the model is an ``.onnx`` file, or a shipped model whose ``model.onnx`` is current (its
  ``weights_sha256`` metadata equals the SHA-256 of the shipped ``model.safetensors``),
* ONNX Runtime imports,
* the shipped model's ``speed.json``, if any, measured ONNX Runtime faster than PyTorch,
* no option is given that ``auto`` leaves to PyTorch (self-ensemble / TTA, stacks: given by the
  caller as ``torch_options``) and the device is the CPU (``device`` None or "cpu"; with None,
  PyTorch would take a GPU when there is one, so a GPU also means PyTorch);

else PyTorch. An ``.onnx`` file always runs on ONNX Runtime. ``torch`` and ``onnx`` force the
backend; ``onnx`` raises an error that says why when it cannot (no ONNX file, a stale one, a
device other than the CPU). Both backends share :class:`restorekit.infer.array_model.ArrayModel`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from restorekit.errors import ConfigError, ModelLoadError
from restorekit.infer.array_model import ArrayModel
from restorekit.io.files import sha256_file
from restorekit.zoo import ZooModel, shipped_model

BACKENDS = ("auto", "torch", "onnx")
REGENERATE = "python scripts/ship_model.py --onnx-only {name}"
"""The command that rewrites a shipped model's ``model.onnx`` from its weights."""


@dataclass(frozen=True)
class Backend:
    """A loaded model, the backend that runs it ("onnxruntime" or "torch") and why."""

    model: ArrayModel
    name: str
    reason: str

    def describe(self) -> str:
        """One line for the user, e.g. ``backend: onnxruntime (shipped model.onnx)``."""
        return f"backend: {self.name} ({self.reason})"


def open_model(
    name_or_path: str | Path,
    backend: str = "auto",
    device: str | None = None,
    torch_options: Sequence[str] = (),
    tile: int | None = None,
    max_memory: float | None = None,
    overlap: int | None = None,
) -> Backend:
    """Load a model (shipped name, model file, run folder or ``.onnx`` file) on ``backend``.

    ``torch_options``: names of the options given that ``auto`` leaves to PyTorch (e.g.
    ``["--tta"]``). ``tile``, ``max_memory`` and ``overlap``: the tiling (None: the defaults).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    tiling = {k: v for k, v in (("max_memory", max_memory), ("overlap", overlap)) if v is not None}
    name = str(name_or_path)
    is_onnx_file = Path(name).suffix.lower() == ".onnx"
    if backend == "torch" and is_onnx_file:
        raise ConfigError(f"{name} is an ONNX file: run it with --backend onnx (or auto)")
    if backend == "onnx" or is_onnx_file:
        if device not in (None, "cpu"):
            raise ConfigError(
                f"the ONNX backend runs on the CPU: drop --device {device}, or use --backend torch"
            )
        if is_onnx_file:
            return Backend(_onnx(Path(name), tile, tiling), "onnxruntime", "an .onnx model file")
        zoo = _shipped_onnx(name)
        if zoo is None:
            raise ModelLoadError(
                f"{name}: the ONNX backend takes an .onnx file or a shipped model with a "
                "model.onnx; export this model with `restorekit export` and pass the .onnx file"
            )
        model, stale = _load_shipped_onnx(zoo, tile, tiling)
        if stale:
            raise ModelLoadError(stale)
        return Backend(model, "onnxruntime", "--backend onnx: shipped model.onnx")
    if backend == "torch":
        return Backend(_torch(name, device, tile, tiling), "torch", "--backend torch")
    reason = _why_torch(name, device, torch_options)
    if reason is None:
        zoo = _shipped_onnx(name)
        assert zoo is not None
        model, reason = _load_shipped_onnx(zoo, tile, tiling)
        if reason is None:
            return Backend(model, "onnxruntime", f"shipped model.onnx, {_measured(zoo)}")
    return Backend(_torch(name, device, tile, tiling), "torch", reason)


def _why_torch(name: str, device: str | None, torch_options: Sequence[str]) -> str | None:
    """Why ``auto`` runs PyTorch (before loading anything), or None to try ONNX Runtime."""
    if torch_options:
        return f"{', '.join(torch_options)} given"
    if device not in (None, "cpu"):
        return f"--device {device}"
    zoo = _shipped_onnx(name)
    if zoo is None:
        return "not a shipped model with a model.onnx"
    if zoo.measured_backend == "torch":
        return _measured(zoo)
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed: pip install 'restorekit[onnx]'"
    if device is None:
        import torch

        if torch.cuda.is_available():
            return "a GPU is available"
    return None


def _measured(zoo: ZooModel) -> str:
    """Why the measurements favour the backend ``auto`` takes for ``zoo``, in words."""
    speed = zoo.speed
    if not speed:
        return "measured fastest on CPU"
    rates = speed["megapixels_per_s"]
    faster, slower = ("channels_last", "onnxruntime")
    if speed["fastest_cpu_backend"] != "torch":
        faster, slower = slower, faster
    other = {"channels_last": "PyTorch", "onnxruntime": "ONNX Runtime"}[slower]
    return (
        f"measured faster for this model on CPU: {rates[faster]:.3g} vs {rates[slower]:.3g} "
        f"MP/s for {other} at {speed['image']}"
    )


def _shipped_onnx(name: str) -> ZooModel | None:
    """The shipped model ``name`` if it has a ``model.onnx`` (a local path is never shipped)."""
    zoo = None if Path(name).exists() else shipped_model(name)
    return zoo if zoo is not None and zoo.onnx.is_file() else None


def _load_shipped_onnx(
    zoo: ZooModel, tile: int | None, tiling: dict
) -> tuple[ArrayModel, str | None]:
    """The shipped ``model.onnx`` loaded, and why it does not hold the shipped weights (None
    when it does: its ``weights_sha256`` is the SHA-256 of ``model.safetensors``)."""
    model = _onnx(zoo.onnx, tile, tiling)
    exported = getattr(model, "weights_sha256", None)
    if exported == sha256_file(zoo.weights):
        return model, None
    return model, (
        f"the shipped model.onnx of {zoo.name} was not exported from its model.safetensors "
        f"(weights_sha256 {(exported or 'missing')[:12]}); regenerate it: "
        + REGENERATE.format(name=zoo.name)
    )


def onnx_status(zoo: ZooModel) -> str:
    """A shipped model's ``model.onnx`` in words: current, stale (and the command that
    regenerates it), missing, or unchecked (without ONNX Runtime)."""
    if not zoo.onnx.is_file():
        return f"no model.onnx; write it: {REGENERATE.format(name=zoo.name)}"
    size = f"{zoo.onnx.stat().st_size / 1e6:.1f} MB"
    if importlib.util.find_spec("onnxruntime") is None:
        return f"model.onnx ({size}; not checked: onnxruntime is not installed)"
    stale = _load_shipped_onnx(zoo, None, {})[1]
    if stale:
        return stale
    if zoo.measured_backend == "torch":
        return (
            f"model.onnx ({size}), exported from these weights: --backend onnx uses it "
            "(auto takes PyTorch, measured faster for this model)"
        )
    return f"model.onnx ({size}), exported from these weights: --backend auto uses it"


def _onnx(path: Path, tile: int | None, tiling: dict) -> ArrayModel:
    from restorekit.infer.onnx_backend import load_onnx_model

    return load_onnx_model(path, tile=tile, **tiling)


def _torch(name: str, device: str | None, tile: int | None, tiling: dict) -> ArrayModel:
    from restorekit.infer.model import load_model

    return load_model(name, device, tile=tile, **tiling)
