"""Which backend runs a model: PyTorch or ONNX Runtime (``--backend auto|torch|onnx``).

``auto`` (the command line's default) takes the fastest measured path. ONNX Runtime is faster
than channels_last PyTorch on the CPU for most models measured by ``benchmarks/inference.py``,
but not for all, so a shipped model's own measurement decides when it has one (``speed.json``,
written by ``benchmarks/inference.py --record-zoo``; the figures are printed with the choice).
``auto`` picks ONNX Runtime when

* the model is an ``.onnx`` file, or a shipped model (its ONNX graph is exported from the
  shipped weights on first use and cached, keyed by their SHA-256:
  :mod:`restorekit.infer.onnx_cache`),
* ONNX Runtime imports (and, until the export is cached, the ``onnx`` package),
* the shipped model's ``speed.json``, if any, measured ONNX Runtime faster than PyTorch,
* no option is given that ``auto`` leaves to PyTorch (self-ensemble / TTA, stacks: given by the
  caller as ``torch_options``) and the device is the CPU (``device`` None or "cpu"; with None,
  PyTorch would take a GPU when there is one, so a GPU also means PyTorch);

else PyTorch. An ``.onnx`` file always runs on ONNX Runtime. ``torch`` and ``onnx`` force the
backend; ``onnx`` raises an error that says why when it cannot (not an ONNX file nor a shipped
model, a missing package, a device other than the CPU). Both backends share
:class:`restorekit.infer.array_model.ArrayModel`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from restorekit.errors import ConfigError, ModelLoadError
from restorekit.infer.array_model import ArrayModel
from restorekit.infer.onnx_cache import cached_onnx, is_current, onnx_cache_path, why_no_export
from restorekit.io.files import sha256_file
from restorekit.zoo import ZooModel, shipped_model

BACKENDS = ("auto", "torch", "onnx")


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
        zoo = _shipped(name)
        if zoo is None:
            raise ModelLoadError(
                f"{name}: the ONNX backend takes an .onnx file or a shipped model; export this "
                "model with `restorekit export` and pass the .onnx file"
            )
        model = _onnx(cached_onnx(zoo.weights), tile, tiling)
        return Backend(model, "onnxruntime", "--backend onnx: the shipped model's ONNX export")
    if backend == "torch":
        return Backend(_torch(name, device, tile, tiling), "torch", "--backend torch")
    reason = _why_torch(name, device, torch_options)
    if reason is None:
        zoo = _shipped(name)
        assert zoo is not None
        try:
            model = _onnx(cached_onnx(zoo.weights), tile, tiling)
        except ModelLoadError as error:  # e.g. an unwritable cache: PyTorch still runs it
            reason = f"no ONNX export: {error}"
        else:
            return Backend(
                model, "onnxruntime", f"the shipped model's ONNX export, {_measured(zoo)}"
            )
    return Backend(_torch(name, device, tile, tiling), "torch", reason)


def _why_torch(name: str, device: str | None, torch_options: Sequence[str]) -> str | None:
    """Why ``auto`` runs PyTorch (before loading anything), or None to try ONNX Runtime."""
    if torch_options:
        return f"{', '.join(torch_options)} given"
    if device not in (None, "cpu"):
        return f"--device {device}"
    zoo = _shipped(name)
    if zoo is None:
        return "not a shipped model nor an .onnx file"
    if zoo.measured_backend == "torch":
        return _measured(zoo)
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


def _shipped(name: str) -> ZooModel | None:
    """The shipped model ``name`` (a local path is never a shipped model)."""
    return None if Path(name).exists() else shipped_model(name)


def onnx_status(zoo: ZooModel) -> str:
    """A shipped model's ONNX export in words: cached (where), or made on first use."""
    path = onnx_cache_path(zoo.weights)
    use = (
        "--backend onnx uses it (auto takes PyTorch, measured faster for this model)"
        if zoo.measured_backend == "torch"
        else "--backend auto uses it"
    )
    if path.is_file():
        size = f"{path.stat().st_size / 1e6:.1f} MB"
        return f"exported from these weights, cached at {path} ({size}); {use}"
    missing = why_no_export()
    if missing:
        return f"not exported yet ({missing}); PyTorch runs it"
    return f"exported from these weights on first use into {path.parent}; {use}"


def _onnx(path: Path, tile: int | None, tiling: dict) -> ArrayModel:
    from restorekit.infer.onnx_backend import load_onnx_model

    return load_onnx_model(path, tile=tile, **tiling)


def _torch(name: str, device: str | None, tile: int | None, tiling: dict) -> ArrayModel:
    from restorekit.infer.model import load_model

    return load_model(name, device, tile=tile, **tiling)
