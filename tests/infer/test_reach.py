"""The measured reach (receptive-field radius) of each architecture, and the tile overlap it sets:
input beyond the reach never changes an output pixel, input at the reach does, and tiles at the
overlap it gives match the whole image."""

import pytest
import torch
from torch import nn

from restorekit.infer.model import RestorationModel
from restorekit.infer.reach import measure_reach
from restorekit.infer.tiling import DEFAULT_OVERLAP, overlap_for_reach
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
