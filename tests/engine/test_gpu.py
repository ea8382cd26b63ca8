"""Checks of the CUDA path, each with a CPU fallback that runs in CI.

On a machine with CUDA, ``pytest -m gpu -q -o addopts= tests`` runs these on the GPU: mixed
precision training, a NCCL process group, inference that must equal the CPU's, and the ONNX
export of a model trained on the GPU. Without CUDA each runs its CPU fallback (or skips, saying
why), so CI still exercises the same code. Everything is tiny (8-feature networks, 64-pixel
patches, 3 steps) so that the whole file stays well under a minute on either machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config
from torch.utils.data import DataLoader

from restorekit.data import EpochSampler
from restorekit.data.kinds import load_train_data
from restorekit.degrade.noise import parse_noise
from restorekit.engine import learning_rate, train
from restorekit.engine.checkpoint import checkpoint_paths
from restorekit.engine.distributed import DistributedContext
from restorekit.engine.step import Stepper
from restorekit.errors import ConfigError
from restorekit.infer.model import load_model
from restorekit.methods import Progress
from restorekit.nets import build_net
from restorekit.nets.files import ModelDescriptor, save_model

pytestmark = pytest.mark.gpu

CUDA = torch.cuda.is_available()
STEPS = 3


@pytest.fixture(scope="module")
def device() -> torch.device:
    """The GPU when there is one, else the CPU (each test's fallback)."""
    return torch.device("cuda") if CUDA else torch.device("cpu")


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """No TF32 inside: PyTorch runs cuDNN convolutions in TF32 (10-bit mantissa) by default on
    Ampere and later GPUs, which moves outputs by ~1e-3, far beyond the 1e-4 these checks ask of
    fp32. The legacy flags (not the ``fp32_precision`` API: mixing the two raises on read) are
    restored afterwards. No effect on the CPU."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


# 1. Mixed precision ---------------------------------------------------------------------------


@dataclass
class Steps:
    """What :func:`_train_steps` ran: the losses, the stepper, the initial weights (on the CPU)
    and the dtypes of the network's outputs."""

    losses: list[float]
    stepper: Stepper
    initial: dict[str, torch.Tensor]
    output_dtypes: set[torch.dtype]


def _train_steps(folder: Path, device: torch.device, precision: str) -> Steps:
    """The trainer's step (:class:`Stepper`) run ``STEPS`` times on ``device`` from the config's
    seed, fed by the trainer's sampler and loader."""
    # The N2N U-Net: the ne2ne preset's U-Net starts with outputs near 1e-6, where the loss is
    # all data and the network's rounding would not show in it.
    cfg = tiny_config(folder, **{"train.precision": precision, "model.arch": "unet-n2n"})
    stepper = Stepper.from_config(cfg, DistributedContext(device=device))
    initial = {k: v.detach().cpu().clone() for k, v in stepper.model.state_dict().items()}
    dtypes: set[torch.dtype] = set()
    stepper.model.register_forward_hook(lambda _m, _i, out: dtypes.add(out.dtype))
    data = load_train_data(cfg, parse_noise(cfg.noise))
    sampler = EpochSampler(data.n_images, cfg.data.repeat * 2, cfg.train.seed, epoch=1)
    loader = DataLoader(
        data.dataset,
        cfg.train.batch_size,
        sampler=sampler,
        drop_last=True,
        pin_memory=device.type == "cuda",  # as the trainer
    )
    losses = []
    for step, sample in enumerate(loader, 1):
        lr = learning_rate(cfg, step, STEPS)
        out = stepper.step(sample, Progress(1, cfg.train.epochs, step), lr)
        losses.append(float(out.parts["loss"]))
        if step == STEPS:
            break
    return Steps(losses, stepper, initial, dtypes)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_finite_and_close_to_fp32(photo_folder, device, precision):
    """Autocast on the device: the network computes in the asked dtype, the losses are finite,
    within 10 % of fp32's from the same seed and data and yet not identical; fp16 goes through
    an enabled GradScaler that does not skip every step. Protects train.precision on GPUs.
    CPU: bf16 where the CPU has native bf16; fp16 must be refused with a ConfigError
    (restorekit's CPU behaviour)."""
    if device.type == "cpu":
        if precision == "fp16":
            cfg = tiny_config(photo_folder, **{"train.precision": "fp16"})
            with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
                Stepper.from_config(cfg, DistributedContext(device=device))
            return
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            pytest.skip("no CUDA, and this CPU has no native bf16 (AVX512-BF16/AMX)")
    elif precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip(f"{torch.cuda.get_device_name()} has no bf16")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]

    reference = _train_steps(photo_folder, device, "fp32")
    run = _train_steps(photo_folder, device, precision)

    assert reference.output_dtypes == {torch.float32}
    assert run.output_dtypes == {dtype}  # autocast ran, in the asked dtype
    assert run.stepper.amp_dtype == dtype
    assert run.stepper.scaler.is_enabled() == (precision == "fp16")
    if precision == "fp16":
        assert 0 < run.stepper.scaler.get_scale() < float("inf")
    assert all(torch.equal(run.initial[k], reference.initial[k]) for k in run.initial)
    assert len(run.losses) == len(reference.losses) == STEPS
    assert np.all(np.isfinite(run.losses)), run.losses
    np.testing.assert_allclose(run.losses, reference.losses, rtol=0.1)
    assert run.losses != reference.losses  # bit-identical: the rounding never happened
    weights = run.stepper.model.state_dict()
    assert all(torch.isfinite(w).all() for w in weights.values())
    moved = [k for k in run.initial if not torch.equal(weights[k].cpu(), run.initial[k])]
    assert moved, "no optimizer step was taken (every step skipped by the GradScaler?)"


def test_an_fp16_run_resumes_with_the_loss_scale_it_had_reached(
    photo_folder, tmp_path, device, monkeypatch
):
    """fp16's GradScaler state (scale, growth counter) is in every checkpoint, and a resumed run
    goes on from it: stopped at step 3 and resumed to 6, its last checkpoint holds the same
    scaler state as an uninterrupted 6-step run (without it the counter restarts, and the scale
    at 65,536, skipping steps to find its level again). CPU: fp16 is refused there, so the
    trainer runs fp32 with an enabled CPU GradScaler (growth every 4 steps: the straight run
    doubles its scale at step 4, a resume that lost the state would not)."""
    fields: dict[str, object] = {"train.epochs": 3, "train.checkpoint_every": 100}
    if device.type == "cuda":
        fields["train.precision"] = "fp16"
    else:
        built = Stepper.from_config

        def with_cpu_scaler(cfg, context=None):
            stepper = built(cfg, context)
            stepper.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=4)
            return stepper

        monkeypatch.setattr(Stepper, "from_config", with_cpu_scaler)
    cfg = tiny_config(photo_folder, **fields)

    def scaler_state(run: str) -> dict:
        state_file = checkpoint_paths(tmp_path / run)[1]
        return torch.load(state_file, map_location="cpu", weights_only=True)["grad_scaler"]

    assert train(cfg, tmp_path / "straight").steps == 6
    train(cfg, tmp_path / "split", max_steps=3)
    stopped = scaler_state("split")
    train(cfg, tmp_path / "split", resume=True)
    assert scaler_state("straight") != stopped  # six steps leave another state than three
    assert scaler_state("split") == scaler_state("straight")


# 2. Process group ------------------------------------------------------------------------------

PROCESS_GROUP = """
import datetime, socket, sys
import torch
import torch.distributed as dist

backend, device = sys.argv[1], torch.device(sys.argv[2])
if device.type == "cuda":
    torch.cuda.set_device(device)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
dist.init_process_group(
    backend,
    init_method=f"tcp://127.0.0.1:{port}",
    rank=0,
    world_size=1,
    timeout=datetime.timedelta(seconds=30),
    device_id=device if device.type == "cuda" else None,  # as distributed.setup
)
value = torch.arange(4, dtype=torch.float32, device=device)
dist.all_reduce(value)
ids = [device.index] if device.type == "cuda" else None
net = torch.nn.parallel.DistributedDataParallel(torch.nn.Conv2d(3, 3, 3).to(device), ids)
net(torch.rand(2, 3, 8, 8, device=device)).square().mean().backward()
finite = all(bool(torch.isfinite(p.grad).all()) for p in net.parameters())
print("backend", dist.get_backend(), "sum", value.tolist(), "grads", finite)
dist.destroy_process_group()
print("destroyed", flush=True)
# Skip interpreter finalization: with gloo's worker threads it can abort now and then
# ("terminate called without an active exception", SIGABRT; pytorch/pytorch#179291), after
# the group's whole life has been checked. That is PyTorch's teardown, not the group's.
import os
os._exit(0)
"""


def test_a_one_process_group_starts_reduces_and_is_destroyed(device):
    """A 1-process group (NCCL on CUDA, gloo on CPU: what ``distributed.setup`` picks) starts,
    all-reduces a tensor on the device, runs a DDP backward and is destroyed cleanly. Protects
    torchrun training from a broken NCCL/gloo install. In a subprocess with a timeout, so that a
    hang or a leaked group cannot take this test process with it."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not torch.distributed.is_available() or not (
        torch.distributed.is_nccl_available()
        if backend == "nccl"
        else torch.distributed.is_gloo_available()
    ):
        pytest.skip(f"this PyTorch build has no {backend} backend")
    where = "cuda:0" if device.type == "cuda" else "cpu"
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROCESS_GROUP), backend, where],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            # One process needs no network: loopback for the rendezvous and NCCL's bootstrap,
            # whatever interfaces (or none) the machine has; warnings into the failure message.
            "NCCL_SOCKET_IFNAME": "lo",
            "GLOO_SOCKET_IFNAME": "lo",
            "NCCL_DEBUG": "WARN",
            **os.environ,
            "OMP_NUM_THREADS": "1",
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"backend {backend} sum [0.0, 1.0, 2.0, 3.0] grads True" in result.stdout, output
    assert "destroyed" in result.stdout, output


# 3. Inference on the device equals the CPU -----------------------------------------------------

MODELS = {
    "unet-n2n": ("unet-n2n", {"features": 8}, {}),
    "unet-ne2ne": ("unet-ne2ne", {"features": 8}, {}),  # He init: outputs of order one
    "edsr-x2": (
        "edsr",
        {"scale": 2, "n_blocks": 2, "features": 8},
        {"task": "upscale", "scale": 2},
    ),
}

TILES = {"unet-n2n": 384, "unet-ne2ne": 384, "edsr-x2": 64}
"""Tile sides that force tiling of IMAGE with each network's default overlap (from its measured
reach: 352 pixels for the U-Nets, whose five poolings reach 128; 22 for this EDSR)."""

IMAGE_SHAPE = (100, 400, 3)
"""100 x 400 RGB float: a 100 x 120 image cannot be tiled by the U-Nets with an overlap that
covers their reach (tiles must exceed the 352-pixel overlap), so the image is widened to the
narrowest strip (416 padded) that gives them two tiles; EDSR tiles it in 2 x 9."""


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, Path]:
    """Seeded tiny model files (safetensors with descriptors), one per entry of MODELS."""
    folder = tmp_path_factory.mktemp("gpu_models")
    paths = {}
    for name, (arch, arch_args, fields) in MODELS.items():
        torch.manual_seed(0)
        net = build_net(arch, **arch_args)
        with torch.no_grad():  # outputs of order one, so that 1e-4 means something
            for module in net.modules():
                if isinstance(module, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                    module.bias.uniform_(-0.1, 0.1)  # not the zeros of every init
        multiple = getattr(net, "size_multiple", 1)
        descriptor = ModelDescriptor(
            arch=arch, arch_args=arch_args, size_multiple=multiple, **fields
        )
        paths[name] = folder / f"{name}.safetensors"
        save_model(paths[name], net, descriptor)
    return paths


def _apply(model, image: np.ndarray) -> np.ndarray:
    return model.upscale(image) if model.descriptor.task == "upscale" else model.denoise(image)


def _whole_and_tiled(path: Path, where: str, tile: int, image: np.ndarray) -> dict[str, np.ndarray]:
    """``image`` through ``load_model(path, device=where)`` whole and in tiles of ``tile``."""
    model = load_model(path, device=where, tile=tile)  # overlap: from the measured reach
    assert next(model.net.parameters()).device.type == torch.device(where).type
    calls: list[tuple[int, ...]] = []
    forward = model.forward
    model.forward = lambda batch: calls.append(batch.shape) or forward(batch)
    tiled = _apply(model, image)
    assert len(calls) > 1, f"tile={tile} did not tile ({calls})"
    model.tile = None  # 2 GiB default budget: the whole image in one pass
    calls.clear()
    whole = _apply(model, image)
    assert len(calls) == 1, calls
    return {f"{where} whole": whole, f"{where} tiled": tiled}


@pytest.mark.parametrize("name", list(MODELS))
def test_inference_on_the_device_equals_the_cpu_whole_and_tiled(model_files, device, name):
    """``load_model(path, device=...)`` on the device gives the CPU's result within 1e-4 (fp32),
    whole and tiled, and tiled equals whole: protects GPU inference (device moves, channels_last,
    the tiling and blending around the network) from silently differing from the CPU. CPU
    fallback: CPU tiled against CPU whole."""
    image = np.random.default_rng(0).random(IMAGE_SHAPE, dtype=np.float32)
    with full_fp32():
        outputs = _whole_and_tiled(model_files[name], "cpu", TILES[name], image)
        if device.type == "cuda":
            outputs |= _whole_and_tiled(model_files[name], "cuda", TILES[name], image)
    scale = MODELS[name][2].get("scale", 1)
    reference = outputs["cpu whole"]
    assert reference.shape == (IMAGE_SHAPE[0] * scale, IMAGE_SHAPE[1] * scale, 3)
    assert reference.dtype == np.float32
    assert reference.std() > 0.05, reference.std()  # far from a constant: the check has teeth
    for label, out in outputs.items():
        assert out.shape == reference.shape and out.dtype == np.float32, label
        np.testing.assert_allclose(out, reference, atol=1e-4, err_msg=f"{label} vs cpu whole")
    if device.type == "cuda":
        np.testing.assert_allclose(outputs["cuda tiled"], outputs["cuda whole"], atol=1e-4)


def test_a_grey_network_on_the_device_starts_from_an_rgb_model(model_files, device):
    """``--init-from`` an RGB model into a grey network that already sits on the device (as in
    training), TF32 left on as it is by default: the adaptation is checked on CPU float32 copies,
    so the device's convolution algorithms cannot refuse it; the weights land on the device."""
    from restorekit.nets.files import init_from_model_file

    grey = build_net("unet-n2n", in_channels=1, out_channels=1, features=8)
    grey = grey.to(device).to(memory_format=torch.channels_last)
    _, _, adapted = init_from_model_file(grey, "unet-n2n", model_files["unet-n2n"], (1, 1))
    assert adapted and next(grey.parameters()).device.type == device.type
    rgb = load_model(model_files["unet-n2n"], device="cpu")
    image = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    with full_fp32(), torch.no_grad():
        got = grey.eval()(image.to(device)).cpu()
        expected = rgb.net(image.expand(-1, 3, -1, -1)).mean(1, keepdim=True)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)


def test_to_device_copies_exactly_and_leaves_the_host_tensor_alone(device):
    """On a GPU the copy goes through pinned memory without blocking; the values must be the
    same as a plain copy's. CPU fallback: the tensor itself."""
    from restorekit.devices import to_device

    host = torch.arange(12, dtype=torch.int64).view(3, 4).T  # a non-contiguous view
    copied = to_device(host, device)
    assert copied.device.type == device.type and not host.is_pinned()
    assert torch.equal(copied.cpu(), host)


@pytest.mark.parametrize("name", list(MODELS))
def test_the_reach_and_overlap_are_the_same_on_the_device(model_files, device, name):
    """The tiles' overlap comes from the receptive field measured by exact zero gradients; a
    GPU's convolution algorithms may leave round-off where the CPU has zeros, so the reach is
    measured on a CPU copy whatever the device. CPU fallback: the same check, trivially equal."""
    on_cpu = load_model(model_files[name], device="cpu", tile=TILES[name])
    on_device = load_model(model_files[name], device=str(device), tile=TILES[name])
    assert on_cpu.reach is not None and on_cpu.reach > 0
    assert (on_device.reach, on_device.overlap) == (on_cpu.reach, on_cpu.overlap)


@pytest.mark.parametrize("name", list(MODELS))
def test_reduced_precision_inference_on_the_device_stays_close_to_fp32(model_files, device, name):
    """``load_model(..., precision=...)``: bf16 and fp16 on a GPU, bf16 on a CPU with native
    bfloat16 (the fallback; fp16 is refused there), within 0.03 of fp32 on [0, 1] values, not
    equal to it (it did run in the reduced type), tiled as whole."""
    from restorekit.infer.predict import cpu_has_native_bf16

    image = np.random.default_rng(1).random(IMAGE_SHAPE, dtype=np.float32)
    if device.type == "cuda":
        precisions = ["bf16", "fp16"] if torch.cuda.is_bf16_supported() else ["fp16"]
    elif cpu_has_native_bf16():
        precisions = ["bf16"]
    else:
        pytest.skip("no GPU and no native bf16 on this CPU")
    with full_fp32():
        reference = _apply(load_model(model_files[name], device=str(device)), image)
        for precision in precisions:
            model = load_model(model_files[name], device=str(device), precision=precision)
            out = _apply(model, image)
            difference = np.abs(out - reference).max()
            scale = max(1.0, float(np.abs(reference).max()))  # random weights: any range
            assert 0 < difference < 0.03 * scale, (precision, difference, scale)
            model.tile = TILES[name]
            np.testing.assert_allclose(_apply(model, image), out, atol=2e-2, err_msg=precision)


# 4. ONNX export of a model trained on the device ----------------------------------------------


def test_a_model_trained_on_the_device_exports_to_onnx(photo_folder, tmp_path, device):
    """``train()`` runs 3 steps on the device (it picks the GPU by itself when there is one),
    saves the model, and ``export_onnx`` writes a graph that ONNX Runtime runs like PyTorch
    (checked inside the export); the ONNX model also matches the trained model run on the
    device. Protects the GPU-trained model -> file -> ONNX path (weights moved back to the CPU,
    no device left in the saved tensors)."""
    pytest.importorskip("onnx", reason="onnx is not installed: pip install 'restorekit[onnx]'")
    pytest.importorskip(
        "onnxruntime", reason="onnxruntime is not installed: pip install 'restorekit[onnx]'"
    )
    from restorekit.infer.onnx_backend import load_onnx_model
    from restorekit.infer.onnx_export import export_onnx

    # The N2N U-Net: the ne2ne preset's starts with outputs near 1e-6, too small to compare.
    cfg = tiny_config(photo_folder, **{"model.arch": "unet-n2n"})
    result = train(cfg, tmp_path / "run", max_steps=STEPS)
    assert result.steps == STEPS and result.model_path.is_file()
    first = (tmp_path / "run" / "train.log").read_text().splitlines()[0]
    assert re.search(rf" on {device.type}(:\d+)?$", first), first  # trained where expected

    exported = export_onnx(result.model_path, tmp_path / "model.onnx")
    assert exported.path.is_file() and exported.max_abs_diff <= 1e-4

    image = np.random.default_rng(1).random((64, 96, 3), dtype=np.float32)
    with full_fp32():
        on_device = load_model(result.model_path, device=device.type).denoise(image)
    assert on_device.std() > 0.05, on_device.std()
    np.testing.assert_allclose(load_onnx_model(exported.path).denoise(image), on_device, atol=1e-4)


def test_train_device_picks_or_refuses_clearly(photo_folder, tmp_path):
    """train.device=cpu trains on the CPU even beside a GPU; train.device=cuda without a GPU
    is a ConfigError naming the fix (never a torch traceback)."""
    from conftest import tiny_config

    from restorekit.engine import train
    from restorekit.errors import ConfigError

    cfg = tiny_config(photo_folder, **{"train.device": "cpu"})
    train(cfg, tmp_path / "cpu", max_steps=1)
    assert " on cpu" in (tmp_path / "cpu" / "train.log").read_text()
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="train.device=cuda, but PyTorch .* sees no CUDA"):
            train(tiny_config(photo_folder, **{"train.device": "cuda"}), tmp_path / "gpu")
