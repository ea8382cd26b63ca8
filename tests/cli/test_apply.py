"""Applying models: the Python API, the denoise command, model files and the zoo."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import tiny_config
from safetensors.torch import save_file

from restorekit import load_model
from restorekit.cli import main
from restorekit.engine import train
from restorekit.errors import ImageFormatError, ModelLoadError
from restorekit.io import read_image, write_image
from restorekit.nets.files import load_model_file, read_descriptor
from restorekit.zoo import shipped_models


@pytest.fixture
def model_path(photo_folder, tmp_path):
    return train(tiny_config(photo_folder, **{"train.epochs": 1}), tmp_path / "run").model_path


def test_denoise_keeps_shape_and_dtype_for_any_size(model_path):
    model = load_model(model_path)
    rng = np.random.default_rng(0)
    for array in (
        rng.integers(0, 256, (37, 53, 3), dtype=np.uint8),
        rng.integers(0, 65536, (5, 3), dtype=np.uint16),
        rng.random((1, 1, 3), dtype=np.float32),
        rng.integers(0, 256, (40, 33, 4), dtype=np.uint8),
    ):
        out = model.denoise(array)
        assert out.shape == array.shape and out.dtype == array.dtype
    rgba = rng.integers(0, 256, (40, 33, 4), dtype=np.uint8)
    assert np.array_equal(model.denoise(rgba)[..., 3], rgba[..., 3])  # alpha passes through


def test_grey_image_with_rgb_model_is_replicated_and_averaged(model_path):
    grey = np.random.default_rng(1).integers(0, 256, (32, 32), dtype=np.uint8)
    model = load_model(model_path)
    expected = model.denoise(np.repeat(grey[..., None], 3, axis=2).astype(np.float32) / 255)
    out = model.denoise(grey.astype(np.float32) / 255)
    np.testing.assert_allclose(out, expected.mean(axis=2), atol=1e-6)


def test_bad_arrays_get_clear_errors(model_path):
    model = load_model(model_path)
    with pytest.raises(ImageFormatError, match="NaN"):
        model.denoise(np.full((8, 8, 3), np.nan, np.float32))
    with pytest.raises(ImageFormatError, match="shape"):
        model.denoise(np.zeros((8, 8, 2), np.uint8))
    with pytest.raises(ImageFormatError, match="dtype"):
        model.denoise(np.zeros((8, 8, 3), np.int64))


def test_denoise_command_on_files_and_folders_keeps_format(model_path, tmp_path, astronaut):
    inputs = tmp_path / "in"
    write_image(inputs / "a.png", astronaut[:40, :50])
    write_image(inputs / "b.tif", (astronaut[:40, :50].astype(np.uint16) * 257))
    write_image(tmp_path / "c.jpg", astronaut[:32, :32])
    result = CliRunner().invoke(
        main,
        [
            "denoise",
            str(inputs),
            str(tmp_path / "c.jpg"),
            "-o",
            str(tmp_path / "out"),
            "--model",
            str(model_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "out" / "a.png").array.dtype == np.uint8
    assert read_image(tmp_path / "out" / "b.tif").array.dtype == np.uint16
    assert read_image(tmp_path / "out" / "c.jpg").array.shape == (32, 32, 3)


def test_denoise_command_reports_bad_input_without_traceback(model_path, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    for args in (
        ["denoise", str(tmp_path / "missing.png")],
        ["denoise", str(tmp_path / "broken.png")],
        ["denoise", str(tmp_path / "broken.png"), "--model", "no-such-model"],
    ):
        result = CliRunner().invoke(
            main,
            [
                *args,
                "-o",
                str(tmp_path / "out"),
                *(["--model", str(model_path)] if len(args) == 2 else []),
            ],
        )
        assert result.exit_code != 0
        assert "Traceback" not in result.output and "Error:" in result.output


def test_model_file_describes_itself(model_path):
    descriptor = read_descriptor(model_path)
    assert descriptor.arch == "unet-ne2ne" and descriptor.size_multiple == 32
    assert descriptor.noise == "gauss:25" and descriptor.method == "ne2ne"
    net, _ = load_model_file(model_path)
    assert isinstance(net, torch.nn.Module)


def test_weights_that_do_not_fit_name_the_offending_tensors(model_path, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    tensors = load_file(str(model_path))
    with safe_open(str(model_path), framework="pt") as handle:
        metadata = handle.metadata()
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    tensors["extra.weight"] = torch.zeros(1)
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=metadata)
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path / "bad.safetensors")
    assert dropped in str(info.value) and "extra.weight" in str(info.value)


def test_damaged_weights_are_refused_before_any_output(model_path, tmp_path, astronaut):
    """A model file whose bytes were damaged (NaN/inf in a tensor, the header intact) is
    refused at load with the tensors named, not run into a black image."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    tensors = load_file(str(model_path))
    with safe_open(str(model_path), framework="pt") as handle:
        metadata = handle.metadata()
    name = sorted(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 4)[0]
    tensors[name].view(-1)[:3] = torch.tensor([float("nan"), float("inf"), float("-inf")])
    damaged = tmp_path / "damaged.safetensors"
    save_file(tensors, str(damaged), metadata=metadata)
    with pytest.raises(ModelLoadError, match=f"damaged weights: 1 tensor.*{name} \\(3\\)"):
        load_model(damaged)
    write_image(tmp_path / "photo.png", astronaut[:64, :64])
    result = CliRunner().invoke(
        main,
        [
            "denoise",
            str(tmp_path / "photo.png"),
            "-o",
            str(tmp_path / "out"),
            "--model",
            str(damaged),
        ],
    )
    assert result.exit_code != 0 and "damaged weights" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out" / "photo.png").exists()


class NotWeights:
    """An arbitrary picklable object: loading it would run its class's code."""


def test_pickled_objects_are_refused(tmp_path, model_path):
    torch.save({"model": NotWeights()}, tmp_path / "evil.pt")
    descriptor = read_descriptor(model_path)
    with pytest.raises(ModelLoadError, match="never unpickles"):
        load_model_file(tmp_path / "evil.pt", descriptor)


def test_unknown_model_name_lists_the_shipped_ones():
    with pytest.raises(ModelLoadError, match="shipped"):
        load_model("no-such-model")


def test_models_command_lists_every_shipped_model_with_figures():
    runner = CliRunner()
    result = runner.invoke(main, ["models"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["name", "task", "channels"]
    for model in shipped_models():
        row = next(line for line in lines if line.startswith(model.name + " "))
        assert model.card.exists() and model.evaluations(), f"{model.name} lacks card or figures"
        plain = {k: v for k, v in model.evaluations().items() if not k.endswith("-ensemble")}
        bench, figures = next(iter(plain.items()))
        assert f"{bench} {figures['psnr_in']:.2f} -> {figures['psnr']:.2f}" in row
        details = runner.invoke(main, ["models", model.name]).output
        assert details.startswith(f"{model.name}: ") and "card: " in details
    # a model fine-tuned from earlier weights counts its last stage's steps and says so
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "steps (last stage)" in rows["n2v-bsd68"]
    assert "steps (last stage)" in rows["ne2ne-gauss5_50"]
    # weights from a file on the trainer's machine: its name, not a path that means nothing here
    assert "steps from file ne2ne-gauss25-grey0.safetensors " in rows["ne2ne-grey-gauss25"]
    unknown = runner.invoke(main, ["models", "no-such-model"])
    assert unknown.exit_code != 0 and "shipped: " in unknown.output


def test_a_model_started_from_another_shipped_one_names_it():
    from restorekit.cli.zoo import _steps

    training = {"step": 4721, "config": {"train": {"init_from": "ne2ne-gauss25"}}}
    assert _steps("ne2ne-gauss5_50", training) == "4721 steps from ne2ne-gauss25"
    assert _steps("ne2ne-gauss5_50", {"step": 10, "config": {"train": {}}}) == "10 steps"


def test_model_details_name_training_folders_not_the_trainers_paths():
    """A descriptor keeps the trainer's absolute paths (e.g. /work/shared/data/T91 or
    C:\\data\\T91); the details show the folder names, which mean something anywhere."""
    from restorekit.cli.zoo import _base_name

    assert _base_name("/work/shared/data/T91/") == "T91"
    assert _base_name("C:\\data\\BSD200_train") == "BSD200_train"
    details = CliRunner().invoke(main, ["models", "edsr-baseline-x2"]).output
    assert "trained by sr on T91, BSD200_train, " in details


def test_denoise_starts_with_the_blind_model():
    """A photograph's noise level is unknown: without --model, the blind (sigma 5-50) model."""
    from restorekit.zoo import DEFAULT_DENOISER

    assert DEFAULT_DENOISER == "ne2ne-gauss5_50"
    assert load_model(DEFAULT_DENOISER).descriptor.noise == "gauss:5-50"
    help_text = CliRunner().invoke(main, ["denoise", "--help"]).output
    assert "[default: ne2ne-gauss5_50]" in " ".join(help_text.split())


def test_shipped_ne2ne_model_denoises_a_photograph(astronaut):
    """The bundled Neighbor2Neighbor model, on a photograph it never saw (scikit-image's)."""
    from restorekit.degrade import parse_noise
    from restorekit.metrics import psnr

    model = load_model("ne2ne-gauss25")
    descriptor = model.descriptor
    assert descriptor.method == "ne2ne" and descriptor.noise == "gauss:25"
    assert all("shared/data/BSD200_train" in d for d in descriptor.training["data"])
    noisy = (
        parse_noise("gauss25")
        .sample_numpy(astronaut.transpose(2, 0, 1) / 255.0, np.random.default_rng(0))
        .transpose(1, 2, 0)
    )
    to8 = lambda x: np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)  # noqa: E731
    before, after = psnr(astronaut, to8(noisy)), psnr(astronaut, to8(model.denoise(noisy)))
    assert after > before + 5, (before, after)  # measured: 20.85 -> 27.32 dB


def test_denoise_command_converts_format_and_bit_depth_when_asked(model_path, tmp_path, astronaut):
    write_image(tmp_path / "in" / "a.png", astronaut[:40, :50])
    result = CliRunner().invoke(
        main,
        [
            "denoise",
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "--model",
            str(model_path),
            "--format",
            "tif",
            "--bit-depth",
            "16",
        ],
    )
    assert result.exit_code == 0, result.output
    out = read_image(tmp_path / "out" / "a.tif")
    assert out.array.dtype == np.uint16 and out.array.shape == (40, 50, 3)


def test_upscale_without_model_takes_the_shipped_upscaler_of_the_scale(tmp_path, astronaut):
    write_image(tmp_path / "a.png", astronaut[:24, :32])
    runner = CliRunner()
    for scale, expected in ((None, "edsr-baseline-x2"), (4, "edsr-baseline-x4")):
        args = ["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / f"out{scale}")]
        result = runner.invoke(main, args + (["--scale", str(scale)] if scale else []))
        assert result.exit_code == 0, result.output
        factor = scale or 2
        assert read_image(tmp_path / f"out{scale}" / "a.png").array.shape[:2] == (
            24 * factor,
            32 * factor,
        )
        assert load_model(expected).descriptor.scale == factor
    five = runner.invoke(
        main, ["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "o5"), "--scale", "5"]
    )
    assert five.exit_code != 0 and "x4 (edsr-baseline-x4)" in five.output
    three = runner.invoke(main, ["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "o3"),
                                 "--scale", "3", "--model", "edsr-baseline-x2"])  # fmt: skip
    assert three.exit_code != 0 and "for x3: --model edsr-baseline-x3" in three.output


def test_a_folder_without_a_model_says_what_a_run_folder_holds(tmp_path):
    from restorekit.zoo import resolve_model

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(ModelLoadError, match="is a folder without a model: a finished run"):
        resolve_model(tmp_path / "run")
    (tmp_path / "run" / "checkpoints" / "last.state.pt").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="restorekit train --resume"):
        resolve_model(tmp_path / "run")


def test_tta_and_ensemble_name_the_same_flag_on_every_command(tmp_path, astronaut, model_path):
    """--tta (denoise's name) and --ensemble (EDSR's) are one flag: either works everywhere
    and gives the same bytes."""
    write_image(tmp_path / "a.png", astronaut[:32, :40])
    outputs = []
    for flag in ("--tta", "--ensemble"):
        out = tmp_path / flag.strip("-")
        result = CliRunner().invoke(
            main,
            ["denoise", str(tmp_path / "a.png"), "-o", str(out), "--model", str(model_path), flag],
        )
        assert result.exit_code == 0, result.output
        outputs.append((out / "a.png").read_bytes())
    assert outputs[0] == outputs[1]
    upscale = ["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "big"), "--tta"]
    assert CliRunner().invoke(main, upscale).exit_code == 0
