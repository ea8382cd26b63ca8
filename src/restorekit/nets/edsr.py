"""EDSR, the enhanced deep residual super-resolution network (Lim et al. 2017).

Input: N x C x h x w low-resolution images, float in [0, 1] (EDSR's ``rgb_range = 1``), RGB
(or grey with ``in_channels=1``). Output: N x C x (scale h) x (scale w), same range, not
clipped. Any size works (``size_multiple = 1``).

Layout, in order, with the tensor-name prefixes of the state dict:

- the DIV2K RGB mean (0.4488, 0.4371, 0.4040) is subtracted (a fixed buffer, not saved; grey
  images use the average of the three, 0.4300);
- ``head``: 3x3 conv, C -> features;
- ``blocks.{i}``: ``n_blocks`` residual blocks ``x + res_scale * conv(relu(conv(x)))``, no
  batch norm;
- ``body_end``: 3x3 conv, then the global skip from the head's output;
- ``upsample``: sub-pixel convolution: 3x3 conv features -> features * s^2 and PixelShuffle(s)
  for s = 2 or 3; two x2 stages for scale 4 (``upsample.0`` and ``upsample.2``);
- ``tail``: 3x3 conv, features -> C; the mean is added back.

Only ``upsample.*`` depends on the scale, so x3 and x4 training can start from x2 weights with
``restorekit.nets.files.load_state_except``. Sizes: EDSR-baseline (16 blocks, 64 features,
res_scale 1) has 1,369,859 parameters at x2 (1,554,499 at x3, 1,517,571 at x4); EDSR (32 blocks,
256 features, res_scale 0.1) x2 has 40,729,603.
"""

from __future__ import annotations

import torch
from torch import nn

from restorekit.errors import ConfigError

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
SCALES = (2, 3, 4)


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class ResBlock(nn.Module):
    """conv-ReLU-conv with a scaled identity skip; no batch norm."""

    def __init__(self, features: int, res_scale: float) -> None:
        super().__init__()
        self.conv1 = _conv3x3(features, features)
        self.conv2 = _conv3x3(features, features)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(torch.relu(self.conv1(x)))


def _upsampler(features: int, scale: int) -> nn.Sequential:
    stages = [2, 2] if scale == 4 else [scale]
    layers: list[nn.Module] = []
    for s in stages:
        layers += [_conv3x3(features, features * s * s), nn.PixelShuffle(s)]
    return nn.Sequential(*layers)


class EDSR(nn.Module):
    size_multiple = 1
    mean: torch.Tensor  # buffer

    def __init__(
        self,
        scale: int = 2,
        n_blocks: int = 16,
        features: int = 64,
        res_scale: float = 1.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ConfigError(f"EDSR scale must be one of {SCALES}, got {scale!r}")
        if in_channels not in (1, 3):
            raise ConfigError(f"EDSR in_channels must be 1 (grey) or 3 (RGB), got {in_channels}")
        if n_blocks < 1 or features < 1 or not res_scale > 0:
            raise ConfigError(
                "EDSR needs n_blocks >= 1, features >= 1 and res_scale > 0, got "
                f"n_blocks={n_blocks}, features={features}, res_scale={res_scale}"
            )
        self.scale = scale
        mean = DIV2K_RGB_MEAN if in_channels == 3 else (sum(DIV2K_RGB_MEAN) / 3,)
        self.register_buffer(
            "mean", torch.tensor(mean).view(1, in_channels, 1, 1), persistent=False
        )
        self.head = _conv3x3(in_channels, features)
        self.blocks = nn.Sequential(*[ResBlock(features, res_scale) for _ in range(n_blocks)])
        self.body_end = _conv3x3(features, features)
        self.upsample = _upsampler(features, scale)
        self.tail = _conv3x3(features, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean.to(x.dtype)
        h = self.head(x - mean)
        h = h + self.body_end(self.blocks(h))
        return self.tail(self.upsample(h)) + mean
