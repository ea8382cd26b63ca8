"""ONNX exports of shipped models, made on first use and kept in a per-user cache.

The repository ships each model once, as ``model.safetensors``; its ONNX graph (for the ONNX
Runtime backend, measured faster than PyTorch on the CPU for most shipped models) is exported
from those weights the first time it is needed and kept at
``CACHE/onnx/<SHA-256 of model.safetensors>.onnx``. The key is the weights' digest, so new
weights never meet an old graph; a cached file whose ``weights_sha256`` metadata does not match
its name (damaged, or written by hand) is exported again.

``CACHE`` is ``$RESTOREKIT_CACHE`` when set, else ``$XDG_CACHE_HOME/restorekit``, else
``~/.cache/restorekit``. Exporting needs PyTorch and the ``onnx`` package
(``pip install 'restorekit[onnx]'``); running the cached file needs only ONNX Runtime.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from restorekit.errors import ModelLoadError
from restorekit.io import sha256_file

CACHE_ENV = "RESTOREKIT_CACHE"


def cache_dir() -> Path:
    """The per-user cache folder (see the module docstring); not created here."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "restorekit"


def onnx_cache_path(weights: str | Path) -> Path:
    """Where the ONNX export of the model file ``weights`` is (or will be) cached."""
    return cache_dir() / "onnx" / f"{sha256_file(weights)}.onnx"


def why_no_export() -> str | None:
    """Why an ONNX export cannot be made here (a missing package, in words), or None."""
    for package in ("onnx", "onnxruntime"):
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed: pip install 'restorekit[onnx]'"
    return None


def is_current(path: Path, weights_sha256: str) -> bool:
    """Whether ``path`` is an ONNX file exported from weights with this SHA-256."""
    if not path.is_file():
        return False
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - a damaged file of any kind is simply exported again
        return False
    return {p.key: p.value for p in graph.metadata_props}.get("weights_sha256") == weights_sha256


def cached_onnx(weights: str | Path) -> Path:
    """The ONNX export of ``weights`` (a restorekit model file), exported now if not cached.

    Raises :class:`ModelLoadError` naming the cause and the fix when the export cannot be
    made (a missing package, an unwritable cache folder); the export itself is checked against
    PyTorch (:func:`restorekit.infer.onnx_export.export_onnx`).
    """
    weights = Path(weights)
    missing = why_no_export()
    if missing:
        raise ModelLoadError(f"cannot export {weights} to ONNX: {missing}")
    digest = sha256_file(weights)
    path = cache_dir() / "onnx" / f"{digest}.onnx"
    if is_current(path, digest):
        return path
    from restorekit.infer.onnx_export import export_onnx

    try:
        export_onnx(weights, path)
    except OSError as error:
        raise ModelLoadError(
            f"cannot write the ONNX export of {weights} to {path} ({error.strerror or error}); "
            f"set {CACHE_ENV} to a writable folder, or use --backend torch"
        ) from None
    return path
