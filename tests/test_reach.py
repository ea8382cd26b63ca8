"""The measured reach (receptive-field radius) of each architecture, and the tile overlap it sets:
input beyond the reach never changes an output pixel, input at the reach does, and tiles at the
overlap it gives match the whole image."""

import numpy as np
import pytest
import torch
from torch import nn

from restorekit.infer import RestorationModel
from restorekit.infer.reach import measure_reach
from restorekit.infer.tiling import DEFAULT_OVERLAP, overlap_for_reach
from restorekit.nets import build_net
from restorekit.nets.files import ModelDescriptor


def conv_chain(layers: int, dims: int = 2, kernel: int = 3, dilation: int = 1) -> nn.Module:
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    pad = dilation * (kernel // 2)
    return nn.Sequential(
        *[conv(2, 2, kernel, padding=pad, dilation=dilation) for _ in range(layers)]
    ).eval()


@pytest.mark.parametrize(
    ("net", "dims", "expected"),
    [
        (conv_chain(3), 2, 3),
        (conv_chain(1, kernel=1), 2, 0),  # per-pixel
        (conv_chain(2, kernel=5, dilation=2), 2, 8),
        (conv_chain(4, dims=3), 3, 4),
    ],
)
def test_reach_of_convolution_chains_is_their_receptive_field_radius(net, dims, expected):
    torch.manual_seed(0)
    assert measure_reach(net, 2, 1, dims) == expected


def test_a_network_that_ignores_its_input_has_no_reach_and_tiles_at_the_default_overlap():
    net = conv_chain(2)
    nn.init.zeros_(net[1].weight)
    assert measure_reach(net, 2, 1) is None
    descriptor = ModelDescriptor(arch="toy", in_channels=2, out_channels=2)
    assert RestorationModel(net, descriptor).overlap == DEFAULT_OVERLAP


def test_overlap_covers_the_reach_with_its_blending_margin():
    assert overlap_for_reach(128, 32) == 352  # the N2N U-Net: 3/8 of 352 = 132 >= 128
    assert overlap_for_reach(36, 1) == 96 and overlap_for_reach(22, 4) == 60
    assert overlap_for_reach(0, 8) == 0
    for reach in range(0, 200, 7):
        overlap = overlap_for_reach(reach, 4)
        assert overlap * 3 / 8 >= reach and (overlap - 4) * 3 / 8 < reach


ARCHS = {
    "unet-n2n": ({"features": 8}, 32, 1),
    "unet-ne2ne": ({"features": 8}, 32, 1),
    "unet-csbdeep": ({"features": 8, "depth": 2, "in_channels": 3, "out_channels": 3}, 4, 1),
    "edsr": ({"scale": 2, "n_blocks": 2, "features": 8}, 1, 2),
    "rednet": ({"n_layers": 10, "features": 8}, 1, 1),
}
WEIGHT_GAIN = {"unet-ne2ne": 10.0}
"""Undoes an initialisation too small for a bitwise test: the Ne2Ne authors' 0.1 x He leaves the
deepest paths of a fresh network below float32 resolution at its output (trained ones are not)."""


@pytest.mark.parametrize("arch", ARCHS)
def test_input_beyond_the_reach_never_changes_the_output(arch):
    arch_args, multiple, scale = ARCHS[arch]
    torch.manual_seed(0)
    net = build_net(arch, **arch_args).eval()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.mul_(WEIGHT_GAIN.get(arch, 1.0))
    reach = measure_reach(net, 3, multiple, 2, scale)
    assert reach > 0
    side = -(-(2 * reach + 3 * multiple + 8) // multiple) * multiple
    start = side // 2 // multiple * multiple  # output columns [start, start + multiple) watched
    watched = (..., slice(start * scale, (start + multiple) * scale))
    left, right = start - reach, start + multiple - 1 + reach  # the farthest columns in reach
    x = torch.rand(1, 3, side, side)
    far, near = x.clone(), x.clone()
    far[..., :left], far[..., right + 1 :] = 0.5, 0.5  # every column beyond the reach
    near[..., left], near[..., right] = 0.5, 0.5  # the two columns at the reach
    with torch.no_grad():
        reference = net(x)[watched]
        assert torch.equal(net(far)[watched], reference)
        assert not torch.equal(net(near)[watched], reference)


@pytest.mark.parametrize("arch", ARCHS)
def test_tiles_at_the_measured_overlap_match_the_whole_image(arch):
    arch_args, multiple, scale = ARCHS[arch]
    torch.manual_seed(0)
    net = build_net(arch, **arch_args)
    task = {"task": "upscale", "scale": scale} if scale > 1 else {}
    descriptor = ModelDescriptor(arch=arch, arch_args=arch_args, size_multiple=multiple, **task)
    model = RestorationModel(net, descriptor)
    assert model.overlap == overlap_for_reach(model.reach, multiple)
    model.tile = 2 * model.overlap  # tiles half overlap: the most a user should ask
    shape = (model.tile + 2 * multiple + 5, model.tile + 3 * multiple + 7, 3)  # 2+ x 2+ tiles
    image = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
    apply = model.upscale if scale > 1 else model.denoise
    calls = []
    model.net.register_forward_pre_hook(lambda _, args: calls.append(args[0].shape))
    tiled = apply(image)
    tiles = len(calls)
    assert tiles >= 4
    model.tile = None
    np.testing.assert_allclose(tiled, apply(image), atol=1e-4)
    assert len(calls) == tiles + 1  # the whole image in one pass
