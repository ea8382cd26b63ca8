"""The one record of a model's facts: what travels with its weights.

A :class:`ModelDescriptor` is written into every restorekit model file (the safetensors
metadata, see :mod:`restorekit.nets.files`) and, as the same JSON, into every exported ONNX
graph (its metadata key ``restorekit``); both inference backends read their facts from it and
nowhere else. Its defaults live here once. Torch-free.

Conventions: ``scale`` is output size / input size of the model (1 for denoisers; for a
multi-scale upscaler its default scale, ``scales`` all it was trained for);
``upsample_input``: the network gets the bicubic-upscaled image (RED-Net super-resolution), so
the network itself keeps the size (``net_scale`` 1). ``value_range``: the pixel values the
network works on ([0, 1]; stacks: after ``normalization``, the per-channel scaling recorded
from the training data, applied to the input and undone on the output).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError, safe_open

from restorekit.errors import ModelLoadError

METADATA_KEY = "restorekit"
"""The safetensors metadata key (and ONNX metadata key) holding the descriptor's JSON."""


class ModelDescriptor(BaseModel):
    """What travels with the weights, so callers need not guess."""

    model_config = ConfigDict(extra="allow")

    arch: str
    arch_args: dict[str, Any] = Field(default_factory=dict)
    task: Literal["denoise", "upscale"] = "denoise"
    in_channels: int = Field(3, ge=1)
    out_channels: int = Field(3, ge=1)
    scale: int = Field(1, ge=1)
    upsample_input: bool = False
    scales: list[int] = Field(default_factory=list)  # upscale: all it was trained for; [] = [scale]
    size_multiple: int = Field(1, ge=1)
    value_range: tuple[float, float] = (0.0, 1.0)
    noise: str | None = None  # denoise: the noise it was trained for, if simulated
    method: str | None = None
    axes: str | None = None  # stacks: the axes of its training files
    normalization: dict[str, Any] | None = None  # stacks: the per-channel scaling record
    training: dict[str, Any] = Field(default_factory=dict)

    @property
    def trained_scales(self) -> list[int]:
        """The scales an upscaling model works at (several for a multi-scale RED-Net); ``scale``
        is the default one."""
        return self.scales or [self.scale]

    @property
    def net_scale(self) -> int:
        """Output size / input size of the network itself (1 when it gets upscaled input)."""
        return 1 if self.upsample_input else self.scale

    @property
    def dims(self) -> int:
        """Spatial dimensions of the network: 2, or 3 for volumes."""
        return int(self.arch_args.get("dims", 2))

    def chosen_scale(self, scale: int | None, name: str = "") -> int:
        """``scale`` if the model was trained for it, the default scale when None; another
        scale is a :class:`ModelLoadError` that lists the model's scales."""
        if scale is None:
            return self.scale
        if scale not in self.trained_scales:
            listed = "/".join(f"x{s}" for s in self.trained_scales)
            what = name or f"this {self.arch} model"
            raise ModelLoadError(f"{what} upscales {listed}, not x{scale}")
        return scale


def read_descriptor(path: str | Path) -> ModelDescriptor:
    """The descriptor of a restorekit safetensors file (its header only; no torch needed)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as handle:  # the header only
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelLoadError(f"{path}: not a readable safetensors file ({error})") from None
    if METADATA_KEY not in metadata:
        raise ModelLoadError(
            f"{path}: safetensors file without a restorekit descriptor; it was not written by "
            "restorekit (load its state dict yourself and pass a descriptor)"
        )
    try:
        return ModelDescriptor.model_validate(json.loads(metadata[METADATA_KEY]))
    except json.JSONDecodeError as error:
        raise ModelLoadError(f"{path}: malformed restorekit descriptor: {error}") from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg'].lower()} (found {e.get('input')!r})"
            for e in error.errors()
        )
        raise ModelLoadError(
            f"{path}: malformed restorekit descriptor: {problems}; the file was changed after "
            "restorekit wrote it, or written by other code"
        ) from None
