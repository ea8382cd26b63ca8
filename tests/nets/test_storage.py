"""Compact weight storage (float16, int8 with per-channel scales): what is written, what is
read back, and that damaged or mismatched files are refused by name."""

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from restorekit.errors import ModelLoadError
from restorekit.nets import build_net
from restorekit.nets.files import ModelDescriptor, count_parameters, load_model_file, save_model
from restorekit.nets.storage import SCALE_SUFFIX, int8_weight_names

EDSR_ARGS = {"scale": 2, "n_blocks": 2, "features": 32}


def _edsr_file(tmp_path, storage):
    torch.manual_seed(0)
    net = build_net("edsr", **EDSR_ARGS).eval()
    descriptor = ModelDescriptor(arch="edsr", arch_args=EDSR_ARGS, task="upscale", scale=2)
    path = tmp_path / f"{storage}.safetensors"
    save_model(path, net, descriptor, storage)
    return net, path


def _dtypes(path):
    with safe_open(str(path), framework="pt") as handle:
        return {k: handle.get_slice(k).get_dtype() for k in handle.keys()}  # noqa: SIM118


def test_int8_rounds_the_inner_convolutions_and_keeps_the_image_facing_ones_float16(tmp_path):
    net, path = _edsr_file(tmp_path, "int8")
    dtypes = _dtypes(path)
    rounded = int8_weight_names(net)
    assert "head.weight" not in rounded and "tail.weight" not in rounded  # read / write the image
    assert {"blocks.0.conv1.weight", "upsample.0.weight"} <= rounded
    for name in rounded:
        assert dtypes[name] == "I8" and dtypes[name + SCALE_SUFFIX] == "F32"
    others = {k: v for k, v in dtypes.items() if k not in rounded and not k.endswith(SCALE_SUFFIX)}
    assert set(others.values()) == {"F16"}
    assert others.keys() == net.state_dict().keys() - rounded


def test_each_storage_reads_back_within_its_rounding_and_counts_the_same_parameters(tmp_path):
    files = {storage: _edsr_file(tmp_path, storage) for storage in ("float32", "float16", "int8")}
    net = files["float32"][0]
    original = net.state_dict()
    sizes = {storage: path.stat().st_size for storage, (_, path) in files.items()}
    assert sizes["float16"] < 0.51 * sizes["float32"]
    assert sizes["int8"] < 0.6 * sizes["float16"]
    counts = {count_parameters(path) for _, path in files.values()}
    assert counts == {sum(p.numel() for p in net.parameters())}

    loaded = {storage: load_model_file(path)[0] for storage, (_, path) in files.items()}
    assert all(torch.equal(original[k], v) for k, v in loaded["float32"].state_dict().items())
    for name, value in loaded["int8"].state_dict().items():
        assert value.dtype == torch.float32
        step = (
            original[name].flatten(1).abs().amax(1) / 127
            if name in int8_weight_names(net)
            else None
        )
        error = (value - original[name]).abs()
        if step is None:  # float16: relative rounding
            assert torch.equal(value, original[name].half().float())
        else:  # within half a step of its own output channel's scale, and not exact
            assert (error.flatten(1) <= step[:, None] / 2 + 1e-7).all()
            assert error.max() > 0

    image = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        reference = net(image)
        int8_error = (loaded["int8"](image) - reference).abs().max()
        half_error = (loaded["float16"](image) - reference).abs().max()
    assert 0 < half_error < int8_error < 2e-2


def test_a_damaged_scale_is_refused_by_name(tmp_path):
    _, path = _edsr_file(tmp_path, "int8")
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors["blocks.0.conv1.weight" + SCALE_SUFFIX][3] = float("nan")
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(
        ModelLoadError, match=r"damaged weights: 1 tensor.*blocks\.0\.conv1\.weight"
    ):
        load_model_file(path)


def test_a_scale_without_its_int8_weight_is_named_as_unexpected(tmp_path):
    _, path = _edsr_file(tmp_path, "float16")
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors["blocks.0.conv1.weight" + SCALE_SUFFIX] = torch.ones(32)  # its weight is float16
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(ModelLoadError, match=r"unexpected tensors: blocks\.0\.conv1\.weight\.int8"):
        load_model_file(path)


def test_a_raised_threshold_rounds_only_the_large_convolutions(tmp_path):
    torch.manual_seed(0)
    net = build_net("unet-csbdeep", in_channels=1, out_channels=1, depth=2, features=8).eval()
    names = {k: v.numel() for k, v in net.state_dict().items()}
    everything = int8_weight_names(net)
    large = int8_weight_names(net, int8_min_values=2000)
    assert large and large < everything
    assert all(names[k] >= 2000 for k in large)
    assert all(names[k] < 2000 for k in everything - large)
    descriptor = ModelDescriptor(arch="unet-csbdeep", arch_args={"depth": 2, "features": 8})
    save_model(tmp_path / "m.safetensors", net, descriptor, "int8", int8_min_values=2000)
    assert {k for k, dtype in _dtypes(tmp_path / "m.safetensors").items() if dtype == "I8"} == large
