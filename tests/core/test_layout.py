"""Channels-last batches keep channels-last strides wherever they come from, so that no
convolution reorders its input out of sight (one-channel images; Neighbor2Neighbor's
sub-images made by indexing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_config

from restorekit.data import EpochSampler
from restorekit.data.kinds import load_train_data
from restorekit.degrade.noise import parse_noise
from restorekit.engine.distributed import DistributedContext
from restorekit.engine.step import Stepper
from restorekit.infer.predict import predict, torch_forward
from restorekit.io import write_image
from restorekit.layout import in_layout, is_channels_last
from restorekit.methods import Progress
from restorekit.nets import build_net

CHANNELS_LAST = torch.channels_last


@pytest.mark.parametrize("shape", [(2, 1, 8, 8), (1, 1, 8, 8), (2, 3, 8, 8), (1, 97, 4, 4)])
def test_in_layout_gives_channels_last_strides_and_the_same_values(shape):
    tensor = torch.rand(shape)
    assert not is_channels_last(tensor)  # NCHW, though "channels-last contiguous" for C=1
    out = in_layout(tensor, CHANNELS_LAST)
    assert is_channels_last(out) and torch.equal(out, tensor)
    assert in_layout(out, CHANNELS_LAST) is out  # no copy when it is already so
    nchw = in_layout(out, torch.contiguous_format)
    assert nchw.is_contiguous() and torch.equal(nchw, tensor)
    volume = torch.rand(1, 1, 4, 4, 4)  # volumes stay as they are
    assert in_layout(volume, CHANNELS_LAST) is volume


def test_a_one_channel_batch_is_re_strided_without_a_copy():
    grey = torch.rand(2, 1, 8, 8)
    out = in_layout(grey, CHANNELS_LAST)
    assert is_channels_last(out) and out.data_ptr() == grey.data_ptr()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(
    "view",
    [
        lambda t: t[:, :, ::2, ::2],  # strided
        lambda t: t[:, :, 1:5, 2:7],  # cropped
        lambda t: t[1:, :, :, :6],
    ],
)
def test_views_of_a_channels_last_batch_come_out_dense(channels, view):
    """A strided or cropped view keeps channel stride 1 without being dense; it is copied."""
    base = in_layout(torch.rand(2, channels, 8, 8), CHANNELS_LAST)
    part = view(base)
    out = in_layout(part, CHANNELS_LAST)
    assert is_channels_last(out) and torch.equal(out, part)
    assert out.stride() == in_layout(part.clone(), CHANNELS_LAST).stride()


def conv_inputs(net: torch.nn.Module) -> list[torch.Tensor]:
    """Every convolution's input during the next forward passes."""
    seen: list[torch.Tensor] = []
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    return seen


@pytest.mark.parametrize("channels", [1, 3])
def test_inference_keeps_every_convolution_input_channels_last(channels):
    """The grey U-Net's head concatenates the image with 96 feature channels: with an NCHW
    image the concatenation came out NCHW and oneDNN reordered it inside the convolution (25 %
    more memory than the activation probe counts, 1.3x the time, measured at 1024 x 1024)."""
    net = build_net("unet-n2n", in_channels=channels, out_channels=channels, features=8)
    net = net.eval().to(memory_format=CHANNELS_LAST)
    seen = conv_inputs(net)
    image = np.random.default_rng(0).random((1, channels, 64, 64), dtype=np.float32)
    predict(net, torch.from_numpy(image), net.size_multiple)
    torch_forward(net)(image)
    assert len(seen) == 2 * 18 and all(is_channels_last(x) for x in seen)


@pytest.mark.parametrize(
    ("method", "fields"),
    [
        ("ne2ne", {"model.in_channels": 1, "model.out_channels": 1}),
        ("ne2ne", {}),  # RGB: the sub-images made by indexing were NCHW
        ("n2c", {"model.in_channels": 1, "model.out_channels": 1}),
    ],
)
def test_training_feeds_every_convolution_channels_last(tmp_path, astronaut, method, fields):
    grey = bool(fields)
    for i, left in enumerate([0, 100]):
        crop = astronaut[:96, left : left + 128]
        write_image(tmp_path / f"img{i}.png", crop.mean(axis=-1).astype(np.uint8) if grey else crop)
    cfg = tiny_config(tmp_path, method, **{"model.arch": "unet-n2n", **fields})
    stepper = Stepper.from_config(cfg, DistributedContext(device=torch.device("cpu")))
    seen = conv_inputs(stepper.model)
    data = load_train_data(cfg, parse_noise(cfg.noise))
    sampler = EpochSampler(data.n_images, cfg.data.repeat, cfg.train.seed, epoch=1)
    sample = next(iter(torch.utils.data.DataLoader(data.dataset, 2, sampler=sampler)))
    stepper.step(sample, Progress(1, 2, 1), 1e-4)
    assert seen and all(is_channels_last(x) for x in seen)


def test_the_memory_probe_reads_a_grey_network_s_layout():
    """A one-channel first convolution's weight is "channels-last contiguous" either way; the
    probe must not take an NCHW grey network for a channels-last one."""
    from restorekit.infer.memory import _is_channels_last

    net = build_net("unet-n2n", in_channels=1, out_channels=1, features=8)
    assert not _is_channels_last(net)
    assert _is_channels_last(net.to(memory_format=CHANNELS_LAST))
