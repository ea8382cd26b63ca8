"""RED-Net, the residual encoder-decoder with symmetric skips (Mao, Shen and Yang 2016).

Input: N x C x H x W float images in [0, 1], grey (``in_channels=1``) or RGB; output: the same
shape, not clipped. Any size works (``size_multiple = 1``). For denoising the input is the
noisy image; for super-resolution it is the low-resolution image already upscaled to the
target size with bicubic ``restorekit.degrade.imresize`` (the network never changes the size).

With ``m = n_layers / 2``:

- ``encoder.{k-1}``, k = 1..m: 3x3 conv (stride 1, padding 1) + ReLU; conv 1 maps
  C -> features, the others features -> features. Call the outputs e_1..e_m (e_0 is the input).
- ``decoder.{j-1}``, j = 1..m: 3x3 transposed conv (stride 1, padding 1, so the same size);
  the last maps features -> C. Decoder layer j mirrors encoder output e_{m-j}.
- Symmetric skips every two layers: e_k for even k, 0 < k < m, is added to the output of the
  mirrored decoder layer j = m - k, and the sum goes through the ReLU. The other decoder layers
  are transposed conv + ReLU.
- Residual learning, the skip of e_0: the last decoder layer is linear and predicts the
  residual, which is added to the input. A network whose weights are all zero is the identity.

``skips`` lists the (k, j) pairs, e.g. for RED30 (2, 13), (4, 11), ..., (14, 1). Features: 64
as in the paper's description (the authors' released Caffe models use 128). Parameters with 64
features and RGB: RED10 298,947, RED20 668,227, RED30 1,037,507.
"""

from __future__ import annotations

import torch
from torch import nn

from restorekit.errors import ConfigError

DEPTHS = (10, 20, 30)


class REDNet(nn.Module):
    size_multiple = 1

    def __init__(self, n_layers: int = 30, features: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        if n_layers not in DEPTHS:
            raise ConfigError(f"REDNet n_layers must be one of {DEPTHS}, got {n_layers!r}")
        if features < 1 or in_channels < 1:
            raise ConfigError(
                f"REDNet needs features >= 1 and in_channels >= 1, got {features}, {in_channels}"
            )
        m = n_layers // 2
        widths = [in_channels] + [features] * m  # channels of e_0 .. e_m
        self.encoder = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[k - 1], widths[k], 3, padding=1), nn.ReLU())
            for k in range(1, m + 1)
        )
        # Decoder layer j maps e_{m-j+1}'s width to e_{m-j}'s.
        self.decoder = nn.ModuleList(
            nn.ConvTranspose2d(widths[m - j + 1], widths[m - j], 3, padding=1)
            for j in range(1, m + 1)
        )
        self.skips: tuple[tuple[int, int], ...] = tuple((k, m - k) for k in range(2, m, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoded = [x]  # e_0 .. e_m
        for stage in self.encoder:
            encoded.append(stage(encoded[-1]))
        m = len(self.decoder)
        skip_to = {j: k for k, j in self.skips}
        h = encoded[m]
        for j, deconv in enumerate(self.decoder[:-1], start=1):
            h = deconv(h)
            if j in skip_to:
                h = h + encoded[skip_to[j]]
            h = torch.relu(h)
        return x + self.decoder[-1](h)
