"""Value scales of stacks: integer dtypes to [0, 1], then per-channel normalisation (NumPy only).

Torch-free, so that the ONNX Runtime backend (:mod:`restorekit.infer.onnx_backend`) applies the
same normalisation as the PyTorch model, read from the same descriptor record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Normalization:
    """Per-channel ``(x - offset) / scale`` on [0, 1]-scaled data, built from the record that the
    model descriptor stores (``{kind, mean, std}`` or ``{kind, low, high, percentiles}``)."""

    offset: np.ndarray  # C
    scale: np.ndarray  # C

    @classmethod
    def from_record(cls, record: dict) -> Normalization:
        if record["kind"] == "meanstd":
            return cls(
                np.asarray(record["mean"], np.float32), np.asarray(record["std"], np.float32)
            )
        low, high = (np.asarray(record[k], np.float32) for k in ("low", "high"))
        return cls(low, high - low)

    def _shaped(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shape = (len(self.offset),) + (1,) * (x.ndim - 1)
        return self.offset.reshape(shape), self.scale.reshape(shape)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """C x ... float array normalised (channels on the first axis)."""
        offset, scale = self._shaped(x)
        return ((x - offset) / scale).astype(np.float32)

    def undo(self, x: np.ndarray) -> np.ndarray:
        offset, scale = self._shaped(x)
        return (x * scale + offset).astype(np.float32)
