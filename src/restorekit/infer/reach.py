"""How far a network looks: the receptive-field radius that sets the overlap of tiles.

Tiled prediction equals whole-image prediction when every output pixel that gets a weight comes
from a tile holding all the input it depends on (:mod:`restorekit.infer.tiling`: the overlap
must be 8/3 of that reach). The reach differs by three orders of magnitude between the shipped
architectures (the N2N U-Net's five poolings: 128 pixels; EDSR-baseline: 36; a 3-layer conv
chain: 3), so one default overlap either wastes most of each tile or breaks the equality.

It is measured, not derived from the layers: the gradient of a block of output pixels at the
centre of a probe with respect to the input is non-zero exactly where that input reaches the
block (every pooling, skip and upsampling included) along paths that the probe's activations
leave open. The block is one size multiple wide, so every position on the pooling grid is
covered, and its output is weighted by random signs so no two paths cancel; several random
probes run at once so that a path closed by an inactive ReLU on one is open on another. Thin
probes, one per spatial axis (long on that axis, :data:`PROBE_DEPTH` deep on the others), keep
the cost low; a probe whose gradient reaches its own border is doubled.
"""

from __future__ import annotations

import torch
from torch import nn

from restorekit.infer.tiling import round_up

FIRST_PROBE = 128
"""First probe length in input pixels, at least 16 size multiples (doubled while the gradient
reaches the probe's border)."""

LONGEST_PROBE = 4096
"""Longest probe tried; for a network that reaches further the reach seen on it (at most half
its length) is returned, an underestimate."""

PROBE_DEPTH = 8
"""Probe side on the other spatial axes (rounded up to the size multiple)."""

PROBES = 2
"""Random probes run together (one uniform in [0, 1], one normal): their gradients' union
counts, so that a path closed by an inactive ReLU on one probe is found on another."""


def measure_reach(
    net: nn.Module, in_channels: int, size_multiple: int, dims: int = 2, net_scale: int = 1
) -> int | None:
    """Largest distance, in input pixels along any spatial axis, between an output pixel and an
    input pixel it depends on (the receptive-field radius; 0 for a per-pixel network).

    ``net`` maps N x ``in_channels`` x *spatial to N x C' x *(``net_scale`` x spatial);
    spatial sides must be multiples of ``size_multiple``. Runs the network on float32 probes
    (its parameters' device and dtype), batch norm and dropout as currently set (call
    ``net.eval()`` first). None when no input reaches the output at all (a constant network, or
    every path closed on every probe): the reach is then unknown.
    """
    generator = torch.Generator().manual_seed(0)
    depth = round_up(PROBE_DEPTH, size_multiple)
    reach: int | None = None
    for axis in range(dims):
        length = max(FIRST_PROBE, 16 * size_multiple)
        while True:
            length = round_up(length, size_multiple)
            shape = [length if a == axis else depth for a in range(dims)]
            found, touches_border = _probe_axis(
                net, in_channels, shape, axis, size_multiple, net_scale, generator
            )
            if not touches_border or length >= LONGEST_PROBE:
                break
            length *= 2
        if found is not None:
            reach = max(reach or 0, found)
    return reach


def _probe_axis(
    net: nn.Module,
    in_channels: int,
    shape: list[int],
    axis: int,
    size_multiple: int,
    net_scale: int,
    generator: torch.Generator,
) -> tuple[int | None, bool]:
    """Reach along spatial ``axis`` on probes of spatial ``shape`` (None: no gradient at all),
    and whether the gradient reaches the probe's first or last pixel along ``axis`` (then the
    probe was too short)."""
    parameter = next(net.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    dims, length = len(shape), shape[axis]
    uniform = torch.rand(PROBES // 2, in_channels, *shape, generator=generator)
    normal = 0.5 + 0.5 * torch.randn(PROBES // 2, in_channels, *shape, generator=generator)
    probe = torch.cat([uniform, normal]).to(device, dtype).requires_grad_(True)
    start = length // 2 // size_multiple * size_multiple  # the block starts on the pooling grid
    with torch.enable_grad():
        out = net(probe)
        block: list[slice] = [slice(None)] * (2 + dims)
        block[2 + axis] = slice(start * net_scale, (start + size_multiple) * net_scale)
        selected = out[tuple(block)]
        signs = torch.randint(0, 2, selected.shape, generator=generator).to(selected) * 2 - 1
        (gradient,) = torch.autograd.grad((selected * signs).sum(), probe)
    others = [2 + a for a in range(dims) if a != axis] + [0, 1]
    touched = gradient.abs().sum(dim=others).nonzero().flatten().tolist()
    if not touched:
        return None, False
    first, last = touched[0], touched[-1]
    reach = max(start - first, last - (start + size_multiple - 1), 0)
    return reach, first == 0 or last == length - 1
