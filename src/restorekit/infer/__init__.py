"""Inference: loading models and applying them to images of any size."""

from restorekit.infer.model import RestorationModel, load_model
from restorekit.infer.predict import pad_to_multiple, predict

__all__ = ["RestorationModel", "load_model", "pad_to_multiple", "predict"]
