"""Network architectures, built by name from a small explicit registry.

Every network maps N x C x H x W float tensors to tensors of the same layout and exposes
``size_multiple``: the number H and W must be divisible by (inference pads to it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from restorekit.errors import ConfigError
from restorekit.nets.unet_n2n import UNetN2N

NETS: dict[str, Callable[..., nn.Module]] = {
    "unet-n2n": UNetN2N,
}


def build_net(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate the architecture registered as ``name`` with its keyword arguments."""
    if name not in NETS:
        raise ConfigError(f"unknown architecture {name!r}; known: {', '.join(sorted(NETS))}")
    try:
        return NETS[name](**kwargs)
    except TypeError as error:
        raise ConfigError(f"bad arguments for architecture {name!r}: {error}") from None


__all__ = ["NETS", "UNetN2N", "build_net"]
