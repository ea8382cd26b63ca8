"""Super-resolution end to end: data, config, training, x2 -> x3 init, evaluation, inference."""

import json
import re
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import restorekit.zoo
from restorekit.cli import main
from restorekit.configs import load_config
from restorekit.data import SRPatchDataset, load_sr_images
from restorekit.degrade import imresize
from restorekit.degrade.downscale import make_lr, mod_crop
from restorekit.engine import train
from restorekit.errors import ConfigError, ImageFormatError, ModelLoadError
from restorekit.evaluation import evaluate_upscaling, format_upscaling_report
from restorekit.infer.ensemble import self_ensemble
from restorekit.infer.model import load_model
from restorekit.io import read_image, write_image
from restorekit.nets import build_net
from restorekit.nets.files import init_from_model_file
from restorekit.zoo import resolve_model

torch.set_num_threads(1)

TINY = ["model.features=8", "model.n_blocks=2", "train.batch_size=2", "train.epochs=1"]


def sr_config(folder, preset="edsr-baseline-x2", *extra):
    return load_config(
        preset,
        [f"data.train=['{folder}']", "data.lr_patch_size=12", "train.log_every=1", *TINY, *extra],
    )


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut):
    """Four 96 x 128 RGB PNG crops of a photograph, and one odd-sized 50 x 61 crop."""
    folder = tmp_path_factory.mktemp("sr") / "photos"
    for i, (top, left) in enumerate([(0, 0), (100, 20), (150, 120), (40, 128)]):
        write_image(folder / f"img{i}.png", astronaut[top : top + 96, left : left + 128])
    write_image(folder / "odd.png", astronaut[10:60, 30:91])
    return folder


@pytest.fixture(scope="module")
def x2_run(photos, tmp_path_factory):
    """A 2-step EDSR x2 run with validation; returns its folder."""
    run = tmp_path_factory.mktemp("runs") / "x2"
    cfg = sr_config(photos, "edsr-baseline-x2", f"data.val='{photos}'", "data.val_max_images=2")
    train(cfg, run)
    return run


def _uniform(astronaut, dtype=np.float32):
    return (astronaut.astype(np.float64) / 255).astype(dtype)


# Data


def test_lr_patches_are_the_cached_lr_crop_and_the_downscaled_hr_patch(astronaut):
    hr = mod_crop(astronaut[:101, :95], 3)
    assert hr.shape == (99, 93, 3)  # the last rows / columns are dropped
    lr = make_lr(hr, 3, round_lr=False)
    assert lr.dtype == np.float32 and lr.shape == (33, 31, 3)
    ds = SRPatchDataset(load_pairs([hr], 3, round_lr=False), 3, 12, augment=True)
    for seed in range(6):
        sample = ds[(0, seed)]
        image, target = sample["image"].numpy(), sample["target"].numpy()
        assert image.shape == (3, 12, 12) and target.shape == (3, 36, 36)
        # same place, same flip/rotation: the HR patch downscaled is the LR patch (the bicubic
        # kernel reaches 2 LR pixels, so compare away from the patch borders)
        down = imresize(target.transpose(1, 2, 0).astype(np.float64), output_shape=(12, 12))
        inner = (slice(3, -3), slice(3, -3))
        np.testing.assert_allclose(down[inner], image.transpose(1, 2, 0)[inner], atol=1e-5)
    plain = SRPatchDataset(load_pairs([hr], 3, round_lr=False), 3, 12, augment=False)
    rng = np.random.default_rng(7)  # the crop is drawn as PatchDataset draws it: top, then left
    top, left = int(rng.integers(0, 33 - 12 + 1)), int(rng.integers(0, 31 - 12 + 1))
    np.testing.assert_array_equal(
        plain[(0, 7)]["image"].numpy(), lr[top : top + 12, left : left + 12].transpose(2, 0, 1)
    )


def load_pairs(hr_images, scale, round_lr=True):
    """SRImages of ``hr_images`` at one scale (images already mod-cropped) or several (whole)."""
    from restorekit.data import SRImages

    scales = [scale] if isinstance(scale, int) else scale
    return SRImages(
        list(hr_images),
        {s: [make_lr(mod_crop(h, s), s, round_lr) for h in hr_images] for s in scales},
        [f"{i}.png" for i in range(len(hr_images))],
    )


def test_rounded_lr_is_8_bit_like_matlab_written_files(astronaut):
    lr = make_lr(astronaut[:64, :64], 2)
    exact = imresize(astronaut[:64, :64] / 255.0, 0.5)
    assert lr.dtype == np.uint8
    np.testing.assert_array_equal(lr, np.clip(np.floor(exact * 255 + 0.5), 0, 255))


def test_upsampled_input_equals_the_whole_lr_image_upscaled(astronaut):
    pairs = load_pairs([astronaut[:60, :72]], 2)
    whole = imresize(pairs.lr[2][0].astype(np.float32) / np.float32(255), output_shape=(60, 72))
    ds = SRPatchDataset(pairs, 2, 10, augment=False, upsample_input=True)
    for seed in range(8):  # crops at the image borders and inside
        rng = np.random.default_rng(seed)
        top, left = int(rng.integers(0, 30 - 10 + 1)), int(rng.integers(0, 36 - 10 + 1))
        sample = ds[(0, seed)]
        expected = whole[2 * top : 2 * top + 20, 2 * left : 2 * left + 20].transpose(2, 0, 1)
        np.testing.assert_allclose(sample["image"].numpy(), expected, atol=1e-6)
        assert sample["target"].shape == (3, 20, 20)


def test_div2k_layout_is_read_and_a_size_mismatch_names_the_files(tmp_path, astronaut):
    root = tmp_path / "DIV2K"
    for i in (1, 2):
        hr = astronaut[: 60 + i, :64]  # 61 and 62 rows: mod-cropped to 60 and 62
        write_image(root / "HR" / f"{i:04d}.png", hr)
        write_image(root / "LR_bicubic" / "X2" / f"{i:04d}x2.png", make_lr(mod_crop(hr, 2), 2))
    pairs = load_sr_images(root, 2, 3)
    assert pairs.names == ["0001.png", "0002.png"]
    assert [h.shape for h in pairs.hr] == [(60, 64, 3), (62, 64, 3)]
    np.testing.assert_array_equal(
        pairs.lr[2][1], read_image(root / "LR_bicubic/X2/0002x2.png").array
    )
    with pytest.raises(ConfigError, match="no x3 LR folder"):  # every listed scale needs its LR
        load_sr_images(root, [2, 3], 3)

    write_image(root / "LR_bicubic" / "X2" / "0002x2.png", astronaut[:30, :30])
    with pytest.raises(ImageFormatError, match=r"0002x2\.png: LR image is 30x30.*0002\.png"):
        load_sr_images(root, 2, 3)
    (root / "LR_bicubic" / "X2" / "0002x2.png").unlink()
    with pytest.raises(ImageFormatError, match=r"0002\.png: no LR image"):
        load_sr_images(root, 2, 3)
    with pytest.raises(ConfigError, match="no x3 LR folder"):
        load_sr_images(root, 3, 3)
    with pytest.raises(ConfigError, match="layout=div2k"):
        load_sr_images(root / "HR", 2, 3, layout="div2k")


def test_a_multi_scale_sample_is_the_single_scale_sample_at_the_scale_its_seed_draws(astronaut):
    hr = astronaut[:61, :73]  # mod-cropped per sample: 60 x 72 at x2 and x3
    multi = SRPatchDataset(load_pairs([hr], [2, 3]), [2, 3], 0, True, True, hr_patch_size=20)
    single = {
        s: SRPatchDataset(load_pairs([mod_crop(hr, s)], s), s, 0, True, True, hr_patch_size=20)
        for s in (2, 3)
    }
    drawn = [multi.draw_scale(seed) for seed in range(16)]
    assert set(drawn) == {2, 3} and drawn == [multi.draw_scale(seed) for seed in range(16)]
    for seed, scale in enumerate(drawn):
        sample, expected = multi[(0, seed)], single[scale][(0, seed)]
        assert sample["image"].shape == sample["target"].shape == (3, 20, 20)  # any scale
        for key in ("image", "target", "seed"):
            torch.testing.assert_close(sample[key], expected[key], rtol=0, atol=0)


def test_multi_scale_input_is_the_whole_lr_image_upscaled_at_the_hr_patch(astronaut):
    hr = astronaut[:61, :73]
    ds = SRPatchDataset(load_pairs([hr], [2, 3]), [2, 3], 0, False, True, hr_patch_size=20)
    for seed in range(8):
        scale = ds.draw_scale(seed)
        lr = make_lr(mod_crop(hr, scale), scale).astype(np.float32) / np.float32(255)
        whole = imresize(lr, output_shape=(lr.shape[0] * scale, lr.shape[1] * scale))
        p = -(-20 // scale)  # the LR crop: 10 at x2, 7 at x3 (its HR square cut to 20)
        rng = np.random.default_rng(seed)
        top = int(rng.integers(0, lr.shape[0] - p + 1)) * scale
        left = int(rng.integers(0, lr.shape[1] - p + 1)) * scale
        sample = ds[(0, seed)]
        expected = whole[top : top + 20, left : left + 20].transpose(2, 0, 1)
        np.testing.assert_allclose(sample["image"].numpy(), expected, atol=1e-6)
        target = hr[top : top + 20, left : left + 20].transpose(2, 0, 1) / np.float32(255)
        np.testing.assert_allclose(sample["target"].numpy(), target, atol=1e-7)


def test_several_scales_keep_the_hr_images_whole_and_make_each_lr(photos):
    pairs = load_sr_images(photos, [2, 3], 3)
    odd = pairs.names.index("odd.png")
    assert pairs.hr[odd].shape == (50, 61, 3)
    assert pairs.lr[2][odd].shape == (25, 30, 3) and pairs.lr[3][odd].shape == (16, 20, 3)
    with pytest.raises(
        ImageFormatError,
        match=r"odd\.png: its x3 LR image is 16x20, smaller than its LR patch of 17",
    ):
        SRPatchDataset(pairs, [2, 3], 0, True, True, hr_patch_size=50)  # 25 fits at x2
    with pytest.warns(UserWarning, match=r"left out 1 training image.*odd\.png"):
        kept = SRPatchDataset(pairs, [2, 3], 0, True, True, hr_patch_size=50, skip_small=True)
    assert len(kept) == len(pairs.hr) - 1 and "odd.png" not in kept.names
    assert all(len(kept.lr[s]) == len(kept) for s in (2, 3))


# Config


def test_sr_config_rules(tmp_path):
    base = ["data.lr_patch_size=48"]
    with pytest.raises(ConfigError, match="noise must be null for method 'sr'"):
        load_config("edsr-baseline-x2", [*base, "noise=gauss25"])
    with pytest.raises(ConfigError, match="data.scale is required"):
        load_config("edsr-baseline-x2", [*base, "data.scale=null"])
    with pytest.raises(ConfigError, match="model.scale=2 must equal data.scale=3"):
        load_config("edsr-baseline-x2", [*base, "data.scale=3"])
    with pytest.raises(ConfigError, match="upsample_input"):
        load_config("rednet-sr", ["data.upsample_input=false"])
    # the patch multiple-of-32 rule is for the denoising U-Nets only; sr patches are LR ones
    assert load_config("edsr-baseline-x2", ["data.lr_patch_size=50"]).data.lr_patch_size == 50
    with pytest.raises(ConfigError, match="sr data has data.lr_patch_size"):
        load_config("edsr-baseline-x2", ["data.patch_size=50"])
    with pytest.raises(ConfigError, match="method.name=sr"):
        load_config("n2c-gauss25", ["model={arch: edsr}"])


def test_several_scales_only_where_the_input_is_upsampled():
    cfg = load_config("rednet-sr")  # the paper's set-up: one model for x2, x3 and x4
    assert cfg.data.scales == [2, 3, 4] and cfg.data.hr_patch_size == 50
    assert load_config("rednet-sr", ["data.scale=[3]"]).data.scale == 3
    bad = [
        ("edsr-baseline-x2", "data.scale=[2, 3]", "pixel-shuffle upsampler has one factor"),
        ("rednet-sr", "data.upsample_input=false", "set data.upsample_input=true"),
        ("rednet-sr", "data.hr_patch_size=null", "needs data.hr_patch_size"),
        ("edsr-baseline-x2", "data.hr_patch_size=96", "set data.lr_patch_size instead"),
        ("rednet-sr", "data.scale=[2, 2]", "distinct"),
        ("rednet-sr", "data.scale=[2, 9]", "scales must be 2 to 8"),
    ]
    for preset, override, message in bad:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(preset, [override])


# Training


def test_edsr_training_writes_an_upscaling_model(x2_run):
    descriptor = load_model(x2_run).descriptor
    assert descriptor.task == "upscale" and descriptor.scale == 2
    assert descriptor.method == "sr" and descriptor.noise is None
    log = (x2_run / "train.log").read_text()
    assert "x2, LR patch 12" in log
    assert re.search(r"validation epoch\[1\]: PSNR [\d.]+ dB, .*\(bicubic [\d.]+ dB\)", log)


def test_x3_initialised_from_x2_loads_every_tensor_but_the_upsampler(x2_run, photos, tmp_path):
    x2_file = x2_run / "model.safetensors"
    x2 = load_file(str(x2_file))
    net = build_net("edsr", scale=3, n_blocks=2, features=8)
    loaded, skipped, adapted = init_from_model_file(net, "edsr", x2_file)
    assert adapted == []
    assert loaded == sorted(k for k in x2 if not k.startswith("upsample."))
    assert skipped == ["upsample.0.bias", "upsample.0.weight"]
    for key in loaded:
        torch.testing.assert_close(net.state_dict()[key], x2[key], rtol=0, atol=0)
    with pytest.raises(ModelLoadError, match="cannot initialise a 'rednet'"):
        init_from_model_file(build_net("rednet", n_layers=10), "rednet", x2_file)

    result = CliRunner().invoke(
        main,
        ["train", "edsr-baseline-x3", "--data", str(photos), "--init-from", str(x2_run),
         "--out", str(tmp_path / "x3"), "--max-steps", "1", "--set", "data.lr_patch_size=12",
         *[a for t in TINY for a in ("--set", t)]],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    log = (tmp_path / "x3" / "train.log").read_text()
    assert "14 tensors loaded, 2 kept as initialised (upsample.0.bias, upsample.0.weight)" in log
    assert load_model(tmp_path / "x3").descriptor.scale == 3


def test_rednet_sr_trains_on_bicubic_upscaled_input_and_upscales(photos, tmp_path):
    cfg = load_config(
        "rednet-sr",
        [f"data.train=['{photos}']", "model.n_layers=10", "model.features=8", "train.epochs=1",
         "train.batch_size=2", "data.scale=2", "data.hr_patch_size=null",
         "data.lr_patch_size=12", f"data.val='{photos}'", "data.val_max_images=1"],
    )  # fmt: skip
    train(cfg, tmp_path / "red")
    model = load_model(tmp_path / "red", device="cpu")
    assert model.descriptor.task == "upscale" and model.descriptor.upsample_input
    assert model.upscale(np.zeros((7, 9, 3), np.uint8)).shape == (14, 18, 3)


def test_one_rednet_trains_on_several_scales_and_upscales_at_each(photos, tmp_path):
    cfg = load_config(
        "rednet-sr",
        [f"data.train=['{photos}']", "model.n_layers=10", "model.features=8", "train.epochs=1",
         "train.batch_size=2", "data.repeat=1", "data.scale=[2, 3]", "data.hr_patch_size=24",
         f"data.val='{photos}'", "data.val_max_images=1", "train.log_every=1"],
    )  # fmt: skip
    result = train(cfg, tmp_path / "red")
    assert result.steps == 2  # 5 images, batch 2: mixed-scale batches of 24 x 24 patches
    log = (tmp_path / "red" / "train.log").read_text()
    assert "x2/x3, HR patch 24" in log
    assert re.search(r"validation epoch\[1\]: PSNR [\d.]+ dB.*; psnr_x2 [\d.]+, psnr_x3", log)
    model = load_model(tmp_path / "red", device="cpu")
    assert (model.descriptor.scale, model.descriptor.scales) == (2, [2, 3])
    image = np.zeros((7, 9, 3), np.uint8)
    assert model.upscale(image).shape == (14, 18, 3)
    assert model.upscale(image, scale=3).shape == (21, 27, 3)
    with pytest.raises(ModelLoadError, match="upscales x2/x3, not x4"):
        model.upscale(image, scale=4)
    report = evaluate_upscaling(
        lambda lr: model.upscale(lr.transpose(1, 2, 0), scale=3).transpose(2, 0, 1),
        [read_image(photos / "img0.png").array],
        ["img0.png"],
        3,
    )
    assert report.scale == 3 and np.isfinite(report.psnr)

    run = CliRunner().invoke
    model_file = str(tmp_path / "red" / "model.safetensors")
    args = ["eval", "--model", model_file, "--data", str(photos), "--scale"]
    evaluated = run(main, [*args, "3", "--json", str(tmp_path / "x3.json")])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads((tmp_path / "x3.json").read_text())["scale"] == 3
    assert "upscales x2/x3" in run(main, [*args, "4"]).output
    out = tmp_path / "up"
    args = ["upscale", str(photos / "img0.png"), "-o", str(out), "--model", model_file]
    upscaled = run(main, [*args, "--scale", "3", "--backend", "torch"])
    assert upscaled.exit_code == 0, upscaled.output
    lr = read_image(photos / "img0.png").array
    assert read_image(out / "img0.png").array.shape[:2] == (lr.shape[0] * 3, lr.shape[1] * 3)
    assert "upscales x2/x3" in run(main, [*args, "--scale", "4", "--overwrite"]).output


# Evaluation


def test_bicubic_baseline_matches_an_independent_computation(astronaut):
    scale, hr = 3, astronaut[:101, :130]
    report = evaluate_upscaling(lambda lr: np.zeros((3, 99, 129)), [hr], ["a.png"], scale)
    # independently: mod-crop, MATLAB bicubic down (8-bit), up (8-bit), Y, crop `scale`
    hr = hr[:99, :129].astype(np.float64)
    lr = np.clip(np.floor(imresize(hr / 255, output_shape=(33, 43)) * 255 + 0.5), 0, 255)
    up = np.clip(np.floor(imresize(lr / 255, output_shape=(99, 129)) * 255 + 0.5), 0, 255)
    weights = np.array([65.481, 128.553, 24.966])
    y_hr, y_up = 16 + hr / 255 @ weights, 16 + up / 255 @ weights
    mse = np.mean((y_hr[3:-3, 3:-3] - y_up[3:-3, 3:-3]) ** 2)
    assert report.psnr_in == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-9)
    assert report.crop_border == scale and report.y_channel and report.noise is None


def test_y_psnr_ignores_exactly_scale_border_pixels(astronaut):
    from restorekit.evaluation.upscaling import bicubic_upscale

    def bicubic_with_bad_border(width):
        def upscale(lr):
            lr8 = np.clip(np.floor(lr.transpose(1, 2, 0) * 255 + 0.5), 0, 255).astype(np.uint8)
            out = bicubic_upscale(lr8, 2).transpose(2, 0, 1) / 255.0
            out[:, :width], out[:, -width:], out[:, :, :width] = 1.0, 0.0, 0.5
            return out

        return upscale

    hr = astronaut[:64, :80]
    inside = evaluate_upscaling(bicubic_with_bad_border(2), [hr], ["a"], 2)
    assert inside.psnr == pytest.approx(inside.psnr_in, abs=1e-12)
    assert inside.ssim == pytest.approx(inside.ssim_in, abs=1e-12)
    beyond = evaluate_upscaling(bicubic_with_bad_border(3), [hr], ["a"], 2)
    assert beyond.psnr < beyond.psnr_in - 1


def test_grey_images_are_replicated_to_rgb_and_tiny_images_refused(astronaut):
    grey = astronaut[:40, :40, :1]
    shapes = []

    def upscale(lr):
        shapes.append(lr.shape)
        return np.zeros((3, 40, 40))

    from_grey = evaluate_upscaling(upscale, [grey], ["g"], 2)
    from_rgb = evaluate_upscaling(upscale, [np.repeat(grey, 3, axis=2)], ["g"], 2)
    assert shapes == [(3, 20, 20)] * 2 and from_grey.psnr_in == from_rgb.psnr_in
    with pytest.raises(ImageFormatError, match="smaller than the scale 3"):
        evaluate_upscaling(lambda lr: lr, [astronaut[:2, :5]], ["tiny.png"], 3)
    with pytest.raises(ImageFormatError, match="tiny.png.*too small for x3"):
        evaluate_upscaling(lambda lr: lr, [astronaut[:6, :30]], ["tiny.png"], 3)


def test_eval_command_prints_the_table_and_writes_json(x2_run, photos, tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(
        main, ["eval", "--model", str(x2_run), "--data", str(photos), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "| x2 | 5 images | Y channel, border 2" in result.output
    assert re.search(r"Bicubic: PSNR = [\d.]+ / SSIM = [\d.]+; EDSR: PSNR = [\d.]+", result.output)
    report = json.loads(out.read_text())
    assert {"psnr_in", "ssim_in", "psnr", "ssim", "n_images", "images"} <= report.keys()
    assert report["n_images"] == 5 and report["scale"] == 2 and report["crop_border"] == 2

    ensemble = CliRunner().invoke(
        main, ["eval", "--model", str(x2_run), "--data", str(photos), "--ensemble", "--rgb"]
    )
    assert ensemble.exit_code == 0 and "EDSR+: PSNR" in ensemble.output and "RGB" in ensemble.output


def test_eval_with_ensemble_scores_the_same_on_both_backends(x2_run, photos, tmp_path, monkeypatch):
    """A shipped upscaler (exported on first use): ``auto`` runs it on ONNX Runtime, also
    with --ensemble (the evaluation's 8 passes run on either backend), with PyTorch's figures."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")

    folder = tmp_path / "zoo" / "tiny-x2"
    folder.mkdir(parents=True)
    shutil.copy(resolve_model(x2_run), folder / "model.safetensors")
    monkeypatch.setattr(restorekit.zoo, "ZOO_DIR", tmp_path / "zoo")
    monkeypatch.chdir(tmp_path)  # "tiny-x2" is a name, not a path
    reports = {}
    for backend, said in (
        ("torch", "backend: torch fp32 (--backend torch; --ensemble runs on either backend)"),
        (
            "auto",
            "backend: onnxruntime fp32 (the shipped model's ONNX export; ",
        ),
    ):
        out = tmp_path / f"{backend}.json"
        args = ["eval", "--model", "tiny-x2", "--data", str(photos), "--ensemble"]
        args += ["--backend", backend, "--device", "cpu", "--json", str(out)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert result.output.startswith(said) and "EDSR+: PSNR" in result.output, result.output
        reports[backend] = json.loads(out.read_text())
    assert reports["torch"]["backend"] == "torch" and reports["auto"]["backend"] == "onnxruntime"
    assert reports["auto"]["ensemble"] and reports["auto"]["n_images"] == 5
    for key in ("psnr", "psnr_in"):
        assert reports["auto"][key] == pytest.approx(reports["torch"][key], abs=1e-3)
    for key in ("ssim", "ssim_in"):
        assert reports["auto"][key] == pytest.approx(reports["torch"][key], abs=1e-5)


def test_wrong_scale_for_the_model_is_a_clear_error(x2_run, photos):
    result = CliRunner().invoke(
        main, ["eval", "--model", str(x2_run), "--data", str(photos), "--scale", "3"]
    )
    assert result.exit_code != 0
    assert "--scale 3 does not match the model, which upscales x2" in result.output


def test_format_names_the_model_and_the_ensemble(astronaut):
    report = evaluate_upscaling(lambda lr: np.zeros((3, 64, 64)), [astronaut[:64, :64]], ["a"], 2)
    assert format_upscaling_report(report, "EDSR").startswith("Bicubic: PSNR = ")
    assert "; EDSR: PSNR = " in format_upscaling_report(report, "EDSR")


# Inference


def test_upscale_command_writes_images_scale_times_larger(x2_run, tmp_path, astronaut):
    inputs = tmp_path / "in"
    write_image(inputs / "rgb.png", astronaut[:20, :30])
    write_image(inputs / "grey.png", astronaut[:16, :12, :1])
    write_image(inputs / "rgba.png", astronaut[:10, :14], alpha=astronaut[:10, :14, 0])
    result = CliRunner().invoke(
        main, ["upscale", str(inputs), "-o", str(tmp_path / "out"), "--model", str(x2_run)]
    )
    assert result.exit_code == 0, result.output
    out = {p: read_image(tmp_path / "out" / p) for p in ("rgb.png", "grey.png", "rgba.png")}
    assert out["rgb.png"].array.shape == (40, 60, 3)
    assert out["grey.png"].array.shape == (32, 24, 1)
    assert out["rgba.png"].array.shape == (20, 28, 3) and out["rgba.png"].alpha.shape == (20, 28)

    # tiled with the scale (an overlap of 24 covers the tiny EDSR's 8-pixel reach) = whole
    model = load_model(x2_run, device="cpu", tile=32, overlap=24)
    tiled = model.upscale(_uniform(astronaut[:40, :70]))
    model.tile = None
    np.testing.assert_allclose(tiled, model.upscale(_uniform(astronaut[:40, :70])), atol=1e-5)
    with pytest.raises(ModelLoadError, match="upscales x2: use upscale"):
        model.denoise(astronaut[:8, :8])


def test_self_ensemble_is_the_mean_of_the_eight_transformed_outputs():
    def run(x):  # N x C x H x W -> N x C x 2H x 2W, weighted by column: not equivariant
        up = np.repeat(np.repeat(x, 2, axis=-2), 2, axis=-1)
        return up * np.linspace(0.5, 1.5, up.shape[-1]) + up[..., :1, :1] * 0.1

    x = np.random.default_rng(0).random((1, 3, 5, 7))
    assert not np.allclose(self_ensemble(run, x), run(x))
    outputs = []
    for flip in (False, True):
        for k in range(4):
            moved = np.rot90(x[..., ::-1] if flip else x, k, axes=(2, 3))
            back = np.rot90(run(np.ascontiguousarray(moved)), -k, axes=(2, 3))
            outputs.append(back[..., ::-1] if flip else back)
    np.testing.assert_allclose(self_ensemble(run, x), np.mean(outputs, axis=0), atol=1e-12)

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 12, 3, padding=1), torch.nn.PixelShuffle(2))
    xt = torch.from_numpy(x).float()
    with torch.no_grad():
        expected = []
        for flip in (False, True):
            for k in range(4):
                moved = torch.rot90(xt.flip(-1) if flip else xt, k, dims=(2, 3))
                back = torch.rot90(net(moved), -k, dims=(2, 3))
                expected.append(back.flip(-1) if flip else back)
        got = self_ensemble(net, xt)
    assert got.shape == (1, 3, 10, 14)
    torch.testing.assert_close(got, torch.stack(expected).mean(0))
    assert not torch.allclose(got, net(xt).detach(), atol=1e-4)  # the conv is not symmetric
