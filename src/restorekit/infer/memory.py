"""How much memory a network's forward pass needs, measured rather than guessed.

Tiled inference sizes its tiles from ``bytes_per_pixel``: the peak working memory of one forward
pass per input pixel (see :func:`restorekit.infer.tiling.choose_tile`). A static rule (widest
layer x a constant) misses what the architecture keeps alive: RED-Net's symmetric skips hold
seven feature maps at once and need 4x the widest-layer figure. So the figure is measured: the
network runs once on a small probe under :class:`PeakActivations`, which adds up the bytes of
every tensor an operator creates while that tensor is alive.

Measured on this project's CPU against the growth of the process's peak resident memory on
large inputs: RED-Net-30 4352 B/px vs 4406, EDSR-baseline x2 2304 vs 2376, N2N U-Net (48
features) 876 vs 954 (channels_last PyTorch). ONNX Runtime (CPU arena on, memory patterns off)
needed 1.17-1.49x PyTorch's figure for the same three networks: :data:`ONNXRUNTIME_FACTOR`.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from restorekit.infer.tiling import round_up
from restorekit.layout import in_layout, is_channels_last

TORCH_FACTOR = 1.15
"""Allowance over the measured activation peak for PyTorch's allocator (measured: 1.01-1.09x)."""

ONNXRUNTIME_FACTOR = 1.6
"""Allowance over the measured activation peak for ONNX Runtime's CPU arena (measured 1.2-1.5x)."""

PROBE_SIDE = 64
"""Probe input side in pixels (rounded up to the size multiple); 16 for volumes."""


class PeakActivations(TorchDispatchMode):
    """Within ``with``, ``peak`` is the most bytes held at once by tensors that operators made.

    Tensors are counted once per storage (views and in-place results share one) and uncounted
    when freed. Inputs, weights and buffers made before the ``with`` are not counted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _release(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor):
                storage = value.untyped_storage()
                key = storage.data_ptr()
                if key and key not in self.live:
                    self.live[key] = storage.nbytes()
                    self.current += storage.nbytes()
                    weakref.finalize(value, self._release, key)
        self.peak = max(self.peak, self.current)
        return out


def measure_bytes_per_pixel(
    net: nn.Module,
    in_channels: int,
    size_multiple: int,
    dims: int = 2,
    factor: float = TORCH_FACTOR,
) -> float:
    """Peak activation bytes of ``net``'s forward pass per input pixel (batch 1), times
    ``factor``; measured on a probe of about :data:`PROBE_SIDE` pixels a side, in the network's
    dtype, device and memory format (pass the network as inference will run it)."""
    side = PROBE_SIDE if dims == 2 else 16
    side = round_up(side, size_multiple)
    parameter = next(net.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    probe = torch.rand(1, in_channels, *[side] * dims, device=device, dtype=dtype)
    if dims == 2 and _is_channels_last(net):
        probe = in_layout(probe, torch.channels_last)
    with torch.inference_mode(), PeakActivations() as counter:
        net(probe)
    return factor * counter.peak / side**dims


def _is_channels_last(net: nn.Module) -> bool:
    weights = [p for p in net.parameters() if p.dim() == 4]
    return bool(weights) and is_channels_last(weights[0])
