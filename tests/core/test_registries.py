"""Every entry of each registry, as a group: networks (``restorekit.nets.NETS``), training
methods (``restorekit.methods.METHODS``) and data kinds (``restorekit.data.kinds.KINDS``). A new
entry without its line in the tables below fails here, by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter

from restorekit.configs import load_config
from restorekit.configs.schema import DATA_KINDS, ModelConfig
from restorekit.data.kinds import KINDS, load_train_data
from restorekit.engine.step import Stepper
from restorekit.infer.model import RestorationModel
from restorekit.infer.onnx_export import export_onnx
from restorekit.infer.reach import measure_reach
from restorekit.infer.tiling import overlap_for_reach
from restorekit.io import write_image
from restorekit.methods import METHODS, Progress
from restorekit.nets import NETS, build_net
from restorekit.nets.files import ModelDescriptor

SMALL_NETS = {  # arch: (small arguments, size multiple, scale)
    "unet-n2n": ({"features": 8}, 32, 1),
    "unet-ne2ne": ({"features": 8}, 32, 1),
    "unet-csbdeep": ({"features": 8, "depth": 2, "in_channels": 3, "out_channels": 3}, 4, 1),
    "edsr": ({"scale": 2, "n_blocks": 2, "features": 8}, 1, 2),
    "rednet": ({"n_layers": 10, "features": 8}, 1, 1),
}
WEIGHT_GAIN = {"unet-ne2ne": 10.0}
"""Undoes an initialisation too small for a bitwise test: the Ne2Ne authors' 0.1 x He leaves the
deepest paths of a fresh network below float32 resolution at its output (trained ones are not)."""

SHORT_RUNS = {  # method: (preset, overrides)
    "n2c": ("n2c-gauss25", ["model.features=8", "data.patch_size=64"]),
    "n2n": ("n2n-gauss25", ["model.features=8", "data.patch_size=64"]),
    "ne2ne": ("ne2ne-gauss25", ["model.features=8", "data.patch_size=64"]),
    "n2v": ("n2v-bsd68", ["model.features=8", "data.patch_size=64", "method.masked_fraction=0.02"]),
    "sr": ("edsr-baseline-x2", ["model.n_blocks=2", "model.features=16", "data.lr_patch_size=24"]),
}


def test_every_registry_entry_has_its_line_here_and_in_the_config():
    assert set(SMALL_NETS) == set(NETS)
    assert set(SHORT_RUNS) == set(METHODS)
    assert set(KINDS) == set(DATA_KINDS)  # each config kind has its engine plug-in


def _small(arch: str) -> tuple[torch.nn.Module, dict, int, int]:
    arch_args, multiple, scale = SMALL_NETS[arch]
    torch.manual_seed(0)
    return build_net(arch, **arch_args).eval(), arch_args, multiple, scale


def _model(arch: str) -> RestorationModel:
    net, arch_args, multiple, scale = _small(arch)
    task = {"task": "upscale", "scale": scale} if scale > 1 else {}
    descriptor = ModelDescriptor(arch=arch, arch_args=arch_args, size_multiple=multiple, **task)
    return RestorationModel(net, descriptor)


@pytest.mark.parametrize("arch", NETS)
def test_network_shapes_and_size_multiple_match_its_config(arch):
    net, arch_args, multiple, scale = _small(arch)
    assert net.size_multiple == multiple
    config = TypeAdapter(ModelConfig).validate_python({"arch": arch, **arch_args})
    assert config.size_multiple == multiple  # the config's patch rules use the same number
    channels = arch_args.get("in_channels", 3)
    with torch.no_grad():
        out = net(torch.rand(2, channels, 2 * max(multiple, 8), 3 * max(multiple, 8)))
    assert out.shape == (2, channels, 2 * max(multiple, 8) * scale, 3 * max(multiple, 8) * scale)


@pytest.mark.parametrize("arch", NETS)
def test_input_beyond_the_reach_never_changes_the_output(arch):
    net, _, multiple, scale = _small(arch)
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


@pytest.mark.parametrize("arch", NETS)
def test_tiles_at_the_measured_overlap_match_the_whole_image(arch):
    model = _model(arch)
    multiple, scale = model.descriptor.size_multiple, model.descriptor.scale
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


@pytest.mark.parametrize("arch", NETS)
def test_every_network_exports_to_onnx_and_agrees_with_pytorch(arch, tmp_path):
    result = export_onnx(_model(arch), tmp_path / f"{arch}.onnx")  # checked inside: 1e-4
    assert result.path.is_file() and result.max_abs_diff <= 1e-4


@pytest.mark.parametrize("method", METHODS)
def test_a_short_run_of_every_method_lowers_its_loss(method, tmp_path, astronaut):
    """Thirty steps on one fixed batch (the same patches, noise and masks each step): each
    method's loss falls, through the engine's own data kind, stepper and schedule."""
    preset, overrides = SHORT_RUNS[method]
    grey = load_config(preset).model.in_channels == 1
    for i, (top, left) in enumerate([(0, 0), (100, 20), (60, 120)]):
        crop = astronaut[top : top + 96, left : left + 128]
        write_image(tmp_path / "a" / f"{i}.png", crop[..., :1] if grey else crop)
    base = ["train.batch_size=3", "train.precision=fp32", "optim.lr=1e-3", "optim.milestones=[]"]
    cfg = load_config(preset, [*overrides, *base], {"data.train": [str(tmp_path / "a")]})
    stepper = Stepper.from_config(cfg)
    data = load_train_data(cfg)
    batch = torch.utils.data.default_collate([data.dataset[(i, 7 + i)] for i in range(3)])
    losses = [
        float(stepper.step(batch, Progress(1, 1, step), cfg.optim.lr).total)
        for step in range(1, 31)
    ]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses
