"""How a model file stores its weights compactly, and how they are read back as float tensors.

Storages (``STORAGES``), chosen when a model is written (``save_model(..., storage=...)``):

- ``float32``: as trained.
- ``float16``: every floating-point tensor in float16 (half the bytes).
- ``int8``: the convolution weights in int8 with one float32 scale per output channel
  (symmetric: ``weight = code * scale``, ``scale = max |weight| / 127`` over the slice), about a
  quarter of the float32 bytes; kept in float16: the first and the last convolution in the
  network's module order (they read and write the image, where rounding shows most), weights of
  fewer than ``int8_min_values`` values (default :data:`MIN_INT8_VALUES`; a U-Net measured to
  be sensitive at full resolution raises it so that only its large, low-resolution convolutions
  are rounded: ``n2v-bsd68`` uses 300,000), and every other floating-point tensor (biases,
  batch-norm statistics). The scale of tensor ``NAME`` is stored as ``NAME`` +
  :data:`SCALE_SUFFIX`, so the file stays a plain safetensors file.

Reading (:func:`dequantize`) turns int8 codes back into float32 weights and drops the scales;
loading into a network upcasts float16 to the network's float32, so a storage never changes how
a model runs, only (within rounding) its weights. The zoo measures the change of every figure
after a change of storage (``scripts/reevaluate_zoo.py``) and keeps it under 0.005 dB.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Storage = Literal["float32", "float16", "int8"]
STORAGES: tuple[Storage, ...] = ("float32", "float16", "int8")

SCALE_SUFFIX = ".int8_scale"
"""Suffix of the tensor holding the per-output-channel scales of an int8-stored weight."""

MIN_INT8_VALUES = 1024
"""Smaller weights stay float16: their int8 saving is a few hundred bytes."""


def int8_weight_names(net: nn.Module, int8_min_values: int = MIN_INT8_VALUES) -> set[str]:
    """State-dict names of the weights the ``int8`` storage rounds to int8 (see the module)."""
    convolutions = [
        (name, module)
        for name, module in net.named_modules()
        if isinstance(module, nn.modules.conv._ConvNd)
    ]
    inner = convolutions[1:-1]
    return {
        f"{name}.weight" if name else "weight"
        for name, module in inner
        if module.weight.numel() >= int8_min_values
    }


def stored_tensors(
    net: nn.Module, storage: Storage, int8_min_values: int = MIN_INT8_VALUES
) -> dict[str, torch.Tensor]:
    """``net``'s state dict as ``storage`` writes it (CPU, contiguous); integer buffers kept."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    if storage == "float32":
        return tensors
    rounded = int8_weight_names(net, int8_min_values) if storage == "int8" else set()
    stored: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        if name in rounded:
            stored[name], stored[name + SCALE_SUFFIX] = quantize_int8(tensor.float())
        elif tensor.is_floating_point():
            stored[name] = tensor.to(torch.float16)
        else:
            stored[name] = tensor
    return stored


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 codes of ``weight`` and the float32 scale of each slice along dim 0."""
    peak = weight.flatten(1).abs().amax(dim=1)
    scale = torch.where(peak > 0, peak / 127, torch.ones_like(peak))
    codes = (weight / scale.view(-1, *[1] * (weight.dim() - 1))).round().clamp(-127, 127)
    return codes.to(torch.int8).contiguous(), scale.contiguous()


def dequantize(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of a stored file as a state dict: int8 weights with their scale become
    float32 (``code * scale``), the scales themselves dropped; everything else unchanged."""
    result = {k: v for k, v in tensors.items() if not k.endswith(SCALE_SUFFIX)}
    for key, scale in tensors.items():
        if not key.endswith(SCALE_SUFFIX):
            continue
        name = key[: -len(SCALE_SUFFIX)]
        codes = tensors.get(name)
        if codes is None or codes.dtype != torch.int8 or scale.numel() != codes.shape[0]:
            # Left as they are: the state-dict check then names the tensor as unexpected.
            result[key] = scale
            continue
        result[name] = codes.float() * scale.float().view(-1, *[1] * (codes.dim() - 1))
    return result


def is_scale(name: str) -> bool:
    """Whether ``name`` is the scale tensor of an int8-stored weight (not a parameter)."""
    return name.endswith(SCALE_SUFFIX)
