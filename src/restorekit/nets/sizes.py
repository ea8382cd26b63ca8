"""The input-size rule the U-Nets share: height and width divisible by their pooling factor."""

from __future__ import annotations

import torch


def check_size_multiple(x: torch.Tensor, multiple: int, name: str) -> None:
    """Raise ValueError (saying that restorekit.infer pads for you) unless the last two axes of
    ``x`` are multiples of ``multiple``."""
    height, width = x.shape[-2:]
    if height % multiple or width % multiple:
        raise ValueError(
            f"{name} needs height and width that are multiples of {multiple}, got "
            f"{height}x{width}; pad the input (restorekit.infer does this for you)"
        )
