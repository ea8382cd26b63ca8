"""The measured working memory that sizes inference tiles."""

from torch import nn

from restorekit.infer.memory import TORCH_FACTOR, measure_bytes_per_pixel
from restorekit.nets import build_net


def test_a_conv_chain_peaks_at_its_two_widest_live_outputs():
    # conv -> 16 ch (64 B/px, float32) and ReLU's copy alive together: 128 B/px; the last
    # conv's 3 channels come after the first conv's output is freed.
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 3, 3, padding=1))
    assert measure_bytes_per_pixel(net.eval(), 3, 1, factor=1) == 128
    assert measure_bytes_per_pixel(net.eval(), 3, 1) == 128 * TORCH_FACTOR


def test_skips_held_alive_raise_the_peak():
    # RED-Net keeps one feature map per symmetric skip: deeper nets need more memory although
    # their widest layer is the same (a widest-layer rule gives all three the same figure).
    figures = [
        measure_bytes_per_pixel(build_net("rednet", n_layers=n, features=16).eval(), 3, 1, factor=1)
        for n in (10, 20, 30)
    ]
    assert figures[0] < figures[1] < figures[2]
    assert figures[2] >= 64 * 16  # more than 16 float32 maps of 16 channels per pixel


def test_upscaling_counts_the_larger_output():
    x2 = build_net("edsr", scale=2, n_blocks=1, features=8).eval()
    x4 = build_net("edsr", scale=4, n_blocks=1, features=8).eval()
    assert measure_bytes_per_pixel(x4, 3, 1) > measure_bytes_per_pixel(x2, 3, 1)
