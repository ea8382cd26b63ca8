"""Network architectures, built by name from a small explicit registry.

Every network maps N x C x H x W float tensors to N x C x (s H) x (s W) tensors, with s its
``scale`` attribute (1 when absent: same size), and exposes ``size_multiple``: the number H and
W must be divisible by (inference pads to it).

Registered names and their ``build_net`` keyword arguments:

- ``unet-n2n``: the Noise2Noise U-Net (``in_channels=3``, ``out_channels=3``, ``features=48``);
  size_multiple 32.
- ``unet-ne2ne``: the Neighbor2Neighbor authors' U-Net, with their tensor names, so their
  checkpoints load directly (``in_channels=3``, ``out_channels=3``, ``features=48``: 1,259,475
  parameters); transposed-convolution upsampling, leaky ReLU 0.2; size_multiple 32.
- ``edsr``: EDSR super-resolution (``scale=2`` in {2, 3, 4}, ``n_blocks=16``, ``features=64``,
  ``res_scale=1.0``, ``in_channels=3`` in {1, 3}). The paper's large model is
  ``n_blocks=32, features=256, res_scale=0.1``. Output is ``scale`` times larger.
- ``rednet``: RED-Net (``n_layers=30`` in {10, 20, 30}, ``features=64``, ``in_channels=3``);
  same size out, residual; for super-resolution give it the bicubic-upscaled image.
- ``unet-csbdeep``: the CSBDeep U-Net of Noise2Void, 2D or 3D (``in_channels=1``,
  ``out_channels=1``, ``depth=2``, ``features=32``, ``kernel_size=3``, ``convs_per_level=2``,
  ``batch_norm=True``, ``residual=False``, ``blurpool=False``, ``skip_top=True``, ``dims=2``,
  ``independent_channels=False``: true runs each channel as a separate 1-channel image through
  one shared network); N2V2 is ``blurpool=True, skip_top=False``; size_multiple ``2**depth``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from restorekit.errors import ConfigError
from restorekit.nets.edsr import EDSR
from restorekit.nets.rednet import REDNet
from restorekit.nets.unet_csbdeep import UNetCSBDeep
from restorekit.nets.unet_n2n import UNetN2N
from restorekit.nets.unet_ne2ne import UNetNe2Ne

NETS: dict[str, Callable[..., nn.Module]] = {
    "unet-n2n": UNetN2N,
    "unet-ne2ne": UNetNe2Ne,
    "edsr": EDSR,
    "rednet": REDNet,
    "unet-csbdeep": UNetCSBDeep,
}


def build_net(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate the architecture registered as ``name`` with its keyword arguments.

    The arguments of each architecture are listed in this module's docstring; an unknown name
    or argument, or a value outside the allowed choices, raises ``ConfigError``.
    """
    if name not in NETS:
        raise ConfigError(f"unknown architecture {name!r}; known: {', '.join(sorted(NETS))}")
    try:
        return NETS[name](**kwargs)
    except TypeError as error:
        raise ConfigError(f"bad arguments for architecture {name!r}: {error}") from None


__all__ = ["EDSR", "NETS", "REDNet", "UNetCSBDeep", "UNetN2N", "UNetNe2Ne", "build_net"]
