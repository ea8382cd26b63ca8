"""BioImage Model Zoo packages pass bioimageio.core's own model test (the one deepImageJ and the
zoo's CI rely on), offline, for a 2D and a 3D Noise2Void model with normalisation, an RGB
denoiser and an upscaler."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from conftest import write_tiny_n2v

from restorekit.cli import main
from restorekit.configs import load_config
from restorekit.infer.bioimageio_export import BioImageIOExportError, export_bioimageio
from restorekit.nets import build_net
from restorekit.nets.files import ModelDescriptor, save_model

pytest.importorskip("bioimageio.core")


@pytest.fixture(autouse=True)
def offline_cache(tmp_path, monkeypatch):
    """A fresh cache, so that nothing cached elsewhere is used, and short HTTP timeouts: the
    test must pass without the network (the packages hold no URL)."""
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "cache"))
    monkeypatch.setenv("BIOIMAGEIO_HTTP_TIMEOUT", "1")


def _n2v(folder: Path, dims: int) -> Path:
    return write_tiny_n2v(folder / f"n2v{dims}d.safetensors", dims, mean=0.3, std=0.1)


def _model_test(package: Path):
    from bioimageio.core import test_description

    return test_description(package, runtime_env="currently-active")


@pytest.mark.parametrize("dims", [2, 3])
def test_an_exported_noise2void_model_passes_the_model_zoos_test(tmp_path, dims):
    out = tmp_path / f"n2v{dims}d.zip"
    args = ["export", "--model", str(_n2v(tmp_path, dims)), "--format", "bioimageio"]
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--pixel-scale", "65535"])
    assert result.exit_code == 0, result.output
    summary = _model_test(out)
    failed = [(d.name, [e.msg for e in d.errors]) for d in summary.details if d.status != "passed"]
    assert summary.status == "passed", failed
    tested = {d.name.split("(")[-1].rstrip(")") for d in summary.details if "Reproduce" in d.name}
    assert tested == {"onnx", "pytorch_state_dict", "torchscript"}
    with zipfile.ZipFile(out) as package:
        rdf = yaml.safe_load(package.read("rdf.yaml"))
        names = set(package.namelist())
    assert {"cover.png", "README.md", "test_input.npy", "test_output.npy"} <= names
    axes = [a.get("id", a["type"]) for a in rdf["inputs"][0]["axes"]]
    assert axes == ["batch", "channel", *(["z"] if dims == 3 else []), "y", "x"]
    steps = {step["id"]: step for step in rdf["inputs"][0]["preprocessing"]}
    pre = steps["fixed_zero_mean_unit_variance"]  # the model's own statistics, on the raw scale
    assert pre["kwargs"]["mean"] == pytest.approx(0.3 * 65535)
    assert pre["kwargs"]["std"] == pytest.approx(0.1 * 65535)
    assert rdf["cite"][0]["doi"] == "10.1109/CVPR.2019.00223"
    assert rdf["outputs"][0]["axes"][-1]["halo"] > 0  # the network's reach, for tiling


def test_rgb_denoisers_and_upscalers_export_too(tmp_path, tiny_model_files):
    for kind in ("denoise", "upscale"):
        package = export_bioimageio(tiny_model_files[kind], tmp_path / f"{kind}.zip")
        summary = _model_test(package.path)
        assert summary.status == "passed", [d.name for d in summary.details if d.status != "passed"]
    with zipfile.ZipFile(tmp_path / "upscale.zip") as package:
        rdf = yaml.safe_load(package.read("rdf.yaml"))
        test_input = np.load(package.open("test_input.npy"))
        test_output = np.load(package.open("test_output.npy"))
    assert rdf["outputs"][0]["axes"][-1]["scale"] == 0.5  # twice the input's size
    assert test_output.shape[-2:] == tuple(2 * n for n in test_input.shape[-2:])


def test_the_export_never_writes_over_what_it_must_keep(tmp_path):
    model = _n2v(tmp_path, 2)
    runner = CliRunner()
    base = ["export", "--model", str(model), "--format", "bioimageio"]
    result = runner.invoke(main, [*base, "-o", str(model)])
    assert result.exit_code != 0 and "being exported" in result.output
    result = runner.invoke(main, [*base, "-o", str(tmp_path / "model.yaml")])
    assert result.exit_code != 0 and "*.zip" in result.output
    (tmp_path / "taken.zip").write_bytes(b"mine")
    result = runner.invoke(main, [*base, "-o", str(tmp_path / "taken.zip")])
    assert result.exit_code != 0 and "--overwrite" in result.output
    assert (tmp_path / "taken.zip").read_bytes() == b"mine"


def test_models_the_format_cannot_describe_are_refused_clearly(tmp_path):
    args = load_config("rednet-sr", ["model.n_layers=10", "model.features=4"]).model
    descriptor = ModelDescriptor(
        arch="rednet",
        arch_args=args.model_dump(exclude={"arch"}),
        task="upscale",
        scale=2,
        upsample_input=True,
    )
    path = tmp_path / "rednet.safetensors"
    save_model(path, build_net("rednet", **descriptor.arch_args), descriptor)
    with pytest.raises(BioImageIOExportError, match="bicubic"):
        export_bioimageio(path, tmp_path / "r.zip")
    assert not (tmp_path / "r.zip").exists()
