"""restorekit: image restoration in PyTorch.

Self-supervised denoising (Neighbor2Neighbor, Noise2Noise, Noise2Void), supervised reference
(Noise2Clean) and super-resolution. Images are float32 in [0, 1], channels first, inside the
library; arrays at the edges keep the caller's dtype.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from restorekit.infer.model import RestorationModel

__version__ = "0.1.0"


def load_model(
    name_or_path: str | Path,
    device: str | None = None,
    tile: int | None = None,
    precision: str = "fp32",
) -> RestorationModel:
    """Load a shipped model by name, a model file, or a training run folder.

    The returned model's ``denoise(array)`` takes H x W (x C) uint8, uint16 or float arrays and
    returns the same shape and dtype. ``tile`` (pixels) and ``precision`` ("fp32", "bf16",
    "fp16"): see :class:`restorekit.infer.model.RestorationModel`. Importing restorekit itself
    does not import torch.
    """
    from restorekit.infer.model import load_model as _load

    return _load(name_or_path, device, tile=tile, precision=precision)


__all__ = ["__version__", "load_model"]
