"""The CSBDeep U-Net of Noise2Void (Weigert et al. 2018; Krull et al. 2019) and N2V2's changes.

2D or 3D convolutions (``dims``). Each of the ``depth`` encoder levels runs ``convs_per_level``
convolutions with ``features * 2**level`` channels (conv, optional batch norm, ReLU), keeps the
result as a skip connection and halves the size. The middle runs ``convs_per_level`` convolutions
at ``features * 2**depth`` channels, the last one narrowing to the channels of the level above;
each decoder level upsamples (nearest neighbour), concatenates the skip and runs
``convs_per_level`` convolutions, the last one narrowing again. A 1x1 convolution gives the linear
output; ``residual`` adds the input (in = out channels only).

N2V2 (Hoeck et al. 2022) against checkerboard artefacts: ``blurpool`` downsamples by a max-pool of
stride 1 followed by a [1, 2, 1] binomial blur of stride 2 (max-blur-pool) instead of a 2x
max-pool, and ``skip_top=False`` drops the skip connection of the top (full-resolution) level.

``independent_channels`` (careamics' name): the convolutions take and give 1 channel and
``forward`` folds the channels into the batch, N x C x ... -> (N*C) x 1 x ..., so one network
with shared weights denoises each channel as a separate grey image and never mixes them; the
output is reshaped back to N x C x ... (``residual`` adds each channel's own input).

Input: N x in_channels x H x W (or D x H x W) float32 with every spatial size a multiple of
``2**depth`` (``size_multiple``; inference pads). Output: the same size, out_channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from restorekit.errors import ConfigError

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_BATCH_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_MAX_POOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}


class ConvBlock(nn.Sequential):
    """Convolution ('same' padding), optional batch norm, ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, batch_norm: bool, dims: int
    ) -> None:
        layers: list[nn.Module] = [
            _CONV[dims](
                in_channels,
                out_channels,
                kernel_size,
                padding=kernel_size // 2,
                bias=not batch_norm,
            )
        ]
        if batch_norm:
            layers.append(_BATCH_NORM[dims](out_channels))
        layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def conv_stack(
    in_channels: int, widths: list[int], kernel_size: int, batch_norm: bool, dims: int
) -> nn.Sequential:
    """Consecutive :class:`ConvBlock` with the given output channel counts."""
    blocks = []
    for width in widths:
        blocks.append(ConvBlock(in_channels, width, kernel_size, batch_norm, dims))
        in_channels = width
    return nn.Sequential(*blocks)


class MaxBlurPool(nn.Module):
    """Anti-aliased 2x downsampling (Zhang 2019): max-pool of size 2, stride 1, then a binomial
    [1, 2, 1] blur of stride 2 per channel. Edges are replicated; halves even sizes exactly."""

    kernel: torch.Tensor  # buffer

    def __init__(self, channels: int, dims: int) -> None:
        super().__init__()
        self.dims = dims
        taps = torch.tensor([1.0, 2.0, 1.0]) / 4
        kernel = taps
        for _ in range(dims - 1):
            kernel = kernel.unsqueeze(-1) * taps
        self.register_buffer(
            "kernel", kernel.expand(channels, 1, *kernel.shape).clone(), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 1) * self.dims, mode="replicate")
        x = (F.max_pool2d if self.dims == 2 else F.max_pool3d)(x, 2, stride=1)
        x = F.pad(x, (1, 1) * self.dims, mode="replicate")
        conv = F.conv2d if self.dims == 2 else F.conv3d
        return conv(x, self.kernel.to(x.dtype), stride=2, groups=x.shape[1])


class UNetCSBDeep(nn.Module):
    """The CSBDeep U-Net; with ``independent_channels`` it runs N x C x ... as (N*C) x 1 x ...."""

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        depth: int = 2,
        features: int = 32,
        kernel_size: int = 3,
        convs_per_level: int = 2,
        batch_norm: bool = True,
        residual: bool = False,
        blurpool: bool = False,
        skip_top: bool = True,
        dims: int = 2,
        independent_channels: bool = False,
    ) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ConfigError(f"UNetCSBDeep dims must be 2 or 3, got {dims}")
        if depth < 1 or convs_per_level < 1 or features < 1 or kernel_size % 2 == 0:
            raise ConfigError(
                "UNetCSBDeep needs depth >= 1, convs_per_level >= 1, features >= 1 and an odd "
                f"kernel_size; got {depth}, {convs_per_level}, {features}, {kernel_size}"
            )
        if residual and in_channels != out_channels:
            raise ConfigError(
                f"a residual UNetCSBDeep needs in_channels == out_channels, got {in_channels} "
                f"and {out_channels}; set residual to false"
            )
        if independent_channels and in_channels != out_channels:
            raise ConfigError(
                f"independent_channels needs in_channels == out_channels, got {in_channels} and "
                f"{out_channels}"
            )
        self.dims, self.residual, self.skip_top = dims, residual, skip_top
        self.independent_channels = independent_channels
        if independent_channels:  # each channel is a separate 1-channel image
            in_channels = out_channels = 1
        self.size_multiple = 2**depth
        k, bn, n = kernel_size, batch_norm, convs_per_level

        def width(level: int) -> int:
            return features * 2**level

        self.encoder = nn.ModuleList()
        self.down = nn.ModuleList()
        channels = in_channels
        for level in range(depth):
            self.encoder.append(conv_stack(channels, [width(level)] * n, k, bn, dims))
            channels = width(level)
            self.down.append(MaxBlurPool(channels, dims) if blurpool else _MAX_POOL[dims](2))
        narrow = width(max(0, depth - 1))
        self.middle = conv_stack(channels, [width(depth)] * (n - 1) + [narrow], k, bn, dims)
        channels = narrow

        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.decoder = nn.ModuleList()  # deepest level first
        for level in reversed(range(depth)):
            skip = width(level) if (level > 0 or skip_top) else 0
            widths = [width(level)] * (n - 1) + [width(max(0, level - 1))]
            self.decoder.append(conv_stack(channels + skip, widths, k, bn, dims))
            channels = widths[-1]
        self.head = _CONV[dims](channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = x.shape[2:]
        if len(spatial) != self.dims:
            raise ValueError(
                f"UNetCSBDeep with dims={self.dims} needs N x C x {'D x ' * (self.dims - 2)}H x W "
                f"input, got shape {tuple(x.shape)}"
            )
        if any(s % self.size_multiple for s in spatial):
            raise ValueError(
                f"UNetCSBDeep needs spatial sizes that are multiples of {self.size_multiple}, "
                f"got {'x'.join(map(str, spatial))}; pad the input (restorekit.infer does this)"
            )
        if self.independent_channels:  # N x C x ... -> (N*C) x 1 x ...: channels never mix
            out = self._body(x.reshape(-1, 1, *spatial))
            out = out.reshape(-1, x.shape[1], *spatial)
        else:
            out = self._body(x)
        return out + x if self.residual else out

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for encode, down in zip(self.encoder, self.down, strict=True):
            h = encode(h)
            skips.append(h)
            h = down(h)
        h = self.middle(h)
        for level, decode in zip(reversed(range(len(skips))), self.decoder, strict=True):
            h = self.up(h)
            skip = skips[level]
            if level > 0 or self.skip_top:
                h = torch.cat([h, skip], dim=1)
            h = decode(h)
        return self.head(h)
