"""The U-Net of Neighbor2Neighbor (Huang et al. 2021), layer for layer as the authors' code.

Same tensor names and shapes as the official ``arch_unet.UNet`` (without its blind-spot
option, which Neighbor2Neighbor does not use), so the authors' checkpoints load directly
(see :mod:`restorekit.nets.official`). It differs from the Noise2Noise U-Net
(:mod:`restorekit.nets.unet_n2n`) in its upsampling, activation and output stage.

Input: N x in_channels x H x W, float in [0, 1], H and W multiples of 32 (the inference code
pads). Output: same size, out_channels: the clean image itself (no residual, not clipped).

Layout, with the state-dict names:

- encoder: ``enc_conv0``, ``enc_conv1`` (3x3, in_channels -> features -> features), then five
  times 2x2 max pooling, each pool but the last followed by one 3x3 conv ``enc_conv2`` ..
  ``enc_conv5``; ``enc_conv6`` at 1/32 resolution;
- decoder: ``up5`` .. ``up1``, each a 2x2 stride-2 transposed convolution with bias
  (``up{k}.deconv``) concatenated with the encoder tensor of that resolution (the input itself
  at full resolution); ``dec_conv{k}a``/``b``: 3x3 convs to 2 x features;
- output: ``dec_conv1a``, ``dec_conv1b`` (3x3, to 96 channels: fixed, as in the authors' code),
  ``nin_a``, ``nin_b`` (1x1, 96) and the linear 1x1 ``nin_c`` (96 -> out_channels).

Every conv but ``nin_c`` is followed by leaky ReLU with slope 0.2. RGB with 48 features has
1,259,475 parameters.

Initialisation (``init``), zero biases either way:

- ``"he"`` (default): He normal, fan in, with the gain of leaky ReLU 0.2;
- ``"authors"``: the authors' code's, He normal (fan in, ReLU gain) scaled by 0.1. It shrinks the
  signal about tenfold per layer, so the network starts near zero and learns slowly at first:
  measured here with Neighbor2Neighbor's loss (sigma 25, 128-pixel BSD200_train patches, batch
  4, Adam 3e-4, 2 threads; PSNR of a 128 x 128 kodim03 crop whose noisy PSNR is 20.24 dB) it
  gave 20.8 / 22.0 / 22.5 dB after 100 / 300 / 600 steps, ``"he"`` 25.9 / 27.3 dB after 100 /
  300. The papers' 100 epochs hide this; a CPU or a short GPU window does not.
"""

from __future__ import annotations

import torch
from torch import nn

from restorekit.nets.sizes import check_size_multiple

INITS = ("he", "authors")

HEAD_FEATURES = 96
"""Width of the output stage, fixed (not 2 x features) in the authors' code."""


def _conv(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


class _UpsampleCat(nn.Module):
    """2x transposed convolution, then concatenation with the skip tensor (channels)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(channels, channels, 2, stride=2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.deconv(x), skip], dim=1)


class UNetNe2Ne(nn.Module):
    size_multiple = 32

    def __init__(
        self, in_channels: int = 3, out_channels: int = 3, features: int = 48, init: str = "he"
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise TypeError(f"init {init!r}: one of {', '.join(INITS)}")
        f, g, head = features, 2 * features, HEAD_FEATURES
        self.enc_conv0 = _conv(in_channels, f)
        self.enc_conv1 = _conv(f, f)
        self.enc_conv2 = _conv(f, f)
        self.enc_conv3 = _conv(f, f)
        self.enc_conv4 = _conv(f, f)
        self.enc_conv5 = _conv(f, f)
        self.enc_conv6 = _conv(f, f)
        self.up5 = _UpsampleCat(f)
        self.dec_conv5a = _conv(2 * f, g)
        self.dec_conv5b = _conv(g, g)
        self.up4 = _UpsampleCat(g)
        self.dec_conv4a = _conv(g + f, g)
        self.dec_conv4b = _conv(g, g)
        self.up3 = _UpsampleCat(g)
        self.dec_conv3a = _conv(g + f, g)
        self.dec_conv3b = _conv(g, g)
        self.up2 = _UpsampleCat(g)
        self.dec_conv2a = _conv(g + f, g)
        self.dec_conv2b = _conv(g, g)
        self.up1 = _UpsampleCat(g)
        self.dec_conv1a = _conv(g + in_channels, head)
        self.dec_conv1b = _conv(head, head)
        self.nin_a = _conv(head, head, 1)
        self.nin_b = _conv(head, head, 1)
        self.nin_c = _conv(head, out_channels, 1)
        self.pool = nn.MaxPool2d(2)
        self.act = nn.LeakyReLU(0.2)
        slope, scale = (0.2, 1.0) if init == "he" else (0.0, 0.1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(module.weight, a=slope, mode="fan_in")
                with torch.no_grad():
                    module.weight.mul_(scale)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_size_multiple(x, self.size_multiple, "UNetNe2Ne")
        act, pool = self.act, self.pool
        skips = [x]
        h = pool(act(self.enc_conv1(act(self.enc_conv0(x)))))  # 1/2
        skips.append(h)
        for conv in (self.enc_conv2, self.enc_conv3, self.enc_conv4):  # 1/4, 1/8, 1/16
            h = pool(act(conv(h)))
            skips.append(h)
        h = act(self.enc_conv6(pool(act(self.enc_conv5(h)))))  # 1/32
        decoder = (
            (self.up5, self.dec_conv5a, self.dec_conv5b),
            (self.up4, self.dec_conv4a, self.dec_conv4b),
            (self.up3, self.dec_conv3a, self.dec_conv3b),
            (self.up2, self.dec_conv2a, self.dec_conv2b),
        )
        for up, conv_a, conv_b in decoder:
            h = act(conv_b(act(conv_a(up(h, skips.pop())))))
        h = act(self.dec_conv1b(act(self.dec_conv1a(self.up1(h, skips.pop())))))
        return self.nin_c(act(self.nin_b(act(self.nin_a(h)))))
