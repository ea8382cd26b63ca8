"""Every architecture through ONNX: super-resolution (EDSR's pixel shuffle, RED-Net with bicubic
input), RED-Net denoising, normalised Noise2Void U-Nets and 3D volumes, against PyTorch."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import assert_runs_without_torch

from restorekit.cli import main
from restorekit.infer.model import RestorationModel
from restorekit.infer.onnx_backend import load_onnx_model
from restorekit.infer.onnx_export import export_onnx
from restorekit.infer.tiling import DEFAULT_OVERLAP, overlap_for_reach
from restorekit.io import read_image, write_image
from restorekit.nets import build_net
from restorekit.nets.files import ModelDescriptor, save_model

MEANSTD = {"kind": "meanstd", "mean": [0.4], "std": [0.15]}
PERCENTILE = {"kind": "percentile", "low": [0.05], "high": [0.9], "percentiles": [1.0, 99.8]}
CSBDEEP = {"features": 4, "depth": 2, "batch_norm": True, "in_channels": 1, "out_channels": 1}

MODELS = {
    "edsr-x2": (
        "edsr",
        {"scale": 2, "n_blocks": 1, "features": 8},
        {"task": "upscale", "scale": 2},
    ),
    "edsr-x3": (
        "edsr",
        {"scale": 3, "n_blocks": 1, "features": 8},
        {"task": "upscale", "scale": 3},
    ),
    "rednet-sr": (
        "rednet",
        {"n_layers": 10, "features": 8},
        {"task": "upscale", "scale": 2, "upsample_input": True},
    ),
    "rednet-denoise": ("rednet", {"n_layers": 10, "features": 8}, {}),
    "n2v-2d-meanstd": (
        "unet-csbdeep",
        {**CSBDEEP, "blurpool": True, "skip_top": False},
        {"in_channels": 1, "out_channels": 1, "size_multiple": 4, "normalization": MEANSTD},
    ),
    "n2v-3d-percentile": (
        "unet-csbdeep",
        {**CSBDEEP, "dims": 3},
        {"in_channels": 1, "out_channels": 1, "size_multiple": 4, "normalization": PERCENTILE},
    ),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (torch model, ONNX model) for each entry of MODELS, built and exported once."""
    folder = tmp_path_factory.mktemp("onnx_models")
    models = {}
    for name, (arch, arch_args, fields) in MODELS.items():
        torch.manual_seed(0)
        net = build_net(arch, **arch_args)
        for module in net.modules():  # batch norm statistics other than the identity's
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
        descriptor = ModelDescriptor(arch=arch, arch_args=arch_args, **fields)
        save_model(folder / f"{name}.safetensors", net, descriptor)
        result = export_onnx(folder / f"{name}.safetensors", folder / f"{name}.onnx")
        assert result.max_abs_diff <= 1e-4
        models[name] = (
            RestorationModel(net, descriptor),
            load_onnx_model(folder / f"{name}.onnx"),
        )
    return models


def _count_forward_calls(model):
    calls = []
    forward = model.forward
    model.forward = lambda batch: calls.append(batch.shape) or forward(batch)
    return calls


def _set_tiling(models, tile, overlap):
    for model in models:
        model.tile, model.overlap = tile, overlap


@pytest.mark.parametrize("name", ["edsr-x2", "edsr-x3", "rednet-sr"])
def test_upscaling_models_match_pytorch_whole_and_tiled(exported, name, astronaut):
    torch_model, onnx_model = exported[name]
    scale = MODELS[name][2]["scale"]
    image = astronaut[20:57, 40:90].astype(np.float32) / 255  # 37 x 50: odd sizes
    _set_tiling((torch_model, onnx_model), None, 8)
    whole = onnx_model.upscale(image)
    assert whole.shape == (37 * scale, 50 * scale, 3)
    np.testing.assert_allclose(whole, torch_model.upscale(image), atol=1e-4)

    _set_tiling((torch_model, onnx_model), 16, 8)
    calls = _count_forward_calls(onnx_model)
    tiled = onnx_model.upscale(image)
    del onnx_model.forward
    assert len(calls) > 4  # several tiles
    np.testing.assert_allclose(tiled, torch_model.upscale(image), atol=1e-4)

    rgba = np.dstack([astronaut[:21, :30], np.full((21, 30), 200, np.uint8)])
    out = onnx_model.upscale(rgba, ensemble=True)
    assert out.shape == (21 * scale, 30 * scale, 4) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - torch_model.upscale(rgba, ensemble=True)).max() <= 1


def test_rednet_denoiser_matches_pytorch_whole_and_tiled(exported, astronaut):
    torch_model, onnx_model = exported["rednet-denoise"]
    image = astronaut[:45, :61].astype(np.float32) / 255
    _set_tiling((torch_model, onnx_model), None, 8)
    np.testing.assert_allclose(onnx_model.denoise(image), torch_model.denoise(image), atol=1e-4)
    _set_tiling((torch_model, onnx_model), 16, 8)
    calls = _count_forward_calls(onnx_model)
    tiled = onnx_model.denoise(image)
    del onnx_model.forward
    assert len(calls) > 4
    np.testing.assert_allclose(tiled, torch_model.denoise(image), atol=1e-4)


def test_normalised_2d_model_matches_pytorch_with_normalisation_outside_the_graph(exported):
    torch_model, onnx_model = exported["n2v-2d-meanstd"]
    assert onnx_model.descriptor.normalization == MEANSTD
    assert onnx_model.normalization is not None  # applied by the backend, from the metadata
    rng = np.random.default_rng(1)
    image = rng.uniform(0.2, 0.7, (30, 41)).astype(np.float32)
    _set_tiling((torch_model, onnx_model), None, 8)
    onnx_out = onnx_model.denoise(image)
    np.testing.assert_allclose(onnx_out, torch_model.denoise(image), atol=1e-4)
    raw = onnx_model.forward(np.zeros((1, 1, 32, 44), np.float32))  # the graph alone
    assert not np.allclose(raw, onnx_model.predict(np.zeros((1, 1, 32, 44), np.float32)))
    stack = rng.integers(0, 65536, (2, 30, 41), dtype=np.uint16)
    _set_tiling((torch_model, onnx_model), 16, 8)
    onnx_stack = onnx_model.denoise_stack(stack, "SYX", dtype=np.float32)
    torch_stack = torch_model.denoise_stack(stack, "SYX", dtype=np.float32)
    np.testing.assert_allclose(onnx_stack / 65535, torch_stack / 65535, atol=1e-4)


def test_3d_model_matches_pytorch_on_volumes_whole_and_tiled(exported):
    torch_model, onnx_model = exported["n2v-3d-percentile"]
    volume = np.random.default_rng(2).uniform(0, 1, (2, 13, 22, 27)).astype(np.float32)
    _set_tiling((torch_model, onnx_model), None, 8)
    whole = onnx_model.denoise_stack(volume, "SZYX")
    assert whole.shape == volume.shape
    np.testing.assert_allclose(whole, torch_model.denoise_stack(volume, "SZYX"), atol=1e-4)
    _set_tiling((torch_model, onnx_model), 12, 4)
    calls = _count_forward_calls(onnx_model)
    tiled = onnx_model.denoise_stack(volume[0], "ZYX", ensemble=True)
    del onnx_model.forward
    assert len(calls) > 8 and len(calls[0]) == 5  # 3D tiles
    torch_tiled = torch_model.denoise_stack(volume[0], "ZYX", ensemble=True)
    np.testing.assert_allclose(tiled, torch_tiled, atol=1e-4)


def test_upscale_command_on_each_backend(exported, tmp_path, astronaut):
    folder = tmp_path / "models"
    torch_model, _ = exported["edsr-x2"]
    save_model(folder / "x2.safetensors", torch_model.net, torch_model.descriptor)
    export_onnx(folder / "x2.safetensors", folder / "x2.onnx")
    write_image(tmp_path / "in" / "a.png", astronaut[:30, :40])
    runner = CliRunner()
    outputs = {}
    for backend, model, said in (
        ("torch", "x2.safetensors", "backend: torch fp32 (--backend torch)"),
        ("onnx", "x2.onnx", "backend: onnxruntime fp32 (an .onnx model file)"),
        ("auto", "x2.onnx", "backend: onnxruntime fp32 (an .onnx model file)"),
        ("auto", "x2.safetensors", "backend: torch fp32 (not a shipped model nor an .onnx file)"),
    ):
        out = tmp_path / f"{backend}-{model}"
        args = ["upscale", str(tmp_path / "in"), "-o", str(out), "--model", str(folder / model)]
        result = runner.invoke(
            main, [*args, "--backend", backend, "--tile", "16", "--overlap", "8"]
        )
        assert result.exit_code == 0, result.output
        assert said in result.output
        outputs[backend, model] = read_image(out / "a.png").array.astype(int)
        assert outputs[backend, model].shape == (60, 80, 3)
    reference = outputs["torch", "x2.safetensors"]
    assert all(np.abs(o - reference).max() <= 1 for o in outputs.values())  # 8-bit rounding
    args = ["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "x"), "--backend", "onnx"]
    result = runner.invoke(main, [*args, "--model", str(folder / "x2.safetensors")])
    assert result.exit_code != 0 and ".onnx file" in result.output


def test_upscaling_normalised_and_3d_onnx_models_run_without_torch(exported):
    """Bicubic input and alpha (imresize), normalisation and volumes: all NumPy."""
    sr, volume_model = exported["rednet-sr"][1].path, exported["n2v-3d-percentile"][1].path
    assert_runs_without_torch(
        f"""
        import numpy as np
        from restorekit.infer.onnx_backend import load_onnx_model
        out = load_onnx_model({str(sr)!r}).upscale(np.zeros((9, 11, 4), np.uint8))
        assert out.shape == (18, 22, 4), out.shape
        out = load_onnx_model({str(volume_model)!r}).denoise_stack(np.ones((8, 9, 10)), "ZYX")
        assert out.shape == (8, 9, 10), out.shape
        """,
        timeout=120,
    )


def test_exported_files_carry_the_reach_that_sets_the_overlap(exported):
    for torch_model, exported_model in exported.values():
        onnx_model = load_onnx_model(exported_model.path)  # fresh: other tests set the tiling
        assert onnx_model.reach == torch_model.reach
        if torch_model.reach is None:  # n2v-2d-meanstd: its random weights make it constant
            assert onnx_model.overlap == DEFAULT_OVERLAP
        else:
            multiple = onnx_model.descriptor.size_multiple
            assert onnx_model.overlap == overlap_for_reach(torch_model.reach, multiple)
