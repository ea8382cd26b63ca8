"""The U-Net of Noise2Noise (Lehtinen et al. 2018), as used by Neighbor2Neighbor.

Five 2x max-pool levels, ``features`` channels in the encoder and twice that in the decoder,
nearest-neighbour upsampling, skip connections by concatenation, leaky ReLU (0.1), a linear
output layer. Input: N x in_channels x H x W with H and W multiples of 32 (the inference code
pads). Output: same size, out_channels. With 48 features and RGB it has about 1.0 M parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from restorekit.nets.sizes import check_size_multiple


def _conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)
    )


class UNetN2N(nn.Module):
    size_multiple = 32

    def __init__(self, in_channels: int = 3, out_channels: int = 3, features: int = 48) -> None:
        super().__init__()
        f = features
        self.enc0 = nn.Sequential(_conv(in_channels, f), _conv(f, f))  # full resolution
        # enc1..enc5 each follow a pool; the deepest one also runs after the fifth pool.
        self.enc = nn.ModuleList([_conv(f, f) for _ in range(5)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        # Decoder, deepest first: (channels after concatenation) -> 2f.
        self.dec = nn.ModuleList(
            [nn.Sequential(_conv(2 * f, 2 * f), _conv(2 * f, 2 * f))]
            + [nn.Sequential(_conv(3 * f, 2 * f), _conv(2 * f, 2 * f)) for _ in range(3)]
        )
        self.head = nn.Sequential(
            _conv(2 * f + in_channels, 64), _conv(64, 32), nn.Conv2d(32, out_channels, 3, padding=1)
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0.1)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_size_multiple(x, self.size_multiple, "UNetN2N")
        skips = [x]
        h = self.pool(self.enc0(x))  # 1/2
        skips.append(h)
        for level in range(4):  # 1/4 .. 1/32
            h = self.pool(self.enc[level](h))
            if level < 3:
                skips.append(h)
        h = self.enc[4](h)  # bottleneck at 1/32
        for dec in self.dec:  # back up to 1/2
            h = dec(torch.cat([self.up(h), skips.pop()], dim=1))
        return self.head(torch.cat([self.up(h), skips.pop()], dim=1))
