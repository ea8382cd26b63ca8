"""Run a network on a whole image: pad to its size multiple, predict without a graph, crop back."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
        padded = padded.contiguous(memory_format=torch.channels_last)
    out = net(padded)
    scale = out.shape[-1] // padded.shape[-1]
    return out[..., : height * scale, : width * scale].contiguous()
