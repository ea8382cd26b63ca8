"""Shared fixtures: small real photographs (scikit-image's public-domain samples) on disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from skimage import data

from restorekit.configs import load_config
from restorekit.io import write_image

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

torch.set_num_threads(1)  # tests are small; one thread keeps them steady next to other work
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # the napari widgets' tests: no display


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A per-session cache for the shipped models' ONNX exports: the user's is never touched."""
    folder = tmp_path_factory.mktemp("cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("RESTOREKIT_CACHE", str(folder))
    yield folder
    patch.undo()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A 256 x 256 RGB uint8 photograph."""
    return np.ascontiguousarray(data.astronaut()[::2, ::2])


@pytest.fixture
def photo_folder(tmp_path: Path, astronaut: np.ndarray) -> Path:
    """Four 96 x 128 RGB PNG crops of a photograph."""
    folder = tmp_path / "photos"
    for i, (top, left) in enumerate([(0, 0), (100, 20), (150, 120), (40, 128)]):
        write_image(folder / f"img{i}.png", astronaut[top : top + 96, left : left + 128])
    return folder


def tiny_config(folder: Path, method: str = "ne2ne", **fields: object):
    """A fast config: small U-Net, 64-pixel patches, batch 2."""
    overrides = [
        f"data.train=['{folder}']",
        "model.features=8",
        "data.patch_size=64",
        "train.batch_size=2",
        "train.epochs=2",
        "train.log_every=1",
        "train.checkpoint_every=3",
    ]
    overrides += [f"{k}={v}" for k, v in fields.items()]
    return load_config(f"{method}-gauss25", overrides)


def assert_runs_without_torch(body: str, timeout: float = 120) -> None:
    """Run ``body`` (Python source, dedented) in a fresh interpreter, then check that it
    printed nothing wrong and never imported torch."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(body) + '\nassert "torch" not in sys.modules, "torch was imported"\n'
    script = "import sys\n" + script + 'print("ok")\n'
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def write_tiny_n2v(
    path: Path, dims: int = 2, mean: float = 0.4, std: float = 0.2, method: str | None = "n2v"
) -> Path:
    """An untrained tiny Noise2Void U-Net file (unet-csbdeep, 4 features, 1 channel; the
    n2v-2d or n2v-3d preset) with a mean/std normalisation record, at ``path``."""
    from restorekit.nets import build_net
    from restorekit.nets.files import ModelDescriptor, save_model

    preset = "n2v-2d" if dims == 2 else "n2v-3d"
    args = load_config(preset, ["model.features=4"]).model.model_dump(exclude={"arch"})
    descriptor = ModelDescriptor(
        arch="unet-csbdeep",
        arch_args=args,
        in_channels=1,
        out_channels=1,
        size_multiple=4,
        method=method,
        normalization={"kind": "meanstd", "mean": [mean], "std": [std]},
    )
    save_model(path, build_net("unet-csbdeep", **args), descriptor)
    return path


@pytest.fixture(scope="session")
def tiny_model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Untrained tiny model files: ``denoise`` (unet-n2n, 8 features, gauss:25) and ``upscale``
    (EDSR x2, 1 block, 8 features), for tests where only the files and commands matter."""
    from restorekit.nets import build_net
    from restorekit.nets.files import ModelDescriptor, save_model

    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    net = build_net("unet-n2n", features=8)
    args = {"in_channels": 3, "out_channels": 3, "features": 8}
    denoiser = ModelDescriptor(
        arch="unet-n2n", arch_args=args, size_multiple=net.size_multiple, noise="gauss:25"
    )
    save_model(folder / "den.safetensors", net, denoiser)
    edsr_args = {"scale": 2, "n_blocks": 1, "features": 8}
    upscaler = ModelDescriptor(arch="edsr", arch_args=edsr_args, task="upscale", scale=2)
    save_model(folder / "up.safetensors", build_net("edsr", **edsr_args), upscaler)
    return {"denoise": folder / "den.safetensors", "upscale": folder / "up.safetensors"}


@pytest.fixture
def make_client(tmp_path: Path, tiny_model_files: dict[str, Path]) -> Iterator:
    """``make_client(**settings)``: a test client of the web app (restorekit.serve) over a
    fresh data folder holding two small user models, with those settings."""
    pytest.importorskip("fastapi", reason="the web app's extra: pip install 'restorekit[serve]'")
    from fastapi.testclient import TestClient
    from serve_support import user_models  # tests/serve/, on the path with its tests

    from restorekit.serve.app import Settings, create_app

    clients = []

    def make(**settings: object) -> TestClient:
        data_dir = tmp_path / f"serve{len(clients)}"
        user_models(data_dir, tiny_model_files)
        client = TestClient(create_app(Settings(data_dir, **settings)))  # type: ignore[arg-type]
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()
