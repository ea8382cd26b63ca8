"""`restorekit demo`: every shipped model on suitable sample photographs, figures printed.

The zoo is replaced by tiny untrained models of each kind (RGB denoiser, grey Noise2Void
denoiser, EDSR upscaler), so the tests need no trained weights.
"""

import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from skimage import data

import restorekit.zoo
from restorekit.cli import main
from restorekit.degrade import imresize
from restorekit.infer.model import load_model
from restorekit.io import read_image
from restorekit.metrics import psnr, ssim
from restorekit.nets import build_net
from restorekit.nets.files import ModelDescriptor, save_model

CSBDEEP = {"features": 4, "depth": 2, "in_channels": 1, "out_channels": 1}
MEANSTD = {"kind": "meanstd", "mean": [0.45], "std": [0.25]}
TINY_ZOO = {  # name -> (arch, arch_args, descriptor fields)
    "tiny-edsr-x3": (
        "edsr",
        {"scale": 3, "n_blocks": 1, "features": 8},
        {"task": "upscale", "scale": 3},
    ),
    "tiny-n2v-grey": (
        "unet-csbdeep",
        CSBDEEP,
        {"in_channels": 1, "out_channels": 1, "size_multiple": 4, "normalization": MEANSTD},
    ),
    "tiny-rgb-denoise": ("unet-n2n", {"features": 4}, {"size_multiple": 32}),
}
SAMPLES = {
    "tiny-edsr-x3": (["astronaut", "chelsea", "coffee"], ["hr", "lr", "bicubic", "sr"]),
    "tiny-n2v-grey": (["camera", "coins"], ["clean", "noisy", "denoised"]),
    "tiny-rgb-denoise": (["astronaut", "chelsea", "coffee"], ["clean", "noisy", "denoised"]),
}
ROW = re.compile(
    r"^  (\S+) +PSNR +([\d.]+) -> +([\d.]+) dB   SSIM ([\d.]+) -> ([\d.]+)$", re.MULTILINE
)


@pytest.fixture
def tiny_zoo(tmp_path_factory, monkeypatch):
    """The zoo folder replaced by one holding the tiny models (built once per test)."""
    folder = tmp_path_factory.mktemp("zoo")
    for name, (arch, arch_args, fields) in TINY_ZOO.items():
        torch.manual_seed(0)
        descriptor = ModelDescriptor(arch=arch, arch_args=arch_args, noise="gauss:25", **fields)
        save_model(folder / name / "model.safetensors", build_net(arch, **arch_args), descriptor)
    monkeypatch.setattr(restorekit.zoo, "ZOO_DIR", folder)
    return folder


def _demo(*args):
    result = CliRunner().invoke(main, ["demo", "--device", "cpu", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _rows(output, model):
    """{sample: (psnr before, psnr after, ssim before, ssim after)} printed under ``model``."""
    block = output.split(f"model {model}, ")[1].split("\nmodel ")[0]
    return {m[0]: tuple(float(x) for x in m[1:]) for m in ROW.findall(block)}


def test_demo_runs_every_shipped_model_on_its_samples(tiny_zoo, tmp_path):
    out = tmp_path / "demo"
    output = _demo("-o", str(out))
    headers = [line for line in output.splitlines() if line.startswith("model ")]
    assert headers == [
        f"model tiny-edsr-x3, upscale x3, Y channel, border 3: bicubic -> model; "
        f"writing PNGs to {out / 'tiny-edsr-x3'}",
        f"model tiny-n2v-grey, noise gauss:25: noisy -> denoised; "
        f"writing PNGs to {out / 'tiny-n2v-grey'}",
        f"model tiny-rgb-denoise, noise gauss:25: noisy -> denoised; "
        f"writing PNGs to {out / 'tiny-rgb-denoise'}",
    ]
    for model, (samples, kinds) in SAMPLES.items():
        assert list(_rows(output, model)) == samples
        written = {p.name for p in (out / model).iterdir()}
        assert written == {f"{s}_{k}.png" for s in samples for k in kinds}

    # Denoisers: sigma-25 noise on the sample of the right channel count; figures of the PNGs.
    camera = data.camera()
    noisy = read_image(out / "tiny-n2v-grey" / "camera_noisy.png").array
    denoised = read_image(out / "tiny-n2v-grey" / "camera_denoised.png").array
    assert noisy.shape == denoised.shape == (*camera.shape, 1)
    p0, p1, s0, s1 = _rows(output, "tiny-n2v-grey")["camera"]
    assert 19.5 < p0 < 21.5  # sigma 25 on 0-255: 20.2 dB, less where clipped at 0 and 255
    assert p0 == round(psnr(camera[..., None], noisy), 2)
    assert p1 == round(psnr(camera[..., None], denoised), 2)
    assert s1 == round(ssim(camera[..., None], denoised), 4)
    assert read_image(out / "tiny-rgb-denoise" / "coffee_noisy.png").array.shape[2] == 3

    # Upscaler: an independent bicubic baseline on astronaut (512 x 512, mod-cropped to 510).
    hr = data.astronaut()[:510, :510]
    to8 = lambda x: np.clip(np.floor(x * 255 + 0.5), 0, 255).astype(np.uint8)  # noqa: E731
    lr = to8(imresize(hr.astype(np.float64) / 255, 1 / 3))
    bicubic = to8(imresize(lr.astype(np.float64) / 255, 3))
    folder = out / "tiny-edsr-x3"
    assert lr.shape == (170, 170, 3)
    assert np.array_equal(read_image(folder / "astronaut_lr.png").array, lr)
    assert np.array_equal(read_image(folder / "astronaut_bicubic.png").array, bicubic)
    sr = read_image(folder / "astronaut_sr.png").array
    assert np.array_equal(sr, load_model("tiny-edsr-x3", "cpu").upscale(lr))
    p0, p1, s0, s1 = _rows(output, "tiny-edsr-x3")["astronaut"]
    assert p0 == round(psnr(hr, bicubic, crop_border=3, y_channel=True), 2)
    assert s0 == round(ssim(hr, bicubic, crop_border=3, y_channel=True), 4)
    assert p1 == round(psnr(hr, sr, crop_border=3, y_channel=True), 2)
    assert 25 < p0 < 40  # bicubic x3 on a photograph
    chelsea = read_image(folder / "chelsea_sr.png").array
    assert chelsea.shape == (300, 450, 3)  # 300 x 451 cropped to a multiple of 3


def test_demo_runs_only_the_named_models_with_the_given_noise(tiny_zoo, tmp_path):
    out = tmp_path / "demo"
    names = ["--model", "tiny-n2v-grey", "--model", "tiny-edsr-x3"]
    output = _demo("-o", str(out), *names, "--noise", "gauss:50")
    headers = [line.split(";")[0] for line in output.splitlines() if line.startswith("model ")]
    assert headers == [
        "model tiny-n2v-grey, noise gauss:50: noisy -> denoised",
        "model tiny-edsr-x3, upscale x3, Y channel, border 3: bicubic -> model",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["tiny-edsr-x3", "tiny-n2v-grey"]
    assert 13.5 < _rows(output, "tiny-n2v-grey")["camera"][0] < 15.5  # sigma 50: 14.2 dB


def test_demo_without_shipped_models_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(restorekit.zoo, "ZOO_DIR", tmp_path)
    result = CliRunner().invoke(main, ["demo", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "no shipped models" in result.output
