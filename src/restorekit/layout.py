"""Memory layout of image batches: channels-last (NHWC) with its exact strides.

The networks run channels-last on CPUs and GPUs (oneDNN and cuDNN are fastest there). A
one-channel batch is "contiguous" in both layouts, so ``Tensor.contiguous(memory_format=
torch.channels_last)`` leaves it with NCHW strides, and so do tensors made from it by indexing
(Neighbor2Neighbor's sub-images, even in RGB). ``torch.cat`` then gives the U-Nets' skip
concatenations NCHW strides, and each convolution after one reorders its input to NHWC inside
oneDNN, out of sight of the activation probe (:mod:`restorekit.infer.memory`). Measured on this
project's CPU, a 1024 x 1024 tile of the grey N2N U-Net: 1193 MiB and 6.3 s before, 953 MiB and
5.0 s with the exact strides (the RGB network: 970 MiB, 5.2 s).
"""

from __future__ import annotations

import torch


def is_channels_last(tensor: torch.Tensor) -> bool:
    """Whether 4-D ``tensor`` has dense channels-last strides, channel stride 1 included (a
    one-channel NCHW tensor passes ``is_contiguous(memory_format=channels_last)`` but not
    this)."""
    return tensor.stride(1) == 1 and tensor.is_contiguous(memory_format=torch.channels_last)


def in_layout(tensor: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    """``tensor`` in ``memory_format`` (``torch.channels_last`` or ``torch.contiguous_format``):
    a 4-D batch asked for channels-last gets dense channels-last strides even where its layout
    is ambiguous (one channel) or it is a strided or cropped view; other shapes (volumes) come
    out contiguous. Copies only when the memory order must change: a dense one-channel batch
    is the same memory in both layouts and gets a re-strided view."""
    if tensor.dim() != 4:
        return tensor.contiguous()
    if memory_format != torch.channels_last:
        return tensor.contiguous(memory_format=memory_format)
    if is_channels_last(tensor):
        return tensor
    if tensor.size(1) == 1:  # N x H x W x 1 is N x 1 x H x W's memory order
        batch, _, height, width = tensor.shape
        return tensor.contiguous().reshape(batch, height, width, 1).permute(0, 3, 1, 2)
    return tensor.contiguous(memory_format=torch.channels_last)
