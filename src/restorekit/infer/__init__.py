"""Inference: loading models and applying them to images of any size.

The names below are imported on first use, so that the torch-free modules of this package
(``arrays``, ``tiling``, ``onnx_backend``) can be imported without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from restorekit.lazy import lazy_getattr

if TYPE_CHECKING:
    from restorekit.infer.model import RestorationModel, load_model
    from restorekit.infer.predict import pad_to_multiple, predict

_HOMES = {
    "RestorationModel": "restorekit.infer.model",
    "load_model": "restorekit.infer.model",
    "pad_to_multiple": "restorekit.infer.predict",
    "predict": "restorekit.infer.predict",
}

__getattr__ = lazy_getattr(__name__, _HOMES)

__all__ = ["RestorationModel", "load_model", "pad_to_multiple", "predict"]
