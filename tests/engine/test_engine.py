import re
import signal

import numpy as np
import pytest
import torch
from conftest import tiny_config
from safetensors.torch import load_file

from restorekit.data import EpochSampler, PatchDataset
from restorekit.degrade import parse_noise
from restorekit.engine import TrainingInterrupted, train
from restorekit.errors import ConfigError, RestorekitError
from restorekit.infer.model import load_model
from restorekit.io import write_image
from restorekit.methods import Neighbor2Neighbor
from restorekit.metrics import psnr


def _weights(path):
    return load_file(str(path))


def test_sampler_is_a_pure_function_of_seed_epoch_and_position():
    full = list(EpochSampler(5, 2, seed=3, epoch=4))
    assert sorted(i for i, _ in full) == sorted(list(range(5)) * 2)
    assert list(EpochSampler(5, 2, seed=3, epoch=4, start=6)) == full[6:]
    assert list(EpochSampler(5, 2, seed=3, epoch=5)) != full


def test_patches_are_reproducible_and_paired_crops_align(astronaut):
    ds = PatchDataset([astronaut], 64, augment=True, partners=[astronaut.copy()])
    a, b = ds[(0, 123)], ds[(0, 123)]
    assert torch.equal(a["image"], b["image"]) and a["image"].shape == (3, 64, 64)
    assert torch.equal(a["image"], a["partner"])
    assert float(a["image"].min()) >= 0 and float(a["image"].max()) <= 1


def test_small_images_are_padded_to_the_patch(astronaut):
    ds = PatchDataset([astronaut[:40, :50]], 64, augment=False)
    assert ds[(0, 1)]["image"].shape == (3, 64, 64)


def test_resumed_run_matches_uninterrupted_run(photo_folder, tmp_path):
    cfg = tiny_config(photo_folder, **{"train.epochs": 3})  # 2 steps/epoch, 6 in all
    _straight_and_resumed(cfg, tmp_path)


def _straight_and_resumed(cfg, tmp_path):
    """Train ``cfg`` straight through, and again stopped after step 3 and resumed; check the
    final weights agree; return both results."""
    straight = train(cfg, tmp_path / "straight")
    train(cfg, tmp_path / "split", max_steps=3)  # stops mid-epoch
    # As if killed between the two writes of a save: the state file alone is the resume point.
    (tmp_path / "split" / "checkpoints" / "last.safetensors").unlink()
    resumed = train(cfg, tmp_path / "split", resume=True)
    assert straight.steps == resumed.steps == 6
    a, b = _weights(straight.model_path), _weights(resumed.model_path)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    return straight, resumed


def test_interrupt_saves_a_checkpoint_and_resume_continues(photo_folder, tmp_path, monkeypatch):
    cfg = tiny_config(photo_folder)
    original = Neighbor2Neighbor.loss

    def loss_then_sigterm(self, net, batch, progress, generator):
        if progress.step == 2:
            signal.raise_signal(signal.SIGTERM)
        return original(self, net, batch, progress, generator)

    monkeypatch.setattr(Neighbor2Neighbor, "loss", loss_then_sigterm)
    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "last.state.pt").exists()
    monkeypatch.setattr(Neighbor2Neighbor, "loss", original)
    assert train(cfg, tmp_path / "run", resume=True).steps == 4


def test_a_failed_process_group_keeps_sigterm_caught_while_the_error_is_printed():
    # torchrun's agent SIGTERMs the survivors when one process dies; a survivor that restored
    # the default handler died before printing "the process group failed ... --resume RUN"
    from restorekit.engine.trainer import ProcessGroupFailed, _stop_requests

    before = signal.getsignal(signal.SIGTERM)
    with _stop_requests():
        pass
    assert signal.getsignal(signal.SIGTERM) is before  # a normal end restores it
    try:
        with pytest.raises(ProcessGroupFailed), _stop_requests() as requests:
            raise ProcessGroupFailed("the process group failed at step 3")
        signal.raise_signal(signal.SIGTERM)  # this process is still here to say why it stops
        assert requests == ["SIGTERM"]
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_finished_run_folder_is_not_overwritten(photo_folder, tmp_path):
    cfg = tiny_config(photo_folder, **{"train.epochs": 1})
    train(cfg, tmp_path / "run")
    with pytest.raises(RestorekitError, match="already holds a run"):
        train(cfg, tmp_path / "run")


def test_resume_without_checkpoint_says_so(tmp_path, photo_folder):
    with pytest.raises(RestorekitError, match="no checkpoint to resume"):
        train(tiny_config(photo_folder), tmp_path / "empty", resume=True)


def test_run_writes_log_lines_tensorboard_and_best_checkpoint(photo_folder, tmp_path):
    cfg = tiny_config(photo_folder, **{"data.val": f"'{photo_folder}'", "data.val_max_images": 1})
    train(cfg, tmp_path / "run")
    log = (tmp_path / "run" / "train.log").read_text()
    assert re.search(
        r"^epoch\[1\], iter\[1\], loss:\d+\.\d{6}, [\d.]+ imgs/sec, lr:\d\.\d\de-\d\d"
        r", eta \d+[hms]\S*$",
        log,
        re.MULTILINE,
    )
    assert "validation epoch[2]: PSNR" in log
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert (tmp_path / "run" / "checkpoints" / "best.safetensors").exists()
    descriptor = load_model(tmp_path / "run").descriptor  # a run folder loads as a model
    assert descriptor.arch == "unet-ne2ne" and descriptor.training["step"] == 4


def test_too_few_images_for_a_batch_is_a_clear_error(photo_folder, tmp_path):
    cfg = tiny_config(photo_folder, **{"train.batch_size": 9})
    with pytest.raises(ConfigError, match="less than one batch"):
        train(cfg, tmp_path / "run")


def test_n2n_trains_on_two_noisy_folders_matched_by_name(tmp_path, astronaut):
    rng = np.random.default_rng(0)
    for folder in ("a", "b"):
        for i in range(2):
            noisy = astronaut[:64, i * 64 : i * 64 + 64] + rng.normal(0, 20, (64, 64, 3))
            write_image(tmp_path / folder / f"{i}.png", np.clip(noisy, 0, 255).astype(np.uint8))
    cfg = tiny_config(tmp_path / "a", "n2n", noise="null", **{"data.pairs": f"'{tmp_path / 'b'}'"})
    assert train(cfg, tmp_path / "run").steps == 2
    (tmp_path / "b" / "1.png").unlink()
    with pytest.raises(ConfigError, match="matched by file name"):
        train(cfg, tmp_path / "run2")


@pytest.mark.parametrize("method", ["n2c", "n2n"])
def test_supervised_and_noise2noise_steps_run(photo_folder, tmp_path, method):
    assert train(tiny_config(photo_folder, method), tmp_path / "run").steps == 4


def test_short_ne2ne_run_on_a_real_image_lowers_the_error(tmp_path, astronaut):
    write_image(tmp_path / "data" / "astronaut.png", astronaut)
    cfg = tiny_config(
        tmp_path / "data",
        **{
            "model.arch": "unet-n2n",  # He init; the Ne2Ne authors' 0.1 x He needs ~1200 steps
            "model.features": 16,
            "train.batch_size": 4,
            "data.repeat": 1600,
            "train.epochs": 1,
            "optim.lr": 1e-3,
            "optim.milestones": "[0.8]",
            "train.log_every": 1000,
            "train.checkpoint_every": 1000,
        },
    )
    result = train(cfg, tmp_path / "run")  # 400 steps of Neighbor2Neighbor, no clean target
    noisy = (
        parse_noise("gauss25")
        .sample_numpy(astronaut.transpose(2, 0, 1) / 255.0, np.random.default_rng(0))
        .transpose(1, 2, 0)
    )
    denoised = load_model(result.model_path).denoise(noisy)
    to8 = lambda x: np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)  # noqa: E731
    before, after = psnr(astronaut, to8(noisy)), psnr(astronaut, to8(denoised))
    assert after > before + 2.5, (before, after)  # seeds 0-2 gave margins above 2.5 dB


def test_fp16_on_cpu_is_refused_with_the_alternative(photo_folder, tmp_path):
    cfg = tiny_config(photo_folder, **{"train.precision": "fp16"})
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU.*bf16"):
        train(cfg, tmp_path / "run")


@pytest.mark.skipif(
    not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="this CPU has no native bf16"
)
def test_bf16_autocast_on_cpu_trains_close_to_fp32(photo_folder, tmp_path):
    losses = {}
    for precision in ("fp32", "bf16"):
        cfg = tiny_config(photo_folder, **{"train.precision": precision, "train.epochs": 1})
        train(cfg, tmp_path / precision)
        log = (tmp_path / precision / "train.log").read_text()
        losses[precision] = [float(v) for v in re.findall(r"loss:([0-9.]+)", log)]
    assert len(losses["bf16"]) == len(losses["fp32"]) > 0
    # the same seeds and data: bf16 rounding moves each loss by well under 5 %
    np.testing.assert_allclose(losses["bf16"], losses["fp32"], rtol=0.05)
    assert losses["bf16"] != losses["fp32"]  # autocast did run in bf16


def _raw_weights_after_each_step(monkeypatch):
    """Patch ``Stepper.step`` to record the raw network's weights after every step."""
    from restorekit.engine.step import Stepper

    original, recorded = Stepper.step, []

    def step_and_record(self, sample, progress, lr):
        out = original(self, sample, progress, lr)
        recorded.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        return out

    monkeypatch.setattr(Stepper, "step", step_and_record)
    return recorded


def test_ema_models_hold_the_average_of_the_weights_after_each_step(
    photo_folder, tmp_path, monkeypatch
):
    raw = _raw_weights_after_each_step(monkeypatch)
    cfg = tiny_config(
        photo_folder,
        **{"train.ema": 0.5, "data.val": f"'{photo_folder}'", "data.val_max_images": 1},
    )
    result = train(cfg, tmp_path / "run")  # 2 epochs of 2 steps, validated after each
    assert result.steps == len(raw) == 4
    # By hand: the first average is the first step's weights, then after n earlier updates
    # d * average + (1 - d) * weights with d = min(0.5, (1 + n) / (10 + n)) (the warm-up).
    averages = [raw[0]]
    for n, weights in enumerate(raw[1:], start=1):
        d = min(0.5, (1 + n) / (10 + n))
        averages.append({k: d * averages[-1][k] + (1 - d) * weights[k] for k in weights})
    saved = _weights(result.model_path)
    assert saved.keys() == raw[-1].keys()
    for key in saved:
        torch.testing.assert_close(saved[key], averages[-1][key], rtol=0, atol=1e-6)
    assert any(not torch.allclose(saved[k], raw[-1][k]) for k in saved)  # not the raw weights
    last = _weights(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert all(torch.equal(last[k], saved[k]) for k in saved)
    # The resume point keeps the raw weights as well as the average.
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.state.pt", weights_only=True)
    assert all(torch.equal(state["model"][k], raw[-1][k]) for k in saved)
    assert int(state["ema"]["n_averaged"]) == 4
    # Validation, hence the best model, saw the average at an epoch end (step 2 or 4).
    best = _weights(tmp_path / "run" / "checkpoints" / "best.safetensors")
    assert any(
        all(torch.allclose(best[k], average[k], rtol=0, atol=1e-6) for k in best)
        for average in (averages[1], averages[3])
    )


def test_ema_warm_up_forgets_the_starting_weights_of_a_short_run():
    """At decay 0.999 a plain average keeps 0.999 ** 100 = 90 % of its first weights after 100
    steps: a run whose init leaves layers fresh would save mostly those. The warm-up's decay
    (1 + n) / (10 + n) forgets them; late updates move by exactly 1 - decay."""
    from torch.optim.swa_utils import AveragedModel

    from restorekit.engine.step import ema_decay_with_warmup

    net = torch.nn.Linear(1, 1)
    average = AveragedModel(net, multi_avg_fn=ema_decay_with_warmup(0.999), use_buffers=True)
    with torch.no_grad():
        net.weight.fill_(0.0)
        average.update_parameters(net)  # the first update copies: the starting weights
        net.weight.fill_(1.0)  # what training moved them to
        for _ in range(100):
            average.update_parameters(net)
    assert average.module.weight.item() > 1 - 1e-6  # float32 rounding; without: 0.094
    average.n_averaged.fill_(10**6)  # long past the warm-up: d = 0.999
    with torch.no_grad():
        net.weight.fill_(2.0)
        average.update_parameters(net)
    assert average.module.weight.item() == pytest.approx(1.001, abs=1e-6)


def test_resumed_ema_run_matches_uninterrupted_run(photo_folder, tmp_path):
    cfg = tiny_config(photo_folder, **{"train.epochs": 3, "train.ema": 0.9})
    _straight_and_resumed(cfg, tmp_path)
    states = [
        torch.load(run / "checkpoints" / "last.state.pt", weights_only=True)
        for run in (tmp_path / "straight", tmp_path / "split")
    ]
    for part in ("model", "ema"):  # the raw weights and the average both match
        for key, value in states[0][part].items():
            torch.testing.assert_close(value, states[1][part][key], rtol=0, atol=1e-6)


def test_turning_ema_on_or_off_at_resume_is_logged(photo_folder, tmp_path):
    plain = tiny_config(photo_folder, **{"train.epochs": 1})  # 2 steps
    averaged = tiny_config(photo_folder, **{"train.epochs": 1, "train.ema": 0.5})
    train(plain, tmp_path / "on", max_steps=1)
    assert train(averaged, tmp_path / "on", resume=True).steps == 2
    log = (tmp_path / "on" / "train.log").read_text()
    assert "holds no weight average: the average starts from the resumed weights" in log
    train(averaged, tmp_path / "off", max_steps=1)
    assert train(plain, tmp_path / "off", resume=True).steps == 2
    log = (tmp_path / "off" / "train.log").read_text()
    assert "train.ema is off but the checkpoint (step 1) holds a weight average" in log
