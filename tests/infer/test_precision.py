"""Reduced-precision inference: the network in bf16 (fp16 on a GPU), its output layer in fp32,
and the paths ``auto`` chooses among (:mod:`restorekit.infer.paths`)."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from restorekit import load_model
from restorekit.cli import main
from restorekit.errors import ConfigError
from restorekit.infer import predict
from restorekit.infer.paths import allowed, choose_path, nearest_size
from restorekit.io import read_image, write_image

needs_bf16 = pytest.mark.skipif(
    not predict.cpu_has_native_bf16(), reason="this CPU has no native bf16"
)


@pytest.fixture(params=["denoise", "upscale"])
def model_path(request, tiny_model_files):
    """Untrained tiny models (conftest): a unet-n2n denoiser and an EDSR x2 upscaler."""
    return tiny_model_files[request.param]


@needs_bf16
def test_bf16_runs_the_network_in_bf16_but_its_output_layer_in_fp32(model_path):
    fp32 = load_model(model_path, "cpu")
    bf16 = load_model(model_path, "cpu", precision="bf16")
    convolutions = [m for m in bf16.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convolutions[0].weight.dtype == torch.bfloat16
    ran = []
    hooks = [m.register_forward_hook(lambda m, a, o: ran.append(m)) for m in convolutions]
    image = np.random.default_rng(0).random((40, 56, 3), dtype=np.float32)
    run = bf16.upscale if bf16.descriptor.task == "upscale" else bf16.denoise
    out = run(image, check=False)
    for hook in hooks:
        hook.remove()
    assert ran[-1].weight.dtype == torch.float32  # the last convolution run
    reference = (fp32.upscale if fp32.descriptor.task == "upscale" else fp32.denoise)(
        image, check=False
    )
    assert out.dtype == np.float32 and np.abs(out - reference).max() < 0.05
    assert np.abs(out - reference).max() > 0  # it did run in bf16
    assert bf16.bytes_per_pixel < 0.9 * fp32.bytes_per_pixel  # smaller activations


def test_a_precision_the_device_cannot_run_well_is_refused(model_path, monkeypatch):
    with pytest.raises(ConfigError, match="fp16 inference is for GPUs"):
        load_model(model_path, "cpu", precision="fp16")
    with pytest.raises(ConfigError, match="unknown precision"):
        load_model(model_path, "cpu", precision="int4")
    monkeypatch.setattr(predict, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(ConfigError, match="no native bfloat16 .* use fp32"):
        load_model(model_path, "cpu", precision="bf16")


@needs_bf16
def test_the_command_line_says_which_precision_ran(model_path, tmp_path):
    descriptor_task = "upscale" if model_path.stem == "up" else "denoise"
    image = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    write_image(tmp_path / "in.png", image)
    args = [descriptor_task, str(tmp_path / "in.png"), "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*args, "--model", str(model_path), "--precision", "bf16"])
    assert result.exit_code == 0, result.output
    assert "backend: torch bf16 (--precision bf16)" in result.output
    assert read_image(tmp_path / "out" / "in.png").array.dtype == np.uint8
    onnx_bf16 = ["--precision", "bf16", "--backend", "onnx", "--overwrite"]
    refused = CliRunner().invoke(main, [*args, "--model", str(model_path), *onnx_bf16])
    assert refused.exit_code != 0 and "runs these models in fp32" in refused.output


def test_paths_are_chosen_by_size_speed_and_figure_change():
    speed = {
        "megapixels_per_s": {
            "768x512": {"torch-fp32": 1.0, "torch-bf16": 2.0, "onnxruntime-fp32": 1.5},
            "4000x3000": {"torch-fp32": 1.0, "torch-bf16": 1.2, "onnxruntime-fp32": 1.6},
        }
    }
    precision = {"evaluation": "Set14", "change_db": {"torch-bf16": -0.01}}
    everything = {"torch-fp32", "torch-bf16", "onnxruntime-fp32"}
    assert nearest_size(speed["megapixels_per_s"], 1_000_000) == "768x512"
    assert nearest_size(speed["megapixels_per_s"], 5_000_000) == "4000x3000"
    assert nearest_size(speed["megapixels_per_s"], None) == "768x512"
    assert choose_path(speed, precision, 300_000, everything)[0] == "torch-bf16"
    assert choose_path(speed, precision, 12_000_000, everything)[0] == "onnxruntime-fp32"
    assert choose_path(speed, precision, 300_000, {"torch-fp32"})[0] == "torch-fp32"
    assert choose_path(speed, None, 300_000, everything)[0] == "onnxruntime-fp32"  # unmeasured
    assert allowed("torch-fp32", {}) and allowed("torch-bf16", {"torch-bf16": 0.02})
    assert not allowed("torch-bf16", {"torch-bf16": -0.021})
    assert not allowed("onnxruntime-int8", {})
    only_bf16_large = {
        "megapixels_per_s": speed["megapixels_per_s"] | {"4000x3000": {"torch-bf16": 1.0}}
    }
    assert choose_path(only_bf16_large, precision, 12_000_000, {"torch-fp32"})[0] == "torch-fp32"
    assert "at 768x512" in choose_path(only_bf16_large, precision, 12_000_000, {"torch-fp32"})[1]
