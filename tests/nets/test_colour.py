"""Grey networks started from RGB ones and back (restorekit.nets.colour, train --init-from)."""

import pytest
import torch
from click.testing import CliRunner

from restorekit.cli import main
from restorekit.errors import ModelLoadError
from restorekit.nets import build_net
from restorekit.nets.files import ModelDescriptor, init_from_model_file, save_model


def _random_net(arch, seed, **args):
    torch.manual_seed(seed)
    net = build_net(arch, **args)
    with torch.no_grad():  # biases away from their zero initialisation, so they are checked too
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def _model_file(path, arch, net, channels, **args):
    descriptor = ModelDescriptor(
        arch=arch,
        arch_args={**args, "in_channels": channels[0], "out_channels": channels[1]},
        in_channels=channels[0],
        out_channels=channels[1],
        size_multiple=getattr(net, "size_multiple", 1),
        noise="gauss:25",
    )
    save_model(path, net, descriptor)
    return path


@torch.no_grad()
def test_a_grey_unet_from_an_rgb_one_gives_the_mean_of_its_result_on_the_replicated_image(
    tmp_path, astronaut
):
    rgb = _random_net("unet-n2n", 0, in_channels=3, out_channels=3, features=8)
    source = _model_file(tmp_path / "rgb.safetensors", "unet-n2n", rgb, (3, 3), features=8)
    grey = build_net("unet-n2n", in_channels=1, out_channels=1, features=8)

    loaded, kept, adapted = init_from_model_file(grey, "unet-n2n", source, (1, 1))

    assert kept == [] and loaded == sorted(grey.state_dict())
    # the first convolution and the head's input concatenation read the image; the last writes it
    assert adapted == ["enc0.0.0.weight", "head.0.0.weight", "head.2.bias", "head.2.weight"]
    image = torch.from_numpy(astronaut[:64, :96].mean(-1) / 255).float()[None, None]
    expected = rgb(image.expand(-1, 3, -1, -1)).mean(1, keepdim=True)
    torch.testing.assert_close(grey.eval()(image), expected, rtol=0, atol=1e-5)
    for name in set(loaded) - set(adapted):  # the rest is a copy
        assert torch.equal(grey.state_dict()[name], rgb.state_dict()[name])


@torch.no_grad()
def test_an_rgb_residual_unet_from_a_grey_one_gives_its_result_in_each_channel(tmp_path):
    args = {"depth": 2, "features": 4, "batch_norm": True, "residual": True}
    grey = _random_net("unet-csbdeep", 1, in_channels=1, out_channels=1, **args)
    source = _model_file(tmp_path / "grey.safetensors", "unet-csbdeep", grey, (1, 1), **args)
    rgb = build_net("unet-csbdeep", in_channels=3, out_channels=3, **args)

    _, _, adapted = init_from_model_file(rgb, "unet-csbdeep", source, (3, 3))

    assert adapted  # something was widened; which tensors is the network's business
    image = torch.rand(1, 1, 32, 48, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(
        rgb.eval()(image.expand(-1, 3, -1, -1)),
        grey(image).expand(-1, 3, -1, -1),
        rtol=0,
        atol=1e-5,
    )


def test_weights_that_do_not_carry_over_are_refused_with_the_reason(tmp_path):
    rgb = _random_net("unet-n2n", 0, in_channels=3, out_channels=3, features=8)
    source = _model_file(tmp_path / "rgb.safetensors", "unet-n2n", rgb, (3, 3), features=8)
    with pytest.raises(ModelLoadError, match="only grey \\(1\\) and RGB \\(3\\)"):
        init_from_model_file(
            build_net("unet-n2n", in_channels=4, out_channels=4, features=8),
            "unet-n2n",
            source,
            (4, 4),
        )
    with pytest.raises(ModelLoadError, match="more differs than the colour channels"):
        init_from_model_file(
            build_net("unet-n2n", in_channels=1, out_channels=1, features=16),
            "unet-n2n",
            source,
            (1, 1),
        )


def test_an_image_wired_in_otherwise_is_refused_not_silently_adapted(tmp_path, monkeypatch):
    """The last columns are taken to be the image; a network that puts it first fails the
    check run on a test image instead of training from wrong weights."""
    from restorekit.nets import unet_n2n

    def image_first(self, x):  # UNetN2N.forward with the image before the features
        skips = [x]
        h = self.pool(self.enc0(x))
        skips.append(h)
        for level in range(4):
            h = self.pool(self.enc[level](h))
            if level < 3:
                skips.append(h)
        h = self.enc[4](h)
        for dec in self.dec:
            h = dec(torch.cat([self.up(h), skips.pop()], dim=1))
        return self.head(torch.cat([skips.pop(), self.up(h)], dim=1))

    rgb = _random_net("unet-n2n", 0, in_channels=3, out_channels=3, features=8)
    source = _model_file(tmp_path / "rgb.safetensors", "unet-n2n", rgb, (3, 3), features=8)
    monkeypatch.setattr(unet_n2n.UNetN2N, "forward", image_first)
    grey = build_net("unet-n2n", in_channels=1, out_channels=1, features=8)
    with pytest.raises(ModelLoadError, match="do not carry over from 3 to 1 channels"):
        init_from_model_file(grey, "unet-n2n", source, (1, 1))


def test_train_init_from_an_rgb_model_starts_a_grey_run_and_says_so(tmp_path, astronaut):
    from restorekit.io import write_image

    rgb = _random_net("unet-n2n", 0, in_channels=3, out_channels=3, features=8)
    source = _model_file(tmp_path / "rgb.safetensors", "unet-n2n", rgb, (3, 3), features=8)
    data = tmp_path / "grey"
    for i in range(2):
        write_image(
            data / f"g{i}.png", astronaut[64 * i : 64 * i + 64, :64].mean(-1).astype("uint8")
        )
    result = CliRunner().invoke(
        main,
        [
            "train",
            "ne2ne-gauss25",
            "--data",
            str(data),
            "--init-from",
            str(source),
            "--out",
            str(tmp_path / "run"),
            "--max-steps",
            "1",
            "--set",
            "model.arch=unet-n2n",
            "--set",
            "model.features=8",
            "--set",
            "model.in_channels=1",
            "--set",
            "model.out_channels=1",
            "--set",
            "data.patch_size=64",
            "--set",
            "train.batch_size=2",
        ],
    )
    assert result.exit_code == 0, result.output
    log = (tmp_path / "run" / "train.log").read_text()
    assert "4 adapted to 1 -> 1 channels (enc0.0.0.weight, head.0.0.weight" in log


@torch.no_grad()
@pytest.mark.parametrize(
    ("arch", "channels"),
    [
        ("rednet", ((3, 3), (1, 1))),
        ("rednet", ((1, 1), (3, 3))),
        ("unet-n2n", ((1, 3), (3, 1))),
    ],
)
def test_transposed_convolutions_and_mixed_channel_pairs_carry_over(tmp_path, arch, channels):
    """RED-Net's last layer is a transposed convolution (in x out x kernel weights: its image
    rows are read the other way round); grey-in/RGB-out into RGB-in/grey-out also works."""
    (src_in, src_out), (tgt_in, tgt_out) = channels
    size = {"n_layers": 10, "features": 8} if arch == "rednet" else {"features": 8}

    def arch_args(n_in, n_out):
        return {**size, "in_channels": n_in} | ({"out_channels": n_out} if arch != "rednet" else {})

    source_net = _random_net(arch, 2, **arch_args(src_in, src_out))
    descriptor = ModelDescriptor(
        arch=arch,
        arch_args=arch_args(src_in, src_out),
        in_channels=src_in,
        out_channels=src_out,
        size_multiple=getattr(source_net, "size_multiple", 1),
        noise="gauss:25",
    )
    save_model(tmp_path / "s.safetensors", source_net, descriptor)
    target = build_net(arch, **arch_args(tgt_in, tgt_out))

    _, _, adapted = init_from_model_file(
        target, arch, tmp_path / "s.safetensors", (tgt_in, tgt_out)
    )

    assert adapted
    grey = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(4))
    expected = source_net(grey.expand(-1, src_in, -1, -1))
    if (src_out, tgt_out) == (3, 1):
        expected = expected.mean(1, keepdim=True)
    elif (src_out, tgt_out) == (1, 3):
        expected = expected.expand(-1, 3, -1, -1)
    got = target.eval()(grey.expand(-1, tgt_in, -1, -1))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_edsr_is_refused_up_front_and_a_refusal_leaves_the_network_untouched(tmp_path):
    args = {"scale": 2, "n_blocks": 1, "features": 8}
    rgb = _random_net("edsr", 0, **args)
    descriptor = ModelDescriptor(arch="edsr", arch_args=args, task="upscale", scale=2)
    save_model(tmp_path / "x2.safetensors", rgb, descriptor)
    grey = build_net("edsr", in_channels=1, **args)
    before = {k: v.clone() for k, v in grey.state_dict().items()}
    with pytest.raises(ModelLoadError, match="fixed mean per colour channel"):
        init_from_model_file(grey, "edsr", tmp_path / "x2.safetensors", (1, 1))
    assert all(torch.equal(before[k], v) for k, v in grey.state_dict().items())
