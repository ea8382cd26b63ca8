import pytest
import torch

from restorekit.errors import ConfigError, ModelLoadError
from restorekit.nets import NETS, build_net
from restorekit.nets.edsr import DIV2K_RGB_MEAN
from restorekit.nets.files import load_state_except


def _n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _zero_(net: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()


def test_registry_has_the_sr_nets_and_keeps_the_unet():
    assert {"unet-n2n", "edsr", "rednet"} <= set(NETS)


# EDSR


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_upscales_by_its_scale(scale):
    net = build_net("edsr", scale=scale, n_blocks=2, features=8)
    assert net.scale == scale and net.size_multiple == 1
    out = net(torch.rand(2, 3, 7, 10))
    assert out.shape == (2, 3, 7 * scale, 10 * scale)


def test_edsr_grey_variant():
    net = build_net("edsr", scale=2, n_blocks=1, features=8, in_channels=1)
    assert net(torch.rand(1, 1, 5, 6)).shape == (1, 1, 10, 12)


def test_edsr_baseline_and_large_parameter_counts():
    # EDSR-PyTorch's baseline x2: 1,369,859 trainable parameters.
    assert _n_params(build_net("edsr", scale=2)) == 1_369_859
    with torch.device("meta"):  # no memory, no init time
        large = build_net("edsr", scale=2, n_blocks=32, features=256, res_scale=0.1)
        baseline_x4 = build_net("edsr", scale=4)
    assert _n_params(large) == 40_729_603  # "40.7 M" in the paper
    assert _n_params(baseline_x4) == 1_517_571  # two x2 pixel-shuffle stages


def test_edsr_mean_shift_is_subtracted_at_input_and_added_at_output():
    net = build_net("edsr", scale=2, n_blocks=1, features=8)
    _zero_(net)  # every conv outputs 0: the output is the mean alone
    out = net(torch.rand(1, 3, 4, 4))
    expected = torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    torch.testing.assert_close(out, expected)
    assert "mean" not in net.state_dict()  # a constant, not a weight


def test_edsr_residual_scaling_scales_each_block():
    torch.manual_seed(0)
    net = build_net("edsr", scale=2, n_blocks=1, features=4, res_scale=0.1)
    block = net.blocks[0]
    x = torch.randn(1, 4, 5, 5)
    branch = block.conv2(torch.relu(block.conv1(x)))
    torch.testing.assert_close(block(x), x + 0.1 * branch)


def test_edsr_upsampler_tensors_share_one_prefix():
    net = build_net("edsr", scale=4, n_blocks=1, features=8)
    names = list(net.state_dict())
    scale_dependent = [k for k in names if k.startswith("upsample.")]
    assert scale_dependent == [
        "upsample.0.weight",
        "upsample.0.bias",
        "upsample.2.weight",
        "upsample.2.bias",
    ]
    x2_names = set(build_net("edsr", scale=2, n_blocks=1, features=8).state_dict())
    assert set(names) - set(scale_dependent) == {k for k in x2_names if "upsample." not in k}


@pytest.mark.parametrize("scale", [3, 4])
def test_edsr_x3_x4_start_from_x2_weights_all_but_the_upsampler(scale):
    torch.manual_seed(0)
    x2 = build_net("edsr", scale=2, n_blocks=2, features=8)
    target = build_net("edsr", scale=scale, n_blocks=2, features=8)
    fresh_upsampler = {
        k: v.clone() for k, v in target.state_dict().items() if k.startswith("upsample.")
    }
    loaded = load_state_except(target, x2.state_dict(), "x2.safetensors")
    state = target.state_dict()
    assert loaded == sorted(k for k in state if not k.startswith("upsample."))
    assert "head.weight" in loaded and "blocks.1.conv2.bias" in loaded and "tail.bias" in loaded
    for name in loaded:
        torch.testing.assert_close(state[name], x2.state_dict()[name], rtol=0, atol=0)
    for name, value in fresh_upsampler.items():
        torch.testing.assert_close(state[name], value, rtol=0, atol=0)


def test_loading_all_but_the_upsampler_still_names_other_mismatches():
    source = build_net("edsr", scale=2, n_blocks=2, features=8).state_dict()
    with pytest.raises(ModelLoadError, match=r"wrong shapes: head.weight \(8, 3, 3, 3\)"):
        load_state_except(build_net("edsr", scale=3, n_blocks=2, features=16), source, "x2")
    with pytest.raises(ModelLoadError, match="missing tensors: blocks.2.conv1.bias") as info:
        load_state_except(build_net("edsr", scale=3, n_blocks=3, features=8), source, "x2")
    assert "upsample" not in str(info.value).split("skipping upsample.")[1]
    extra = dict(source, **{"extra.weight": torch.zeros(1)})
    with pytest.raises(ModelLoadError, match="unexpected tensors: extra.weight"):
        load_state_except(build_net("edsr", scale=3, n_blocks=2, features=8), extra, "x2")


def test_edsr_rejects_unsupported_settings_clearly():
    with pytest.raises(ConfigError, match=r"scale must be one of \(2, 3, 4\)"):
        build_net("edsr", scale=8)
    with pytest.raises(ConfigError, match="in_channels"):
        build_net("edsr", in_channels=4)
    with pytest.raises(ConfigError, match="bad arguments"):
        build_net("edsr", blocks=4)


# RED-Net


@pytest.mark.parametrize(
    ("n_layers", "rgb", "grey"),
    [(10, 298_947, 296_641), (20, 668_227, 665_921), (30, 1_037_507, 1_035_201)],
)
def test_rednet_parameter_counts(n_layers, rgb, grey):
    # conv 1 (C -> 64) + (n_layers - 2) 64 -> 64 layers of 36,928 + last deconv (64 -> C)
    assert _n_params(build_net("rednet", n_layers=n_layers)) == rgb
    assert _n_params(build_net("rednet", n_layers=n_layers, in_channels=1)) == grey


@pytest.mark.parametrize("channels", [1, 3])
def test_rednet_keeps_the_shape_for_grey_and_rgb(channels):
    net = build_net("rednet", n_layers=10, features=8, in_channels=channels)
    assert net.size_multiple == 1
    assert net(torch.rand(2, channels, 9, 13)).shape == (2, channels, 9, 13)


@pytest.mark.parametrize("n_layers", [10, 20, 30])
def test_rednet_with_zero_weights_is_the_identity(n_layers):
    net = build_net("rednet", n_layers=n_layers, features=4)
    _zero_(net)
    x = torch.rand(1, 3, 6, 7)
    torch.testing.assert_close(net(x), x, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("n_layers", "skips"),
    [
        (10, ((2, 3), (4, 1))),
        (20, ((2, 8), (4, 6), (6, 4), (8, 2))),
        (30, ((2, 13), (4, 11), (6, 9), (8, 7), (10, 5), (12, 3), (14, 1))),
    ],
)
def test_rednet_skips_every_two_layers_to_the_mirrored_decoder_layer(n_layers, skips):
    torch.manual_seed(0)
    net = build_net("rednet", n_layers=n_layers, features=4)
    assert net.skips == skips
    m = n_layers // 2
    with torch.no_grad():  # a silent decoder: what reaches decoder layers is only the skips
        for deconv in net.decoder[:-1]:
            deconv.weight.zero_()
            deconv.bias.zero_()
    encoded, decoded = {}, {}
    for k, stage in enumerate(net.encoder, start=1):
        stage.register_forward_hook(lambda _m, _i, out, k=k: encoded.__setitem__(k, out))
    for j, deconv in enumerate(net.decoder[1:], start=1):  # input of layer j + 1 = output of j
        deconv.register_forward_pre_hook(lambda _m, inp, j=j: decoded.__setitem__(j, inp[0]))
    net(torch.rand(1, 3, 6, 6))
    skip_to = {j: k for k, j in skips}
    for j in range(1, m):
        if j in skip_to:  # relu(0 + e_k) = e_k
            torch.testing.assert_close(decoded[j], encoded[skip_to[j]], rtol=0, atol=0)
        else:
            assert not decoded[j].any()


def test_rednet_predicts_a_residual_added_to_the_input():
    torch.manual_seed(0)
    net = build_net("rednet", n_layers=10, features=4, in_channels=1)
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        out = net(x)
        net.decoder[-1].bias.add_(0.25)  # shifts the predicted residual only
        torch.testing.assert_close(net(x), out + 0.25)


def test_rednet_rejects_other_depths_clearly():
    with pytest.raises(ConfigError, match=r"n_layers must be one of \(10, 20, 30\)"):
        build_net("rednet", n_layers=16)
