"""ONNX export and the torch-free ONNX Runtime backend."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from restorekit import load_model
from restorekit.cli import main
from restorekit.errors import ModelLoadError
from restorekit.infer.onnx_backend import load_onnx_model
from restorekit.infer.onnx_export import OnnxExportError, export_onnx
from restorekit.io import read_image, write_image
from restorekit.nets import build_net
from restorekit.nets.files import ModelDescriptor, read_descriptor, save_model
from restorekit.zoo import shipped_models


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    net = build_net("unet-n2n", features=8)
    descriptor = ModelDescriptor(
        arch="unet-n2n",
        arch_args={"in_channels": 3, "out_channels": 3, "features": 8},
        size_multiple=net.size_multiple,
        noise="gauss:25",
        method="ne2ne",
    )
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    save_model(path, net, descriptor)
    return path


@pytest.fixture(scope="module")
def onnx_path(model_path):
    path = model_path.with_suffix(".onnx")
    result = export_onnx(model_path, path)
    assert result.max_abs_diff <= 1e-4 and result.check_shape == (1, 3, 96, 128)
    return path


def test_export_stores_the_descriptor_and_model_facts(onnx_path, model_path):
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(props["restorekit"])["arch"] == "unet-n2n"
    assert json.loads(props["restorekit"])["noise"] == "gauss:25"
    assert props["task"] == "denoise" and props["scale"] == "1" and props["channels"] == "3"
    assert props["size_multiple"] == "32" and json.loads(props["value_range"]) == [0.0, 1.0]
    model = load_onnx_model(onnx_path)
    assert model.size_multiple == 32 and model.in_channels == 3 and model.scale == 1


def test_onnx_backend_matches_pytorch_whole_and_tiled(onnx_path, model_path):
    torch_model, onnx_model = load_model(model_path, device="cpu"), load_onnx_model(onnx_path)
    rng = np.random.default_rng(0)
    image = rng.random((37, 101, 3), dtype=np.float32)  # any size: padded to 32s
    np.testing.assert_allclose(onnx_model.denoise(image), torch_model.denoise(image), atol=1e-4)
    batch = rng.random((2, 3, 150, 203), dtype=np.float32)  # two images, dynamic batch
    for model in (torch_model, onnx_model):
        model.tile, model.overlap = 64, 32
    tiled = onnx_model.run(batch)
    assert tiled.shape == batch.shape
    np.testing.assert_allclose(tiled, torch_model.run(torch.from_numpy(batch)).numpy(), atol=1e-4)
    grey = rng.integers(0, 65536, (20, 30), dtype=np.uint16)
    denoised = onnx_model.denoise(grey)
    assert denoised.dtype == np.uint16 and denoised.shape == (20, 30)


def test_onnx_backend_never_imports_torch(onnx_path):
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from restorekit.infer.onnx_backend import load_onnx_model
        model = load_onnx_model({str(onnx_path)!r}, tile=64, overlap=32)
        out = model.denoise(np.zeros((70, 40, 3), np.uint8))
        assert out.shape == (70, 40, 3), out.shape
        assert "torch" not in sys.modules, "torch was imported"
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_export_refuses_a_graph_that_disagrees(model_path, tmp_path):
    with pytest.raises(OnnxExportError, match="not written"):
        export_onnx(model_path, tmp_path / "m.onnx", tolerance=-1.0)  # no graph can pass
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_files_that_are_not_restorekit_models_are_refused(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model"):
        load_onnx_model(tmp_path / "junk.onnx")
    node = onnx.helper.make_node("Identity", ["input"], ["output"])
    value = onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, None)
    output = onnx.helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, None)
    graph = onnx.helper.make_graph([node], "plain", [value], [output])
    onnx.save(onnx.helper.make_model(graph), str(tmp_path / "plain.onnx"))
    with pytest.raises(ModelLoadError, match="restorekit export"):
        load_onnx_model(tmp_path / "plain.onnx")
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_onnx_model(tmp_path / "missing.onnx")


def test_export_and_denoise_commands(model_path, tmp_path, astronaut):
    runner = CliRunner()
    out_onnx = tmp_path / "m.onnx"
    result = runner.invoke(main, ["export", "--model", str(model_path), "-o", str(out_onnx)])
    assert result.exit_code == 0, result.output
    assert "matches PyTorch" in result.output and out_onnx.is_file()
    write_image(tmp_path / "in" / "a.png", astronaut[:70, :90])
    outputs = {}
    for backend, model in (("torch", model_path), ("onnx", out_onnx)):
        args = ["denoise", str(tmp_path / "in"), "-o", str(tmp_path / backend)]
        args += ["--model", str(model), "--backend", backend, "--tile", "64", "--overlap", "32"]
        result = runner.invoke(main, [*args, "--max-memory", "1GB"])
        assert result.exit_code == 0, result.output
        outputs[backend] = read_image(tmp_path / backend / "a.png").array.astype(int)
    assert np.abs(outputs["onnx"] - outputs["torch"]).max() <= 1  # 8-bit rounding at most
    for bad in (
        ["--backend", "onnx", "--model", str(model_path)],
        ["--max-memory", "lots"],
    ):
        result = runner.invoke(main, ["denoise", str(tmp_path / "in"), "-o", str(tmp_path), *bad])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert ".onnx" in result.output or "2GB" in result.output


@pytest.mark.parametrize(
    "name", [m.name for m in shipped_models() if read_descriptor(m.weights).task == "denoise"]
)
def test_every_shipped_model_exports_with_parity(name, tmp_path, astronaut):
    """Export checks onnxruntime against PyTorch itself; also compare on a real photograph."""
    result = export_onnx(name, tmp_path / f"{name}.onnx")
    assert result.max_abs_diff <= 1e-4
    photo = astronaut[:96, :128]
    onnx_out = load_onnx_model(tmp_path / f"{name}.onnx").denoise(photo.astype(np.float32) / 255)
    torch_out = load_model(name).denoise(photo.astype(np.float32) / 255)
    assert np.abs(onnx_out - torch_out).max() <= 1e-4
