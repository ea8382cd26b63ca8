"""Run a torch network on an image: whole (pad to its size multiple, predict without a graph,
crop back) or in blended tiles (:mod:`restorekit.infer.tiling`), and as the NumPy ``Run`` that
the array API calls."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from restorekit.devices import bf16_is_native
from restorekit.errors import ConfigError
from restorekit.infer.tiling import DEFAULT_OVERLAP, Run, tiled_apply
from restorekit.layout import in_layout


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad N x C x H x W at the bottom and right to multiples of ``multiple``.

    Reflect padding as in the Neighbor2Neighbor evaluation; replicate padding where the image is
    too small to reflect (an image can be as small as one pixel).
    """
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not pad_h and not pad_w:
        return x
    while pad_h >= x.shape[-2] or pad_w >= x.shape[-1]:  # reflect needs pad < size
        step_h = min(pad_h, x.shape[-2] - 1)
        step_w = min(pad_w, x.shape[-1] - 1)
        if step_h == 0 and step_w == 0:
            return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        x = F.pad(x, (0, step_w, 0, step_h), mode="reflect")
        pad_h, pad_w = pad_h - step_h, pad_w - step_w
    return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")


@torch.no_grad()
def predict(
    net: nn.Module, x: torch.Tensor, size_multiple: int = 1, channels_last: bool = True
) -> torch.Tensor:
    """``net`` applied to N x C x H x W ``x`` of any size; output cropped to the input's size
    (times the network's scale: an output s times larger is cropped to s H x s W)."""
    height, width = x.shape[-2:]
    padded = pad_to_multiple(x, size_multiple)
    if channels_last:
        padded = in_layout(padded, torch.channels_last)
    out = net(padded)
    scale = out.shape[-1] // padded.shape[-1]
    return out[..., : height * scale, : width * scale].contiguous()


def predict_tiled(
    net: nn.Module,
    x: torch.Tensor,
    size_multiple: int,
    tile: int,
    overlap: int = DEFAULT_OVERLAP,
    scale: int = 1,
    batch_size: int = 1,
    channels_last: bool = True,
) -> torch.Tensor:
    """``net`` on N x C x H x W (or N x C x D x H x W) ``x`` in blended tiles (see the module
    docstring); CPU tensor out.

    Tiles are cut on the CPU and moved to the network's device one batch at a time, so only a
    batch of tiles, never the whole image, has to fit on the device.
    """
    pixels = x.detach().float().cpu().numpy()
    dims = pixels.ndim - 2  # 2: N x C x H x W; 3: N x C x D x H x W volumes
    run = torch_forward(net, channels_last)
    out = tiled_apply(run, pixels, size_multiple, tile, overlap, scale, batch_size, dims)
    return torch.from_numpy(out)


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
"""Inference precisions: the type of the network's weights and activations (in and out of the
network the pixels stay float32; the output layer too: :func:`to_precision`). bf16 on this
project's CPU (Zen 4, AVX512-BF16) ran the U-Net 2.2x and EDSR 2.2x faster than fp32 with half
the working memory; autocast instead (weights kept in fp32) gained 1.7x / 2.0x and needed more
memory than fp32."""

_CONVOLUTIONS = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def to_precision(net: nn.Module, precision: str, probe: torch.Tensor) -> nn.Module:
    """``net`` (float32) in ``precision``, in place, except its output layer: the last
    convolution it runs on ``probe`` (a small float32 input) and every layer run after it stay
    float32, their inputs cast up. A bfloat16 output has 8 bits of mantissa, about one grey
    level of 255 near white: keeping the last layer float32 halved the U-Net's loss on Kodak24
    (4 images, sigma 25: -0.022 dB all bf16, -0.010 dB with the last layer in fp32)."""
    dtype = PRECISIONS[precision]
    if dtype == torch.float32:
        return net
    ran: list[nn.Module] = []
    hooks = [
        module.register_forward_hook(lambda module, args, out: ran.append(module))
        for module in net.modules()
        if next(module.parameters(recurse=False), None) is not None
    ]
    try:
        with torch.no_grad():
            net(probe)
    finally:
        for hook in hooks:
            hook.remove()
    last = max((i for i, m in enumerate(ran) if isinstance(m, _CONVOLUTIONS)), default=len(ran))
    net.to(dtype)
    for module in dict.fromkeys(ran[last:]):
        module.float()
        module.register_forward_pre_hook(_inputs_to_float32)
    return net


def _inputs_to_float32(module: nn.Module, args: tuple) -> tuple:
    return tuple(a.float() if isinstance(a, torch.Tensor) else a for a in args)


def torch_forward(net: nn.Module, channels_last: bool = True) -> Run:
    """``net`` as a :data:`Run`: a NumPy batch moved to the network's device and weight type
    (NHWC when ``channels_last`` and 2D), run without a graph, float32 NumPy on the CPU out."""
    parameter = next(net.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32

    @torch.no_grad()
    def run(batch: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(device, dtype)
        if channels_last and tensor.ndim == 4:
            tensor = in_layout(tensor, torch.channels_last)
        return net(tensor).float().cpu().numpy()

    return run


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision this device cannot run well, saying which it can: fp16 needs a GPU;
    bf16 on a CPU needs native bfloat16 (AVX512-BF16 or AMX; emulated it is slower than fp32)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if device.type == "cpu" and precision == "fp16":
        raise ConfigError("fp16 inference is for GPUs; on a CPU use bf16 (or fp32)")
    if device.type == "cpu" and precision == "bf16" and not cpu_has_native_bf16():
        raise ConfigError(
            "this CPU has no native bfloat16 (AVX512-BF16 or AMX): bf16 would be slower than "
            "fp32 here; use fp32"
        )


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (AVX512-BF16 or AMX)."""
    return bf16_is_native(torch.device("cpu"))
