"""The authors' architectures and checkpoints: `restorekit import` of Neighbor2Neighbor's U-Net and
EDSR-PyTorch's EDSR gives the outputs of the authors' own code (tests/assets/official, see its
README), and the imported files load, tile and export like any restorekit model."""

import json
import pickle
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from restorekit.cli import main
from restorekit.configs import load_config
from restorekit.errors import ConfigError
from restorekit.infer.model import RestorationModel
from restorekit.infer.onnx_backend import load_onnx_model
from restorekit.infer.onnx_export import export_onnx
from restorekit.nets import build_net
from restorekit.nets.files import load_model_file, read_descriptor
from restorekit.nets.unet_ne2ne import UNetNe2Ne

DATA = Path(__file__).resolve().parents[1] / "assets" / "official"
LAYOUT = json.loads((DATA / "ne2ne_unet_layout.json").read_text())
EDSR = {  # checkpoint -> (--arch, scale, res_scale)
    "edsr_r2f8x2": ("edsr-baseline", 2, 1.0),
    "edsr_r2f8x3": ("edsr-baseline", 3, 1.0),
    "edsr_r2f8x4": ("edsr-baseline", 4, 1.0),
    "edsr_r2f8x4_res0.1": ("edsr", 4, 0.1),
}


@pytest.fixture(scope="module")
def refs() -> dict[str, torch.Tensor]:
    return torch.load(DATA / "outputs.pt", map_location="cpu", weights_only=True)


def ne2ne_state_dict(prefix: str = "") -> dict[str, torch.Tensor]:
    """The weights of the reference U-Net (8 features): the recipe of the README, exactly."""
    rng = np.random.RandomState(0)
    state = {}
    for name, shape in LAYOUT["rgb8"]:
        k = rng.randint(-128, 129, size=shape).astype(np.float64) / 128
        if len(shape) == 1:
            value = k * 0.125
        else:
            fan_in = shape[0] if "deconv" in name else int(np.prod(shape[1:]))
            value = k * 2.0 ** np.round(np.log2(np.sqrt(6 / fan_in)))
        state[prefix + name] = torch.from_numpy(value).float()
    return state


def run_import(*args: object) -> object:
    return CliRunner().invoke(main, ["import", *map(str, args)])


def import_ok(*args: object) -> None:
    result = run_import(*args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wrote ")


@pytest.fixture(scope="module")
def ne2ne_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ne2ne")
    checkpoint = folder / "model_gauss25_b4e100r02.pth"  # the published files' naming
    torch.save(ne2ne_state_dict(), checkpoint)  # as their train.py: torch.save(state_dict)
    import_ok(checkpoint, "--arch", "ne2ne-unet", "-o", folder / "ne2ne.safetensors")
    return folder / "ne2ne.safetensors"


@pytest.fixture(scope="module")
def edsr_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("edsr")
    files = {}
    for name, (arch, scale, _) in EDSR.items():
        files[name] = folder / f"{name}.safetensors"
        import_ok(DATA / f"{name}.pt", "--arch", arch, "--scale", scale, "-o", files[name])
    return files


def forward(path: Path, x: torch.Tensor) -> torch.Tensor:
    net, _ = load_model_file(path)
    with torch.no_grad():
        return net(x)


# The architecture


def test_unet_ne2ne_has_the_authors_tensors_and_parameter_count():
    for features, key in ((48, "rgb48"), (8, "rgb8")):
        net = build_net("unet-ne2ne", in_channels=3, out_channels=3, features=features)
        assert [[k, list(v.shape)] for k, v in net.state_dict().items()] == LAYOUT[key]
    assert sum(p.numel() for p in net.parameters()) == 148_635
    net = build_net("unet-ne2ne")
    assert sum(p.numel() for p in net.parameters()) == 1_259_475 == LAYOUT["parameters_rgb48"]
    assert net.size_multiple == 32
    assert net(torch.rand(2, 3, 64, 96)).shape == (2, 3, 64, 96)
    assert build_net("unet-ne2ne", in_channels=1, out_channels=1, features=8)(
        torch.rand(1, 1, 32, 32)
    ).shape == (1, 1, 32, 32)
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.rand(1, 3, 40, 32))


def test_unet_ne2ne_starts_from_he_init_or_from_the_authors_on_request():
    """The authors' init (He x 0.1 per layer) leaves the output near zero, which made short
    runs learn slowly (unet_ne2ne's docstring); the default He init gives outputs of order one."""
    x = torch.rand(1, 3, 64, 64)
    torch.manual_seed(0)
    he = build_net("unet-ne2ne", features=8)(x).std().item()
    torch.manual_seed(0)
    authors = build_net("unet-ne2ne", features=8, init="authors")(x).std().item()
    assert 0.01 < he < 10
    assert authors < 1e-4
    with pytest.raises(ConfigError, match="init"):
        build_net("unet-ne2ne", init="zeros")


def test_the_ne2ne_presets_build_the_authors_unet():
    for noise in ("gauss25", "gauss5_50", "poisson30", "poisson5_50"):
        cfg = load_config(f"ne2ne-{noise}")
        assert cfg.model.arch == "unet-ne2ne" and not cfg.data.augment  # random crops only
        net = build_net(cfg.model.arch, **cfg.model.model_dump(exclude={"arch"}))
        assert isinstance(net, UNetNe2Ne)
        assert sum(p.numel() for p in net.parameters()) == 1_259_475


# Imported checkpoints give the authors' outputs


@pytest.mark.parametrize("prefix", ["", "module."])  # "module.": saved with --parallel
def test_imported_ne2ne_unet_gives_the_authors_output(refs, tmp_path, prefix):
    checkpoint = tmp_path / "model_gauss5-50_b4e100r02.pth"
    torch.save(ne2ne_state_dict(prefix), checkpoint)
    import_ok(checkpoint, "--arch", "ne2ne-unet", "-o", tmp_path / "out.safetensors")
    out = forward(tmp_path / "out.safetensors", refs["unet_input"])
    torch.testing.assert_close(out, refs["unet_output"], atol=1e-5, rtol=0)
    descriptor = read_descriptor(tmp_path / "out.safetensors")
    assert descriptor.arch == "unet-ne2ne" and descriptor.task == "denoise"
    assert descriptor.arch_args == {"in_channels": 3, "out_channels": 3, "features": 8}
    assert descriptor.size_multiple == 32 and descriptor.noise == "gauss:5-50"
    assert descriptor.training["imported_from"]["checkpoint"] == checkpoint.name


@pytest.mark.parametrize("name", EDSR)
def test_imported_edsr_gives_the_authors_output_on_0_1_images(refs, edsr_files, name):
    _, scale, res_scale = EDSR[name]
    out = forward(edsr_files[name], refs["edsr_lr"] / 255)  # theirs: pixel values 0..255
    torch.testing.assert_close(out, refs[f"{name}_sr"] / 255, atol=1e-5, rtol=0)
    descriptor = read_descriptor(edsr_files[name])
    assert descriptor.task == "upscale" and descriptor.scale == scale
    assert descriptor.arch_args == {
        "scale": scale,
        "n_blocks": 2,
        "features": 8,
        "res_scale": res_scale,
        "in_channels": 3,
    }
    assert descriptor.training["imported_from"]["rgb_range"] == 255


def test_the_residual_scaling_comes_from_arch_and_matters(refs, tmp_path):
    out = tmp_path / "wrong.safetensors"
    import_ok(DATA / "edsr_r2f8x4_res0.1.pt", "--arch", "edsr-baseline", "-o", out)
    wrong = forward(out, refs["edsr_lr"] / 255)
    assert (wrong - refs["edsr_r2f8x4_res0.1_sr"] / 255).abs().max() > 1e-2


# Imported files tile and export like any model


def test_imported_models_tile_like_the_whole_image(ne2ne_file, edsr_files):
    rng = np.random.default_rng(0)
    for path in (ne2ne_file, edsr_files["edsr_r2f8x3"]):
        net, descriptor = load_model_file(path)
        model = RestorationModel(net, descriptor)
        multiple = descriptor.size_multiple
        model.tile = 2 * model.overlap
        image = rng.uniform(0, 1, (model.tile + 2 * multiple + 5, model.tile + 7, 3))
        image = image.astype(np.float32)
        apply = model.upscale if descriptor.task == "upscale" else model.denoise
        calls = []
        model.net.register_forward_pre_hook(lambda _, args, calls=calls: calls.append(1))
        tiled = apply(image)
        assert len(calls) >= 4
        model.tile = None
        np.testing.assert_allclose(tiled, apply(image), atol=1e-4)


def test_imported_models_export_to_onnx_and_give_the_authors_output(
    refs, ne2ne_file, edsr_files, tmp_path
):
    cases = [
        (ne2ne_file, refs["unet_input"], refs["unet_output"]),
        (edsr_files["edsr_r2f8x3"], refs["edsr_lr"] / 255, refs["edsr_r2f8x3_sr"] / 255),
    ]
    for path, x, expected in cases:
        result = export_onnx(path, tmp_path / f"{path.stem}.onnx")
        assert result.max_abs_diff <= 1e-4
        onnx_model = load_onnx_model(tmp_path / f"{path.stem}.onnx")
        np.testing.assert_allclose(onnx_model.forward(x.numpy()), expected.numpy(), atol=1e-4)


# Bad checkpoints are refused clearly


def _refused(tmp_path: Path, checkpoint: Path, *options: object, match: str) -> None:
    out = tmp_path / "out.safetensors"
    result = run_import(checkpoint, *options, "-o", out)
    assert result.exit_code != 0
    assert "Traceback" not in result.output and "Error:" in result.output
    assert match in result.output, result.output
    assert not out.exists()


def test_files_that_are_not_state_dicts_are_refused(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(np.random.default_rng(0).bytes(1000))
    _refused(tmp_path, junk, "--arch", "ne2ne-unet", match="not a PyTorch checkpoint")
    pickled = tmp_path / "pickled.pt"  # needs weights_only=False: refused, never unpickled
    torch.save({"args": Namespace(scale=[2]), **ne2ne_state_dict()}, pickled)
    _refused(tmp_path, pickled, "--arch", "ne2ne-unet", match="weights_only=True")
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}))
    _refused(tmp_path, plain, "--arch", "edsr", match="not a PyTorch checkpoint")
    training = tmp_path / "training.pt"
    torch.save({"epoch": 3, **ne2ne_state_dict()}, training)
    _refused(tmp_path, training, "--arch", "ne2ne-unet", match="entries 'epoch' are not")
    _refused(tmp_path, tmp_path / "missing.pt", "--arch", "edsr", match="does not exist")


def test_a_checkpoint_of_another_architecture_is_refused_with_the_right_arch(tmp_path):
    unet = tmp_path / "unet.pth"
    torch.save(ne2ne_state_dict(), unet)
    _refused(tmp_path, unet, "--arch", "edsr-baseline", match="use --arch ne2ne-unet")
    edsr = DATA / "edsr_r2f8x2.pt"
    _refused(tmp_path, edsr, "--arch", "ne2ne-unet", match="use --arch edsr-baseline")


def test_scale_mismatches_are_refused(tmp_path):
    edsr = DATA / "edsr_r2f8x2.pt"
    _refused(tmp_path, edsr, "--arch", "edsr-baseline", "--scale", 3, match="upsampler is x2")
    unet = tmp_path / "unet.pth"
    torch.save(ne2ne_state_dict(), unet)
    _refused(tmp_path, unet, "--arch", "ne2ne-unet", "--scale", 2, match="denoises")


def test_unknown_tensors_and_wrong_shapes_are_named(tmp_path):
    state = torch.load(DATA / "edsr_r2f8x2.pt", weights_only=True)
    extra = tmp_path / "extra.pt"
    torch.save({**state, "tail.2.weight": torch.zeros(3)}, extra)
    _refused(tmp_path, extra, "--arch", "edsr-baseline", match="unknown tensors")
    gap = tmp_path / "gap.pt"
    torch.save({k: v for k, v in state.items() if not k.startswith("body.1.")}, gap)
    _refused(tmp_path, gap, "--arch", "edsr-baseline", match="closing conv")
    mean = tmp_path / "mean.pt"
    torch.save({**state, "sub_mean.bias": torch.tensor([-100.0, -100.0, -100.0])}, mean)
    _refused(tmp_path, mean, "--arch", "edsr-baseline", match="DIV2K mean")
    unet = ne2ne_state_dict()
    unet["nin_a.weight"] = torch.zeros(384, 384, 1, 1)  # their blind-spot variant
    blind = tmp_path / "blind.pth"
    torch.save(unet, blind)
    _refused(tmp_path, blind, "--arch", "ne2ne-unet", match="wrong shapes: nin_a.weight")
    del unet["dec_conv1b.bias"]
    torch.save(unet, blind)
    _refused(tmp_path, blind, "--arch", "ne2ne-unet", match="missing tensors: dec_conv1b.bias")
