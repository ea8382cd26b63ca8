"""ONNX export and the torch-free ONNX Runtime backend."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from conftest import assert_runs_without_torch

import restorekit.zoo
from restorekit import load_model
from restorekit.cli import main
from restorekit.errors import ConfigError, ModelLoadError
from restorekit.infer import backends
from restorekit.infer.backends import onnx_status, open_model
from restorekit.infer.memory import TORCH_FACTOR
from restorekit.infer.onnx_backend import ONNXRUNTIME_FACTOR, OnnxModel, load_onnx_model
from restorekit.infer.onnx_export import OnnxExportError, export_onnx
from restorekit.io import read_image, sha256_file, write_image
from restorekit.nets import build_net
from restorekit.nets.files import ModelDescriptor, read_descriptor, save_model
from restorekit.zoo import ZooModel, shipped_models


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


def test_export_stores_the_one_model_record(onnx_path, model_path):
    """The graph carries the safetensors file's descriptor, and the backend reads its facts
    from it alone (no second copy of them under other names)."""
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    record = json.loads(props["restorekit"])
    assert record == read_descriptor(model_path).model_dump(mode="json")
    assert record["arch"] == "unet-n2n" and record["noise"] == "gauss:25"
    assert set(props) == {
        "restorekit",
        "activation_bytes_per_pixel",
        "reach",
        "weights_sha256",
        "restorekit_version",
    }
    model = load_onnx_model(onnx_path)
    assert model.descriptor == read_descriptor(model_path)
    assert model.descriptor.size_multiple == 32 and model.descriptor.scale == 1
    # Tiles for ONNX Runtime are sized with its arena's allowance over the measured peak.
    ratio = model.bytes_per_pixel / load_model(model_path).bytes_per_pixel
    assert ratio == pytest.approx(ONNXRUNTIME_FACTOR / TORCH_FACTOR, rel=0.2)


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
    assert_runs_without_torch(
        f"""
        import numpy as np
        from restorekit.infer.onnx_backend import load_onnx_model
        model = load_onnx_model({str(onnx_path)!r}, tile=64, overlap=32)
        out = model.denoise(np.zeros((70, 40, 3), np.uint8))
        assert out.shape == (70, 40, 3), out.shape
        """,
        timeout=60,
    )


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
    for bad, said in (
        (["--backend", "onnx", "--model", str(model_path)], ".onnx"),
        (["--max-memory", "lots"], "2GB"),
        (["--max-memory", "5"], "5 without a unit is 5 bytes"),  # 5GB meant
    ):
        result = runner.invoke(main, ["denoise", str(tmp_path / "in"), "-o", str(tmp_path), *bad])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert said in " ".join(result.output.split())


def _apply(model, image):
    """``model.denoise`` or ``model.upscale``, by the model's task."""
    return getattr(model, model.descriptor.task)(image)


@pytest.mark.parametrize("model", shipped_models(), ids=lambda m: m.name)
def test_every_shipped_model_exports_on_first_use_with_parity(model, astronaut, onnx_cache):
    """No ONNX file ships: the first ONNX use exports the shipped weights into the cache, keyed
    by their SHA-256, with the same descriptor, the network's reach, and PyTorch's output on a
    real photograph; the second use takes the cached file."""
    assert not list(model.folder.glob("*.onnx"))
    chosen = open_model(model.name, "onnx")
    cached = onnx_cache / "onnx" / f"{sha256_file(model.weights)}.onnx"
    assert cached.is_file() and chosen.model.weights_sha256 == sha256_file(model.weights)
    assert chosen.model.descriptor == read_descriptor(model.weights)
    torch_model = load_model(model.name, device="cpu")
    assert chosen.model.reach == torch_model.reach > 0
    photo = astronaut[64:192, 64:192].astype(np.float32) / 255  # 128 x 128
    assert np.abs(_apply(chosen.model, photo) - _apply(torch_model, photo)).max() <= 1e-4
    written = cached.stat().st_mtime_ns
    open_model(model.name, "onnx")
    assert cached.stat().st_mtime_ns == written  # not exported again


@pytest.mark.parametrize("model", shipped_models(), ids=lambda m: m.name)
def test_every_shipped_model_stores_compact_weights(model):
    """The zoo stores float16 (half the bytes) or int8 convolution weights with float32
    per-channel scales (figures re-measured within 0.005 dB after each change of storage);
    loading gives a float32 network."""
    from safetensors import safe_open

    from restorekit.nets.storage import SCALE_SUFFIX

    with safe_open(str(model.weights), framework="pt") as handle:
        dtypes = {k: handle.get_slice(k).get_dtype() for k in handle.keys()}  # noqa: SIM118
    assert set(dtypes.values()) <= {"F16", "I8", "F32", "I64"}
    int8 = {k for k, dtype in dtypes.items() if dtype == "I8"}
    scales = {k for k, dtype in dtypes.items() if dtype == "F32"}
    assert scales == {k + SCALE_SUFFIX for k in int8}
    net = load_model(model.name, device="cpu").net
    assert {p.dtype for p in net.parameters()} == {torch.float32}


@pytest.mark.parametrize("model", shipped_models(), ids=lambda m: m.name)
def test_every_shipped_model_has_its_speed_and_precision_records(model):
    """zoo/NAME/speed.json and precision.json (read by auto): every path measured at 768x512
    (int8 included), the fastest candidate at 4000x3000 too (the x3/x4 upscalers: PyTorch bf16
    only, their other paths being slower at 768x512 and 10-20 CPU minutes each there), the
    figure change of each path against PyTorch fp32, the machine and the command kept."""
    speed, precision = model.speed, model.precision
    assert speed is not None and precision is not None, (
        f"measure them: python benchmarks/inference.py --model {model.name} --record-zoo"
    )
    rates = speed["megapixels_per_s"]
    assert set(rates) == {"768x512", "4000x3000"}
    assert set(rates["768x512"]) == {
        "torch-fp32",
        "torch-bf16",
        "onnxruntime-fp32",
        "onnxruntime-int8",
    }
    assert "torch-bf16" in rates["4000x3000"]
    if set(rates["4000x3000"]) != {"torch-bf16"}:
        assert {"torch-fp32", "onnxruntime-fp32"} <= set(rates["4000x3000"])
    assert all(rate > 0 for sized in rates.values() for rate in sized.values())
    assert set(precision["change_db"]) == {"torch-bf16", "onnxruntime-fp32", "onnxruntime-int8"}
    assert abs(precision["change_db"]["onnxruntime-fp32"]) < 1e-3  # the same float32 network
    for record in (speed, precision):
        assert (
            "benchmarks/inference.py" in record["command"] and "--record-zoo" in record["command"]
        )
    assert speed["processor"]["model_name"]


def test_the_repository_stays_small_enough_to_travel_with_room_for_ten_models():
    """The tracked tree travels to a GPU machine with its training data in 64 MiB: it stays
    under 24 MiB (the zoo's compactly stored weights are most of it), with room for ten shipped
    models of the present mean size."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True)
    if listing.returncode != 0:
        pytest.skip("not a git checkout")
    files = [root / name for name in listing.stdout.decode().split("\0") if name]
    size = sum(p.stat().st_size for p in files if p.is_file())
    assert size < 24 * 2**20, f"the tracked tree holds {size / 2**20:.1f} MiB"
    weights = [
        p.stat().st_size for p in files if p.name == "model.safetensors" and "zoo" in p.parts
    ]
    assert weights, "no shipped model among the tracked files"
    with_ten = size + (10 - len(weights)) * sum(weights) / len(weights)
    assert with_ten < 24 * 2**20, (
        f"{len(weights)} models in {size / 2**20:.1f} MiB: ten would need {with_ten / 2**20:.1f}"
    )


@pytest.fixture
def zoo(tmp_path, monkeypatch, model_path, onnx_path):
    """A zoo with one model, "tiny" (its ONNX export is made on first use)."""
    folder = tmp_path / "zoo" / "tiny"
    folder.mkdir(parents=True)
    shutil.copy(model_path, folder / "model.safetensors")
    monkeypatch.setattr(restorekit.zoo, "ZOO_DIR", tmp_path / "zoo")
    monkeypatch.chdir(tmp_path)  # "tiny" is a name, not a path
    return ZooModel("tiny", folder)


def test_auto_backend_takes_onnxruntime_for_a_shipped_model(zoo, onnx_path, monkeypatch):
    monkeypatch.setattr(backends, "_torch", lambda *args: "a torch model")  # no GPU here
    chosen = open_model("tiny", device="cpu")
    assert chosen.name == "onnxruntime" and isinstance(chosen.model, OnnxModel)
    assert chosen.describe() == "backend: onnxruntime fp32 (the shipped model's ONNX export)"
    assert open_model(onnx_path, device="cpu").name == "onnxruntime"
    assert open_model("tiny", "onnx").name == "onnxruntime"
    if not torch.cuda.is_available():  # a GPU asked for where there is none: the clear error
        with pytest.raises(ConfigError, match="sees no CUDA GPU"):
            open_model("tiny", device="cuda:1")
    monkeypatch.setattr(backends, "_bf16_runs_natively", lambda device: False)  # as if it were
    for kwargs, reason in (
        ({"torch_options": ["--tta"]}, "--tta given"),
        ({"device": "cuda:1"}, "--device cuda:1"),
        ({"backend": "torch"}, "--backend torch"),
    ):
        chosen = open_model("tiny", **kwargs)
        assert chosen.name == "torch" and chosen.reason == reason
    chosen = open_model(zoo.weights, device="cpu")  # a path: not the shipped name
    assert chosen.name == "torch" and "not a shipped model" in chosen.reason
    with pytest.raises(ConfigError, match="runs on the CPU"):
        open_model("tiny", "onnx", device="cuda")
    with pytest.raises(ConfigError, match="ONNX Runtime runs these models in fp32"):
        open_model("tiny", "onnx", precision="bf16")
    listing = CliRunner().invoke(main, ["models", "--details"]).output
    assert "ONNX: exported from these weights, cached at" in listing


SPEED = {
    "768x512": {"torch-fp32": 0.74, "torch-bf16": 1.4, "onnxruntime-fp32": 0.97},
    "4000x3000": {"torch-fp32": 0.5, "torch-bf16": 0.9, "onnxruntime-fp32": 1.2},
}


def write_records(zoo: ZooModel, bf16_change: float) -> None:
    speed = {"megapixels_per_s": SPEED, "command": "python benchmarks/inference.py --record-zoo"}
    (zoo.folder / "speed.json").write_text(json.dumps(speed))
    precision = {
        "evaluation": "Kodak24 gauss:25 (24 images x 1 draw)",
        "fp32": 31.0,
        "change_db": {"torch-bf16": bf16_change, "onnxruntime-fp32": 0.0},
    }
    (zoo.folder / "precision.json").write_text(json.dumps(precision))


def test_auto_takes_the_fastest_path_that_keeps_the_figures_for_the_image_size(zoo, monkeypatch):
    """bf16 PyTorch is the fastest at 768x512 and ONNX Runtime at 4000x3000 (as measured for
    n2v-bsd68's backends): auto follows the image size; a precision that moved the figure by
    more than 0.02 dB is never taken; without native bf16 it is not considered."""
    opened = []
    monkeypatch.setattr(backends, "_torch", lambda *args: opened.append(args) or "a torch model")
    monkeypatch.setattr(backends, "_bf16_runs_natively", lambda device: True)
    write_records(zoo, bf16_change=-0.007)
    small = open_model("tiny", device="cpu", pixels=640 * 480)
    assert (small.name, small.precision) == ("torch", "bf16") and opened[-1][-1] == "bf16"
    assert small.reason.startswith("measured fastest for this model at 768x512: 1.4 MP/s vs ")
    assert "-0.007 dB on Kodak24" in small.reason
    large = open_model("tiny", device="cpu", pixels=4000 * 3000)
    assert (large.name, large.precision) == ("onnxruntime", "fp32")
    assert "at 4000x3000: 1.2 MP/s vs 0.9 PyTorch bf16, 0.5 PyTorch fp32" in large.reason
    forced = open_model("tiny", "torch", device="cpu", pixels=4000 * 3000)  # PyTorch's best
    assert (forced.name, forced.precision) == ("torch", "bf16")
    assert open_model("tiny", device="cpu", precision="fp32", pixels=640 * 480).name == (
        "onnxruntime"
    )
    write_records(zoo, bf16_change=-0.03)  # moved the figure too much: never taken
    small = open_model("tiny", device="cpu", pixels=640 * 480)
    assert (small.name, small.precision) == ("onnxruntime", "fp32")
    assert "not taken: PyTorch bf16 (-0.030 dB)" in small.reason
    explicit = open_model("tiny", device="cpu", precision="bf16")  # asked for: done
    assert (explicit.name, explicit.precision, explicit.reason) == (
        "torch",
        "bf16",
        "--precision bf16",
    )
    monkeypatch.setattr(backends, "_bf16_runs_natively", lambda device: False)
    write_records(zoo, bf16_change=-0.007)
    small = open_model("tiny", device="cpu", pixels=640 * 480)
    assert (small.name, small.precision) == ("onnxruntime", "fp32")
    listing = CliRunner().invoke(main, ["models", "--details"]).output
    assert "CPU MP/s at 768x512: PyTorch fp32 0.74, PyTorch bf16 1.4, ONNX Runtime fp32 0.97 " in (
        listing
    )
    assert "(auto: PyTorch bf16)" in listing and "(auto: ONNX Runtime fp32)" in listing
    assert "figure change vs fp32 on Kodak24" in listing


def test_inference_benchmark_records_speed_and_precision_for_auto(zoo, monkeypatch):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    monkeypatch.setattr(backends, "_torch", lambda *args: "a torch model")
    monkeypatch.setattr(backends, "_bf16_runs_natively", lambda device: True)
    from inference import record_zoo  # benchmarks/inference.py

    results = [
        {"model": "tiny", "width": w, "height": h, "path": path, "megapixels_per_s": rate}
        for (w, h), sized in (((768, 512), SPEED["768x512"]), ((4000, 3000), SPEED["4000x3000"]))
        for path, rate in sized.items()
    ]
    figures = {"tiny": {"evaluation": "Kodak24", "fp32": 31.0, "change_db": {"torch-bf16": 0.01}}}
    record_zoo(results, figures, 2)
    assert zoo.speed["megapixels_per_s"] == SPEED and zoo.speed["threads"] == 2
    assert zoo.precision["change_db"] == {"torch-bf16": 0.01}
    assert zoo.speed["command"].startswith("python ")  # the command of this run
    assert open_model("tiny", device="cpu", pixels=400 * 300).precision == "bf16"


def test_new_shipped_weights_get_their_own_export_and_a_damaged_one_is_redone(
    zoo, model_path, onnx_cache
):
    first = open_model("tiny", "onnx").model.weights_sha256
    torch.manual_seed(1)
    other = build_net("unet-n2n", features=8)  # new weights shipped under the same name
    save_model(zoo.weights, other, read_descriptor(model_path))
    second = open_model("tiny", "onnx").model
    assert second.weights_sha256 == sha256_file(zoo.weights) != first
    cached = onnx_cache / "onnx" / f"{second.weights_sha256}.onnx"
    cached.write_bytes(b"damaged")
    assert open_model("tiny", "onnx").model.weights_sha256 == second.weights_sha256
    assert cached.stat().st_size > 1000


def test_an_unwritable_cache_falls_back_to_torch_or_says_how_to_fix_it(zoo, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RESTOREKIT_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(backends, "_torch", lambda *args: "a torch model")
    chosen = open_model("tiny", device="cpu")
    assert chosen.name == "torch" and "set RESTOREKIT_CACHE to a writable folder" in chosen.reason
    with pytest.raises(ModelLoadError, match="RESTOREKIT_CACHE"):
        open_model("tiny", "onnx")
    assert "exported from these weights on first use" in onnx_status(zoo)


def test_denoise_command_says_which_backend_it_chose(zoo, tmp_path, astronaut):
    write_image(tmp_path / "in" / "a.png", astronaut[:40, :50])
    runner = CliRunner()
    for extra, said in (
        ([], "backend: onnxruntime fp32 (the shipped model's ONNX export"),
        (["--tta"], "backend: torch fp32 (--tta given)"),
        (["--backend", "onnx", "--tta"], "backend: onnxruntime fp32 (--backend onnx"),
    ):
        args = ["denoise", "in", "-o", "out", "--model", "tiny", "--device", "cpu", "--overwrite"]
        args += extra
        result = runner.invoke(main, args)
        assert result.exit_code == 0 and said in result.output, result.output
    assert "--backend [auto|torch|onnx]" in runner.invoke(main, ["denoise", "--help"]).output


def _eval_json(runner, tmp_path, name, *args):
    """``restorekit eval ... --json``: the command's output and its JSON report."""
    out = tmp_path / f"{name}.json"
    result = runner.invoke(main, ["eval", *args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    return result.output, json.loads(out.read_text())


def test_eval_scores_the_same_on_both_backends(zoo, onnx_path, photo_folder, tmp_path):
    runner = CliRunner()
    common = ["--data", str(photo_folder), "--repeats", "2", "--device", "cpu"]
    reports = {}
    for name, said, args in (
        (
            "torch",
            "backend: torch fp32 (--backend torch)",
            ["--model", "tiny", "--backend", "torch"],
        ),
        ("auto", "backend: onnxruntime fp32 (the shipped model's ONNX", ["--model", "tiny"]),
        ("file", "backend: onnxruntime fp32 (an .onnx model file)", ["--model", str(onnx_path)]),
    ):
        output, reports[name] = _eval_json(runner, tmp_path, name, *args, *common)
        assert output.startswith(said) and "Before denoise: Average PSNR_b" in output, output
    assert reports["torch"]["backend"] == "torch"
    assert reports["auto"]["backend"] == reports["file"]["backend"] == "onnxruntime"
    for name in ("auto", "file"):
        assert reports[name]["noise"] == reports["torch"]["noise"] == "gauss:25"
        for key in ("psnr", "psnr_in"):
            assert reports[name][key] == pytest.approx(reports["torch"][key], abs=1e-3)
        for key in ("ssim", "ssim_in"):
            assert reports[name][key] == pytest.approx(reports["torch"][key], abs=1e-5)
    help_text = runner.invoke(main, ["eval", "--help"]).output
    assert "--backend [auto|torch|onnx]" in help_text
