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

FIRST_PROBE = 128
"""First probe length in input pixels (doubled while the gradient reaches the probe's border)."""

LONGEST_PROBE = 4096
"""Longest probe tried; a network that reaches further gets this length as its reach."""

PROBE_DEPTH = 16
"""Probe side on the other spatial axes (rounded up to the size multiple)."""

PROBES = 4
"""Random probes run together (half uniform in [0, 1], half normal): their gradients' union
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
    parameter = next(net.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    generator = torch.Generator().manual_seed(0)
    reach: int | None = None
    for axis in range(dims):
        length = max(FIRST_PROBE, 4 * size_multiple)
        while True:
            length = -(-length // size_multiple) * size_multiple
            axis_reach, touches_border = _probe_axis(
                net, in_channels, size_multiple, dims, net_scale, axis, length, generator,
                device, dtype,
            )  # fmt: skip
            if not touches_border or length >= LONGEST_PROBE:
                break
            length *= 2
        if axis_reach is not None:
            reach = max(reach or 0, axis_reach)
    return reach


def _probe_axis(
    net: nn.Module,
    in_channels: int,
    size_multiple: int,
    dims: int,
    net_scale: int,
    axis: int,
    length: int,
    generator: torch.Generator,
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[int | None, bool]:
    """Reach along spatial ``axis`` on a probe of ``length`` pixels there (None: no gradient at
    all), and whether the gradient reaches the probe's first or last pixel (then the probe was
    too short)."""
    shape = [-(-PROBE_DEPTH // size_multiple) * size_multiple] * dims
    shape[axis] = length
    uniform = torch.rand(PROBES // 2, in_channels, *shape, generator=generator)
    normal = 0.5 + 0.5 * torch.randn(PROBES // 2, in_channels, *shape, generator=generator)
    probe = torch.cat([uniform, normal]).to(device, dtype)
    probe.requires_grad_(True)
    start = length // 2 // size_multiple * size_multiple  # the block starts on the pooling grid
    with torch.enable_grad():
        out = net(probe)
        block = [slice(None), slice(None)] + [slice(None)] * dims
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
