"""The Noise2Void data path: axes, TIFF stacks (memory-mapped), normalisation, 3D training."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile
import torch
from click.testing import CliRunner

from restorekit.cli import main
from restorekit.configs import load_config
from restorekit.data import StackPatchDataset, compute_normalization, load_stacks
from restorekit.data.kinds import load_train_data
from restorekit.engine import train
from restorekit.errors import ConfigError, ImageFormatError
from restorekit.infer.model import RestorationModel, load_model
from restorekit.io import parse_axes, read_stack, to_canonical, write_stack
from restorekit.io.axes import from_canonical
from restorekit.nets import build_net
from restorekit.nets.files import ModelDescriptor, save_model

torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("axes", "shape", "canonical"),
    [
        ("YX", (5, 6), (1, 1, 5, 6)),
        ("SYX", (2, 5, 6), (2, 1, 5, 6)),
        ("TYX", (2, 5, 6), (2, 1, 5, 6)),
        ("ZYX", (3, 5, 6), (1, 1, 3, 5, 6)),
        ("SZYX", (2, 3, 5, 6), (2, 1, 3, 5, 6)),
        ("YXC", (5, 6, 2), (1, 2, 5, 6)),
        ("SCYX", (2, 3, 5, 6), (2, 3, 5, 6)),
        ("scZyx", (2, 3, 4, 5, 6), (2, 3, 4, 5, 6)),
        ("ZYXC", (4, 5, 6, 3), (1, 3, 4, 5, 6)),
        ("STYX", (2, 3, 5, 6), (6, 1, 5, 6)),
    ],
)
def test_axes_give_the_canonical_layout_and_back(axes, shape, canonical):
    array = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    out = to_canonical(array, axes)
    assert out.shape == canonical
    np.testing.assert_array_equal(from_canonical(out, axes, shape), array)


def test_channels_and_samples_land_on_their_axes():
    array = np.random.default_rng(0).random((4, 5, 6, 2))  # Z Y X C
    out = to_canonical(array, "ZYXC")
    np.testing.assert_array_equal(out[0, 1], array[..., 1])


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ("YXQ", "unknown letter.*Q"),
        ("YYX", "Y given more than once"),
        ("ZX", "Y and X are required"),
    ],
)
def test_bad_axes_are_refused(axes, message):
    with pytest.raises(ImageFormatError, match=message):
        parse_axes(axes)


def test_dimension_mismatch_names_both():
    with pytest.raises(ImageFormatError, match=r"4 dimensions .*axes 'ZYX' name 3"):
        to_canonical(np.zeros((2, 3, 4, 5)), "ZYX")
    with pytest.raises(ConfigError, match="data.axes.*unknown letter"):
        load_config("n2v-3d", ["data.axes=ZYXW"])
    with pytest.raises(ConfigError, match="lacks Z but the network is 3D"):
        load_config("n2v-3d", ["data.axes=SYX"])


def test_uncompressed_stack_is_memory_mapped_and_compressed_is_read(tmp_path):
    volume = np.random.default_rng(1).integers(0, 65535, (2, 6, 16, 20), dtype=np.uint16)
    write_stack(tmp_path / "v.tif", volume)
    mapped = read_stack(tmp_path / "v.tif", "SZYX")
    assert isinstance(mapped, np.memmap)
    assert mapped.shape == (2, 1, 6, 16, 20)
    np.testing.assert_array_equal(mapped[:, 0], volume)
    tifffile.imwrite(tmp_path / "c.tif", volume, compression="zlib", photometric="minisblack")
    read = read_stack(tmp_path / "c.tif", "SZYX")
    assert not isinstance(read, np.memmap)
    np.testing.assert_array_equal(read[:, 0], volume)


def test_nan_tiff_is_refused_with_the_count(tmp_path):
    volume = np.ones((3, 8, 8), np.float32)
    volume[1, 2, 3] = volume[2, 0, 0] = np.nan
    write_stack(tmp_path / "nan.tif", volume)
    with pytest.raises(ImageFormatError, match="nan.tif: 2 NaN"):
        read_stack(tmp_path / "nan.tif", "ZYX")


def test_constant_channel_with_meanstd_is_refused(tmp_path):
    write_stack(tmp_path / "flat.tif", np.full((2, 32, 32), 7.0, np.float32))
    stacks = load_stacks([tmp_path / "flat.tif"], "SYX", 1)
    with pytest.raises(ImageFormatError, match=r"channel\(s\) \[0\] .* constant \(zero std"):
        compute_normalization(stacks, [(0, 0), (0, 1)], "meanstd", (32, 32))


def test_volumes_without_a_patch_depth_are_refused():
    volume = np.zeros((1, 1, 8, 16, 16), np.float32)  # S C Z Y X
    with pytest.raises(ConfigError, match="patch depth"):
        StackPatchDataset([volume], [(0, 0)], 16, None, False)


def test_percentile_normalization_maps_the_percentiles_to_0_and_1(tmp_path):
    values = np.random.default_rng(7).random((2, 2, 40, 40)).astype(np.float32)  # S C Y X
    write_stack(tmp_path / "s.tif", values)
    stacks = load_stacks([tmp_path / "s.tif"], "SCYX", 2)
    norm, record = compute_normalization(stacks, [(0, 0), (0, 1)], "percentile", (32, 32))
    assert record["percentiles"] == [1.0, 99.8] and len(record["low"]) == 2
    np.testing.assert_allclose(record["low"][1], np.percentile(values[:, 1], 1), rtol=1e-5)
    normalised = norm.apply(values[0])
    assert normalised.min() < 0.02 and normalised.max() > 0.98
    np.testing.assert_allclose(norm.undo(normalised), values[0], atol=1e-6)


def _n2v3d_config(folder, *extra):
    return load_config(
        "n2v-3d",
        [
            f"data.train=['{folder}']",
            "data.axes=SZYX",
            "data.patch_size=32",
            "data.patch_depth=8",
            "model.features=8",
            "model.batch_norm=false",
            "method.masked_fraction=0.04",  # more blind spots per patch: a stronger signal
            "train.log_every=1000",
            "train.checkpoint_every=1000",
            *extra,
        ],
    )


def test_training_data_stay_memory_mapped(tmp_path):
    """A stack is never loaded whole: the data set holds the memory map and reads patches."""
    volume = np.random.default_rng(2).random((3, 8, 48, 48)).astype(np.float32)
    write_stack(tmp_path / "data" / "v.tif", volume)
    cfg = _n2v3d_config(tmp_path / "data", "data.val_fraction=0.34")
    data = load_train_data(cfg, None)
    assert isinstance(data.dataset, StackPatchDataset)
    assert all(isinstance(s, np.memmap) for s in data.dataset.stacks)
    assert data.n_images == 2 and data.val_patches["image"].shape == (16, 1, 8, 32, 32)
    patch = data.dataset[(1, 5)]["image"]
    assert patch.shape == (1, 8, 32, 32)
    assert abs(float(data.dataset[(0, 3)]["image"].mean())) < 0.5  # mean/std normalised
    assert data.normalization["kind"] == "meanstd"
    np.testing.assert_allclose(data.normalization["mean"], [volume[:2].mean()], rtol=1e-5)


_UNDER_A_MEMORY_LIMIT = """
import resource, sys
import numpy as np, tifffile, torch
from restorekit.configs import load_config
from restorekit.data.kinds import load_train_data
torch.set_num_threads(1)
path = sys.argv[1]
big = tifffile.memmap(path, shape=(2, 64, 1024, 1024), dtype=np.float32, photometric="minisblack")
big[:, :, :64, :64] = np.random.default_rng(0).random((2, 64, 64, 64))  # 512 MiB, mostly sparse
big.flush()
del big
status = open("/proc/self/status").read().split("VmData:")[1]
used = int(status.split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_DATA, (used + 192 * 2**20, resource.RLIM_INFINITY))
try:
    np.ones(2**27, np.float32)  # the stack's size: must not fit under the limit
    sys.exit("the memory limit is not effective")
except MemoryError:
    pass
cfg = load_config("n2v-3d", [f"data.train=['{path}']", "data.axes=SZYX", "model.features=4"])
data = load_train_data(cfg, None)
patches = [data.dataset[(i % 2, i)]["image"] for i in range(8)]
print("ok", tuple(patches[0].shape))
"""


def test_a_stack_larger_than_the_memory_limit_trains_from_disk(tmp_path):
    """Under RLIMIT_DATA (private memory; read-only file maps do not count) smaller than the
    stack, it is opened, normalised (from sampled patches) and patched without being loaded."""
    script = [sys.executable, "-c", _UNDER_A_MEMORY_LIMIT, str(tmp_path / "big.tif")]
    result = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok (1, 16, 64, 64)" in result.stdout


def _smooth_volume(shape, rng):
    z, y, x = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    phase = rng.random(3) * 6
    return (
        0.5 + 0.3 * np.sin(z / 3 + phase[0]) * np.cos(y / 5 + phase[1]) * np.sin(x / 6 + phase[2])
    ).astype(np.float32)


def test_n2v_3d_denoises_a_volume_on_its_own_scale(tmp_path):
    """Data scaled by 1000: normalisation is stored in the model and undone on output."""
    rng = np.random.default_rng(3)
    clean = np.stack([_smooth_volume((16, 48, 48), rng) for _ in range(2)]) * 1000
    noisy = (clean + rng.normal(0, 150, clean.shape)).astype(np.float32)
    write_stack(tmp_path / "data" / "noisy.tif", noisy)
    cfg = _n2v3d_config(
        tmp_path / "data",
        "data.repeat=40",
        "train.epochs=2",
        "optim.lr=2e-3",
        "data.val_fraction=0.5",
    )
    result = train(cfg, tmp_path / "run")
    log = (tmp_path / "run" / "train.log").read_text()
    assert "held-out loss" in log
    model = load_model(result.model_path, "cpu")
    record = model.descriptor.normalization
    assert record["kind"] == "meanstd" and 400 < record["mean"][0] < 600
    denoised = model.denoise_stack(noisy, "SZYX")
    assert denoised.shape == noisy.shape and denoised.dtype == np.float32
    assert 300 < denoised.mean() < 700  # on the data's scale, not the normalised one
    before = np.mean((noisy - clean) ** 2)
    after = np.mean((denoised - clean) ** 2)
    assert after < 0.5 * before, (before, after)  # measured: 22400 -> 5640 (train seed 0)


def _csbdeep_model(overrides: list[str], normalization: dict | None = None):
    """A small unet-csbdeep network and its descriptor, built from the n2v-3d preset."""
    cfg = load_config("n2v-3d", overrides)
    args = cfg.model.model_dump(exclude={"arch"})
    net = build_net("unet-csbdeep", **args)
    extra = {"normalization": normalization} if normalization else {}
    descriptor = ModelDescriptor(
        arch="unet-csbdeep",
        arch_args=args,
        in_channels=1,
        out_channels=1,
        size_multiple=4,
        **extra,
    )
    return net, descriptor


def test_3d_tiled_prediction_equals_whole_volume_prediction():
    torch.manual_seed(0)
    net, descriptor = _csbdeep_model(
        ["model.features=8", "model.batch_norm=false"],
        {"kind": "meanstd", "mean": [500.0], "std": [100.0]},
    )
    model = RestorationModel(net, descriptor)
    volume = np.random.default_rng(4).normal(500, 100, (40, 48, 48)).astype(np.float32)
    whole = model.denoise_stack(volume, "ZYX")
    model.tile, model.overlap = 32, 24  # tiles along Z, Y and X
    tiled = model.denoise_stack(volume, "ZYX")
    assert tiled.shape == volume.shape
    np.testing.assert_allclose(tiled, whole, atol=1e-2)  # values ~500: measured 3e-3


def test_integer_stack_keeps_its_dtype_and_tta_runs(tmp_path):
    net, descriptor = _csbdeep_model(
        ["model.features=4", "model.dims=2", "data.axes=SYX", "data.patch_depth=null"]
    )
    model = RestorationModel(net, descriptor)
    stack = np.random.default_rng(5).integers(0, 65535, (2, 20, 24), dtype=np.uint16)
    out = model.denoise_stack(stack, "SYX", ensemble=True)
    assert out.shape == stack.shape and out.dtype == np.uint16
    as_float = model.denoise_stack(stack, "SYX", dtype=np.float32)
    assert as_float.dtype == np.float32 and np.abs(as_float).max() > 2  # the input's 0-65535 scale
    # a 2D model denoises a volume plane by plane: its Z planes are slices
    planes = model.denoise_stack(stack[None], "CZYX")
    np.testing.assert_array_equal(planes[0], model.denoise_stack(stack, "SYX"))


def test_denoise_command_on_a_stack_keeps_layout_and_dtype(tmp_path):
    net, descriptor = _csbdeep_model(
        ["model.features=4"], {"kind": "meanstd", "mean": [0.5], "std": [0.1]}
    )
    save_model(tmp_path / "m.safetensors", net, descriptor)
    stack = np.random.default_rng(6).integers(0, 255, (12, 20, 2, 3), dtype=np.uint8)  # ZYXS
    write_stack(tmp_path / "in" / "s.tif", stack)
    args = ["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "out")]
    args += ["--model", str(tmp_path / "m.safetensors"), "--axes", "ZYXS", "--device", "cpu"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = tifffile.imread(tmp_path / "out" / "s.tif")
    assert out.shape == stack.shape and out.dtype == np.uint8
    result = CliRunner().invoke(main, [*args, "--bit-depth", "32", "--tta", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert tifffile.imread(tmp_path / "out" / "s.tif").dtype == np.float32


def test_a_folder_of_2d_tiffs_trains_normalised_with_axes_yx(tmp_path):
    """2D images of different sizes on their own scale (uint16): data.axes=YX takes the stack
    path, so percentile normalisation is computed, stored and undone for 2D images too."""
    rng = np.random.default_rng(8)
    for name, shape in (("a.tif", (64, 80)), ("b.tif", (72, 64))):
        image = 20000 + 10000 * rng.random(shape)
        (tmp_path / "data").mkdir(exist_ok=True)
        tifffile.imwrite(tmp_path / "data" / name, image.astype(np.uint16))
    cfg = load_config(
        "n2v-bsd68",
        [
            f"data.train=['{tmp_path / 'data'}']",
            "data.axes=YX",
            "data.normalization=percentile",
            "noise=null",
            "model.features=4",
            "train.batch_size=4",
            "data.patch_size=32",
            "data.repeat=2",
            "train.epochs=1",
        ],
    )
    result = train(cfg, tmp_path / "run")
    model = load_model(result.model_path, "cpu")
    record = model.descriptor.normalization
    low, high = record["low"][0] * 65535, record["high"][0] * 65535  # stored on the [0, 1] scale
    assert record["kind"] == "percentile" and 19000 < low < 21000 and 29000 < high < 31000
    image = tifffile.imread(tmp_path / "data" / "b.tif")
    out = model.denoise(image)
    assert out.shape == image.shape and out.dtype == np.uint16
    assert 15000 < np.median(out) < 35000  # back on the data's scale


def _tiny_unet(**options):
    return build_net("unet-csbdeep", features=4, depth=2, batch_norm=False, **options).eval()


@pytest.mark.parametrize("dims", [2, 3])
def test_independent_channels_never_mix(dims):
    torch.manual_seed(0)
    x = torch.rand(2, 2, *[8] * dims)
    changed = x.clone()
    changed[:, 1] += torch.rand_like(changed[:, 1])
    with torch.no_grad():
        apart = _tiny_unet(in_channels=2, out_channels=2, dims=dims, independent_channels=True)
        assert torch.equal(apart(x)[:, 0], apart(changed)[:, 0])
        assert not torch.equal(apart(x)[:, 1], apart(changed)[:, 1])
        joint = _tiny_unet(in_channels=2, out_channels=2, dims=dims)
        assert not torch.equal(joint(x)[:, 0], joint(changed)[:, 0])


@pytest.mark.parametrize("residual", [False, True])
def test_independent_channels_equal_one_channel_runs(residual):
    torch.manual_seed(1)
    net = _tiny_unet(in_channels=3, out_channels=3, residual=residual, independent_channels=True)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        each = torch.cat([net(x[:, c : c + 1]) for c in range(3)], dim=1)
        torch.testing.assert_close(net(x), each, rtol=0, atol=1e-6)
    assert net.encoder[0][0][0].in_channels == 1 and net.head.out_channels == 1
    with pytest.raises(ConfigError, match="in_channels == out_channels"):
        build_net("unet-csbdeep", in_channels=2, out_channels=1, independent_channels=True)
    with pytest.raises(ConfigError, match="independent_channels"):
        load_config("n2v-3d", ["model.in_channels=2", "model.independent_channels=true"])


def test_independent_channels_train_reload_tile_and_export(tmp_path):
    """Two channels through one shared network: training, load_model, tiled prediction and an
    ONNX graph (checked by export_onnx itself) whose batch stays dynamic after the reshape."""
    import onnxruntime

    from restorekit.infer.onnx_export import export_onnx

    rng = np.random.default_rng(9)
    write_stack(tmp_path / "data" / "v.tif", rng.random((2, 2, 8, 32, 32)).astype(np.float32))
    cfg = _n2v3d_config(
        tmp_path / "data",
        "data.axes=SCZYX",
        "model.features=4",
        "model.in_channels=2",
        "model.out_channels=2",
        "model.independent_channels=true",
        "train.batch_size=2",
    )
    result = train(cfg, tmp_path / "run", max_steps=2)
    model = load_model(result.model_path, "cpu")
    assert model.descriptor.arch_args["independent_channels"] is True
    assert model.net.independent_channels and model.descriptor.in_channels == 2
    one_channel = build_net("unet-csbdeep", features=4, dims=3, batch_norm=False)
    assert sum(p.numel() for p in model.net.parameters()) == sum(
        p.numel() for p in one_channel.parameters()
    )

    volume = rng.random((2, 20, 40, 34)).astype(np.float32)  # CZYX, X not a multiple of 4
    whole = model.denoise_stack(volume, "CZYX")
    model.tile, model.overlap = 32, 24  # tiles along Y and X
    tiled = model.denoise_stack(volume, "CZYX")
    assert tiled.shape == volume.shape
    np.testing.assert_allclose(tiled, whole, atol=1e-4)

    export = export_onnx(result.model_path, tmp_path / "m.onnx")  # raises on disagreement
    assert export.max_abs_diff <= 1e-4 and export.check_shape[:2] == (1, 2)
    session = onnxruntime.InferenceSession(
        str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]
    )
    x = rng.random((3, 2, 8, 16, 12)).astype(np.float32)  # another batch and size
    with torch.no_grad():
        expected = model.net(torch.from_numpy(x)).numpy()
    got = session.run(None, {"input": x})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_the_real_data_preset_trains_on_a_noisy_uint16_stack_without_adding_noise(tmp_path):
    """n2v-2d: real noisy 2D frames (issue 13: the BSD68 preset on a microscope stack added
    sigma-25 noise without normalisation); no synthetic noise, mean/std normalisation."""
    import tifffile

    rng = np.random.default_rng(0)
    clean = 2000 + 1000 * np.outer(np.sin(np.linspace(0, 9, 96)), np.cos(np.linspace(0, 7, 96)))
    stack = rng.poisson(np.repeat(clean[None], 6, 0) / 10) * 10 + rng.normal(0, 50, (6, 96, 96))
    tifffile.imwrite(tmp_path / "frames.tif", np.clip(stack, 0, 65535).astype(np.uint16))
    overrides = [f"data.train=['{tmp_path / 'frames.tif'}']", "train.epochs=1", "data.repeat=2"]
    overrides += ["train.batch_size=4", "model.features=8"]
    cfg = load_config("n2v-2d", overrides)
    assert cfg.noise is None and cfg.data.normalization == "meanstd" and cfg.data.axes == "SYX"
    result = train(cfg, tmp_path / "run")
    assert result.steps > 0
    log = (tmp_path / "run" / "train.log").read_text()
    assert "noise None" in log and "held-out loss" in log
