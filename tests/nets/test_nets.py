import pytest
import torch

from restorekit.errors import ConfigError
from restorekit.nets import build_net


def test_unet_n2n_keeps_shape_and_has_papers_size():
    net = build_net("unet-n2n", in_channels=3, out_channels=3, features=48)
    n_params = sum(p.numel() for p in net.parameters())
    assert 0.9e6 < n_params < 1.1e6  # about 1.0 M parameters (4 MB in fp32)
    out = net(torch.rand(2, 3, 64, 96))
    assert out.shape == (2, 3, 64, 96)


def test_unet_n2n_grey_variant():
    net = build_net("unet-n2n", in_channels=1, out_channels=1, features=16)
    assert net(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)


def test_unet_rejects_sizes_that_are_not_multiples_of_32_clearly():
    net = build_net("unet-n2n", features=8)
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.rand(1, 3, 40, 32))


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(ConfigError, match="unet-n2n"):
        build_net("resnet-9000")
    with pytest.raises(ConfigError, match="bad arguments"):
        build_net("unet-n2n", depth=3)
