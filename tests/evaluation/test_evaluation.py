import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import tiny_config

from restorekit.cli import main
from restorekit.degrade import parse_noise
from restorekit.engine import train
from restorekit.evaluation import default_repeats, evaluate_denoising, format_report
from restorekit.metrics import psnr


@pytest.fixture
def trained_run(photo_folder, tmp_path):
    train(tiny_config(photo_folder, **{"train.epochs": 1}), tmp_path / "run")
    return tmp_path / "run"


def test_identity_denoiser_scores_exactly_the_noisy_image(astronaut):
    report = evaluate_denoising(
        lambda x: x, [astronaut], ["a.png"], parse_noise("gauss25"), repeats=2, seed=5
    )
    assert report.psnr == pytest.approx(report.psnr_in, abs=1e-9)
    assert report.ssim == pytest.approx(report.ssim_in, abs=1e-9)
    assert 20.0 < report.psnr_in < 21.5  # sigma 25 on 8 bits gives about 20.6 dB
    assert report.n_images == 1 and report.repeats == 2


def test_noise_is_drawn_from_a_fixed_seed(astronaut):
    noise = parse_noise("gauss25")
    runs = [
        evaluate_denoising(lambda x: x, [astronaut], ["a"], noise, 1, seed).psnr_in
        for seed in (0, 0, 1)
    ]
    assert runs[0] == runs[1] != runs[2]


def test_output_is_clipped_and_rounded_to_8_bits(astronaut):
    clean = astronaut[:64, :64]
    report = evaluate_denoising(
        lambda x: clean.transpose(2, 0, 1) / 255.0 + 0.4 / 255,
        [clean],
        ["a"],
        parse_noise("gauss25"),
    )
    assert report.psnr == float("inf")  # 0.4/255 off rounds back to the clean 8-bit image


def test_default_repeats_follow_the_papers_code():
    assert [default_repeats(n) for n in ("Kodak24", "BSD300_test", "Set14_N2N", "CBSD68")] == [
        10,
        3,
        20,
        1,
    ]


def test_report_line_matches_the_papers_code():
    report = evaluate_denoising(
        lambda x: x, [np.full((32, 32, 3), 128, np.uint8)], ["a"], parse_noise("gauss:10")
    )
    assert format_report(report).startswith("Before denoise: Average PSNR_b = ")
    assert "; After denoise: Average PSNR = " in format_report(report)


def test_eval_command_prints_table_saves_images_and_json(trained_run, photo_folder, tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "--model",
            str(trained_run),
            "--data",
            str(photo_folder),
            "--noise",
            "gauss25",
            "--repeats",
            "2",
            "--json",
            str(out),
            "--save-dir",
            str(tmp_path / "saved"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Before denoise: Average PSNR_b" in result.output
    report = json.loads(out.read_text())
    assert {"psnr_in", "ssim_in", "psnr", "ssim", "n_images", "images"} <= report.keys()
    assert report["n_images"] == 4 and len(report["images"]) == 4
    assert (tmp_path / "saved" / "img0_denoised.png").exists()
    # The JSON's "before" figure is the 8-bit noisy image's PSNR: check one independently.
    assert 19.5 < report["images"][0]["psnr_in"] < 21.5


def test_eval_psnr_matches_an_independent_computation(astronaut):
    noise = parse_noise("gauss:15")
    report = evaluate_denoising(lambda x: x * 0.5 + 0.25, [astronaut], ["a"], noise, seed=3)
    noisy = noise.sample_numpy(
        astronaut.transpose(2, 0, 1) / 255.0, np.random.default_rng([3, 0, 0])
    )
    out8 = np.clip(np.clip(noisy * 0.5 + 0.25, 0, 1) * 255 + 0.5, 0, 255).astype(np.uint8)
    assert report.psnr == pytest.approx(psnr(astronaut, out8.transpose(1, 2, 0)), abs=1e-9)


def test_eval_ensemble_of_a_denoiser_is_the_mean_over_the_8_flips(
    trained_run, photo_folder, tmp_path
):
    """``eval --ensemble`` on a denoiser scores the mean of the model's outputs on the 8
    flipped/rotated noisy images, computed here by hand with NumPy."""
    from restorekit import load_model
    from restorekit.io import list_images, read_image, to_uint8

    out = tmp_path / "ensemble.json"
    args = ["eval", "--model", str(trained_run), "--data", str(photo_folder), "--noise", "gauss25"]
    result = CliRunner().invoke(
        main, [*args, "--ensemble", "--backend", "torch", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "self-ensemble x8" in result.output
    report = json.loads(out.read_text())
    model = load_model(trained_run, device="cpu")

    def by_hand(noisy: np.ndarray) -> np.ndarray:  # C x H x W
        outputs = []
        for turns in range(4):
            for flip in (False, True):
                x = np.rot90(noisy, turns, axes=(1, 2))
                x = x[:, :, ::-1] if flip else x
                y = model.predict(np.ascontiguousarray(x)[None])[0]
                y = y[:, :, ::-1] if flip else y
                outputs.append(np.rot90(y, -turns, axes=(1, 2)))
        return np.mean(outputs, axis=0)

    paths = list_images(photo_folder)
    images = [to_uint8(read_image(p).array) for p in paths]
    expected = evaluate_denoising(by_hand, images, [p.name for p in paths], parse_noise("gauss25"))
    assert report["ensemble"] and report["psnr"] == pytest.approx(expected.psnr, abs=1e-4)
    plain = CliRunner().invoke(main, [*args, "--backend", "torch"])
    assert plain.exit_code == 0 and f"Average PSNR = {report['psnr']:.4f}" not in plain.output


def test_eval_replaces_its_json_report_only_with_overwrite(trained_run, photo_folder, tmp_path):
    report = tmp_path / "report.json"
    report.write_text("{}")
    args = ["eval", "--model", str(trained_run), "--data", str(photo_folder), "--noise", "gauss25"]
    refused = CliRunner().invoke(main, [*args, "--json", str(report)])
    assert refused.exit_code != 0 and "already exists" in refused.output
    assert report.read_text() == "{}" and "PSNR" not in refused.output  # refused before any work
    replaced = CliRunner().invoke(main, [*args, "--json", str(report), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert json.loads(report.read_text())["n_images"] == 4


def test_a_grey_model_is_evaluated_on_colour_images_channel_by_channel(photo_folder, tmp_path):
    """As `restorekit denoise` runs it: each colour channel of the noisy image through the
    grey model (the evaluation's figure is that of those results, checked by hand)."""
    import torch

    from restorekit import load_model
    from restorekit.io import list_images, read_image, to_uint8
    from restorekit.nets import build_net
    from restorekit.nets.files import ModelDescriptor, save_model

    torch.manual_seed(0)
    args = {"in_channels": 1, "out_channels": 1, "features": 8}
    net = build_net("unet-n2n", **args)
    grey = tmp_path / "grey.safetensors"
    descriptor = ModelDescriptor(
        arch="unet-n2n", arch_args=args, in_channels=1, out_channels=1,
        size_multiple=net.size_multiple, noise="gauss:25",
    )  # fmt: skip
    save_model(grey, net, descriptor)
    out = tmp_path / "grey.json"
    result = CliRunner().invoke(
        main, ["eval", "--model", str(grey), "--data", str(photo_folder), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    model = load_model(grey, device="cpu")
    paths = list_images(photo_folder)
    images = [to_uint8(read_image(p).array) for p in paths]
    assert images[0].shape[2] == 3
    expected = evaluate_denoising(
        lambda noisy: model.predict(noisy[:, None])[:, 0], images, [p.name for p in paths],
        parse_noise("gauss:25"),
    )  # fmt: skip
    assert json.loads(out.read_text())["psnr"] == pytest.approx(expected.psnr, abs=1e-6)
