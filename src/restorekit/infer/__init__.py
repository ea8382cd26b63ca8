"""Inference: loading models and applying them to images of any size.

The names below are imported on first use, so that the torch-free modules of this package
(``arrays``, ``tiling``, ``onnx_backend``) can be imported without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from restorekit.infer.model import RestorationModel, load_model
    from restorekit.infer.predict import pad_to_multiple, predict

_HOMES = {
    "RestorationModel": "restorekit.infer.model",
    "load_model": "restorekit.infer.model",
    "pad_to_multiple": "restorekit.infer.predict",
    "predict": "restorekit.infer.predict",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RestorationModel", "load_model", "pad_to_multiple", "predict"]
