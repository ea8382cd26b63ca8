"""A loaded model ready to apply to arrays: ``restorekit.load_model(name_or_path).denoise(img)``."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from restorekit.descriptor import ModelDescriptor
from restorekit.devices import resolve_device
from restorekit.infer.array_model import ArrayModel
from restorekit.infer.memory import measure_bytes_per_pixel
from restorekit.infer.predict import check_precision, to_precision, torch_forward
from restorekit.infer.reach import measure_reach
from restorekit.infer.tiling import DEFAULT_MAX_MEMORY
from restorekit.layout import in_layout
from restorekit.nets.files import load_model_file
from restorekit.zoo import resolve_model


class RestorationModel(ArrayModel):
    """A PyTorch network with its descriptor. Arrays in, arrays out, in the caller's dtype.

    ``denoise``, ``upscale``, ``denoise_stack`` and ``predict`` (NumPy batches), the tiling
    attributes (``tile``, ``max_memory``, ``overlap``, ``batch_size``) and the normalisation of
    Noise2Void models: see :class:`restorekit.infer.array_model.ArrayModel`, shared with the
    ONNX Runtime backend. ``channels_last``: NHWC input layout for 2D networks (faster on CPU).
    ``precision``: "fp32", "bf16" (on a CPU only with native bfloat16) or "fp16" (GPU): the
    network's weights and activations in that type (:data:`restorekit.infer.predict.PRECISIONS`);
    the tiles are sized from the working memory measured in it.
    """

    def __init__(
        self,
        net: nn.Module,
        descriptor: ModelDescriptor,
        device: str = "cpu",
        tile: int | None = None,
        max_memory: float = DEFAULT_MAX_MEMORY,
        overlap: int | None = None,
        batch_size: int = 1,
        precision: str = "fp32",
    ) -> None:
        dims = descriptor.dims
        self.device = resolve_device(device)
        self.channels_last = dims == 2  # no 5D channels_last
        self.net = net.to(self.device).eval()
        if self.channels_last:
            # Module.to takes memory_format at runtime; torch's overloads of it leave it out
            self.net = self.net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        check_precision(precision, self.device)
        self.precision = precision
        # measured on a CPU float32 copy: exact zeros there, where a GPU's convolution
        # algorithms may leave round-off that would widen the reach and the tiles' overlap
        reach = measure_reach(
            copy.deepcopy(self.net).to("cpu", torch.float32),
            descriptor.in_channels,
            descriptor.size_multiple,
            dims,
            descriptor.net_scale,
        )
        side = descriptor.size_multiple * max(1, 32 // descriptor.size_multiple)
        probe = torch.rand(1, descriptor.in_channels, *[side] * dims, device=self.device)
        if self.channels_last:
            probe = in_layout(probe, torch.channels_last)
        self.net = to_precision(self.net, precision, probe)
        bytes_per_pixel = measure_bytes_per_pixel(
            self.net, descriptor.in_channels, descriptor.size_multiple, dims
        )
        super().__init__(descriptor, bytes_per_pixel, reach, tile, max_memory, overlap, batch_size)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return torch_forward(self.net, self.channels_last)(batch)

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        """:meth:`predict` on a torch tensor: N x C x H x W (volumes N x C x D x H x W) float in
        the model's value range; CPU float32 tensor out."""
        return torch.from_numpy(self.predict(batch.detach().float().cpu().numpy()))


def load_model(
    name_or_path: str | Path,
    device: str | None = None,
    tile: int | None = None,
    max_memory: float = DEFAULT_MAX_MEMORY,
    overlap: int | None = None,
    precision: str = "fp32",
) -> RestorationModel:
    """Load a shipped model by name, a model file, or a training run folder.

    ``device``: "cpu", "cuda", "cuda:1", ...; by default the GPU when there is one. ``tile``,
    ``max_memory`` (bytes), ``overlap`` (pixels; default: from the network's measured reach)
    and ``precision`` ("fp32", "bf16", "fp16"): see :class:`RestorationModel`.
    """
    net, descriptor = load_model_file(resolve_model(name_or_path))
    device = str(resolve_device(device))
    return RestorationModel(net, descriptor, device, tile, max_memory, overlap, 1, precision)
