"""Import of the authors' published checkpoints as restorekit model files.

A checkpoint is read with ``torch.load(path, map_location="cpu", weights_only=True)`` only
(never unpickled otherwise); its architecture is inferred from the tensors' shapes and checked
against what the caller asked for; the result is an ordinary restorekit model file (safetensors
with its descriptor) that loads, tiles and exports like any trained one.

Supported, by ``arch``:

- ``ne2ne-unet``: Neighbor2Neighbor (github.com/TaoHuang2018/Neighbor2Neighbor),
  ``pretrained_model/model_{gauss25,gauss5-50,poisson30,poisson5-50}_b4e100r02.pth``: the state
  dict of their ``arch_unet.UNet`` (as ``train.py`` saves it; a ``module.`` prefix, from
  training with ``--parallel``, is dropped). Becomes ``unet-ne2ne`` with the same tensors: both
  work on [0, 1] images and predict the clean image. Features and channels come from the
  shapes; the noise (descriptor field ``noise``) from the file name, e.g. ``gauss25``.
- ``edsr-baseline`` and ``edsr``: EDSR-PyTorch (github.com/sanghyun-son/EDSR-PyTorch),
  ``edsr_baseline_x{2,3,4}-*.pt`` (res_scale 1) and ``edsr_x{2,3,4}-*.pt`` (res_scale 0.1; the
  only thing the tensors do not tell): the state dict of their ``model/edsr.py`` EDSR. Becomes
  restorekit's ``edsr`` (:mod:`restorekit.nets.edsr`) with the tensors renamed: ``head.0`` ->
  ``head``, ``body.{i}.body.{0,2}`` -> ``blocks.{i}.conv{1,2}``, ``body.{n}`` -> ``body_end``,
  ``tail.0.{0,2}`` -> ``upsample.{0,2}``, ``tail.1`` -> ``tail``. Blocks, features and scale
  come from the shapes.

EDSR-PyTorch works on pixel values in [0, rgb_range] (255 for the published models); restorekit
on [0, 1]. Every layer is a convolution, ReLU, a scaled skip or a pixel shuffle, so dividing
every convolution bias by rgb_range gives exactly the same function on [0, 1] input, with the
output divided by rgb_range. Their mean shift (``sub_mean``/``add_mean``: the DIV2K mean
(0.4488, 0.4371, 0.4040) x rgb_range, std 1) is restorekit's fixed ``DIV2K_RGB_MEAN`` buffer; when
the checkpoint holds it, it is checked and gives rgb_range.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from restorekit.degrade.noise import parse_noise
from restorekit.errors import ConfigError, ModelLoadError, NoiseSpecError
from restorekit.nets import EDSR, UNetNe2Ne, build_net
from restorekit.nets.edsr import DIV2K_RGB_MEAN
from restorekit.nets.files import ModelDescriptor, load_model_file, load_state, save_model

NE2NE_URL = "https://github.com/TaoHuang2018/Neighbor2Neighbor"
EDSR_URL = "https://github.com/sanghyun-son/EDSR-PyTorch"

EDSR_RES_SCALE = {"edsr-baseline": 1.0, "edsr": 0.1}
"""Residual scaling of EDSR-PyTorch's published models (the tensors do not show it)."""

EDSR_PUBLISHED = {"edsr-baseline": (16, 64), "edsr": (32, 256)}
"""(blocks, features) of the published models; a checkpoint of one is refused as the other."""

ARCHS = ("ne2ne-unet", *EDSR_RES_SCALE)


@dataclass(frozen=True)
class Imported:
    """What :func:`import_checkpoint` wrote: the file, its descriptor, and its parameters."""

    path: Path
    descriptor: ModelDescriptor
    parameters: int


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a PyTorch state-dict file, read with ``weights_only=True``; a
    ``module.`` prefix on every name (saved from ``nn.DataParallel``) is dropped."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch's remarks on odd pickles: the error says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling refusal is reported the same way
        raise ModelLoadError(
            f"{path}: not a PyTorch checkpoint that can be read safely ({type(error).__name__}); "
            "give a state dict saved with torch.save(model.state_dict(), ...): restorekit reads "
            "checkpoints with weights_only=True and never unpickles other objects"
        ) from None
    if not isinstance(state, dict) or not state:
        raise ModelLoadError(
            f"{path}: holds a {type(state).__name__}, not a state dict (a mapping of tensor "
            "names to tensors); give the authors' checkpoint file itself"
        )
    others = sorted(
        repr(k)
        for k, v in state.items()
        if not (isinstance(k, str) and isinstance(v, torch.Tensor))
    )
    if others:
        raise ModelLoadError(
            f"{path}: not a plain state dict (tensor names to tensors): entries "
            f"{', '.join(others[:5])} are not (a training checkpoint with optimizer state? save "
            "the model's state_dict() alone)"
        )
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _describe_kind(tensors: dict[str, torch.Tensor]) -> str:
    """What a state dict looks like, for error messages that suggest the right ``--arch``."""
    if "enc_conv0.weight" in tensors:
        return "it looks like a Neighbor2Neighbor U-Net checkpoint: use --arch ne2ne-unet"
    if "head.0.weight" in tensors and "tail.1.weight" in tensors:
        return (
            "it looks like an EDSR-PyTorch checkpoint: use --arch edsr-baseline (res_scale 1) "
            "or --arch edsr (res_scale 0.1)"
        )
    names = ", ".join(sorted(tensors)[:4])
    return f"its tensors ({names}, ...) match none of {', '.join(ARCHS)}"


def _require(
    tensors: dict[str, torch.Tensor], names: tuple[str, ...], what: str, path: Path
) -> None:
    """Refuse a checkpoint that lacks the convolution weights ``names`` identifying ``what``."""
    for name in names:
        if name not in tensors:
            raise ModelLoadError(
                f"{path}: not {what} checkpoint (no tensor {name}); {_describe_kind(tensors)}"
            )
        if tensors[name].ndim != 4:
            raise ModelLoadError(
                f"{path}: {name} has shape {tuple(tensors[name].shape)}, not that of a "
                f"convolution weight: not {what} checkpoint"
            )


def _provenance(path: Path, repository: str, **details: object) -> dict[str, object]:
    """The descriptor's ``training`` entry of an imported model: where its weights came from."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "imported_from": {
            "checkpoint": path.name,
            "sha256": digest,
            "repository": repository,
            **details,
        }
    }


def _noise_from_name(path: Path) -> str | None:
    """The noise in a Neighbor2Neighbor file name (``model_gauss5-50_b4e100r02.pth``:
    ``gauss:5-50``), or None when the name tells none."""
    match = re.search(r"(gauss|poisson)(\d+(?:\.\d+)?(?:[-_]\d+(?:\.\d+)?)?)", path.stem)
    if match is None:
        return None
    try:
        return parse_noise(f"{match[1]}:{match[2].replace('_', '-')}").spec
    except NoiseSpecError:
        return None


def _import_ne2ne_unet(
    tensors: dict[str, torch.Tensor], path: Path, scale: int | None, noise: str | None
) -> tuple[nn.Module, ModelDescriptor]:
    _require(tensors, ("enc_conv0.weight", "nin_c.weight"), "a Neighbor2Neighbor U-Net", path)
    if scale not in (None, 1):
        raise ConfigError(
            f"--scale {scale}: a Neighbor2Neighbor U-Net denoises (output size = input size); "
            "leave --scale out or give 1"
        )
    features, in_channels = tensors["enc_conv0.weight"].shape[:2]
    out_channels = tensors["nin_c.weight"].shape[0]
    arch_args = {"in_channels": in_channels, "out_channels": out_channels, "features": features}
    net = cast(UNetNe2Ne, build_net("unet-ne2ne", **arch_args))
    load_state(net, tensors, path)
    if noise is not None:
        try:
            noise = parse_noise(noise).spec
        except NoiseSpecError as error:
            raise ConfigError(f"--noise: {error}") from None
    descriptor = ModelDescriptor(
        arch="unet-ne2ne",
        arch_args=arch_args,
        task="denoise",
        in_channels=in_channels,
        out_channels=out_channels,
        size_multiple=net.size_multiple,
        noise=noise or _noise_from_name(path),
        method="ne2ne",
        training=_provenance(path, NE2NE_URL),
    )
    return net, descriptor


_EDSR_NAMES = [
    (re.compile(r"head\.0\.(weight|bias)"), "head.{0}"),
    (re.compile(r"body\.(\d+)\.body\.0\.(weight|bias)"), "blocks.{0}.conv1.{1}"),
    (re.compile(r"body\.(\d+)\.body\.2\.(weight|bias)"), "blocks.{0}.conv2.{1}"),
    (re.compile(r"body\.(\d+)\.(weight|bias)"), "body_end.{1}"),  # the last body entry
    (re.compile(r"tail\.0\.([02])\.(weight|bias)"), "upsample.{0}.{1}"),
    (re.compile(r"tail\.1\.(weight|bias)"), "tail.{0}"),
]
"""EDSR-PyTorch tensor name -> restorekit's, tried in order (all but the mean shift)."""


def _edsr_name(name: str) -> str | None:
    """restorekit's name of the EDSR-PyTorch tensor ``name``; None when it is none of them."""
    for pattern, target in _EDSR_NAMES:
        if match := pattern.fullmatch(name):
            return target.format(*match.groups())
    return None


_MEAN_SHIFT = ("sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias")


def _rename_edsr(
    tensors: dict[str, torch.Tensor], path: Path
) -> tuple[dict[str, torch.Tensor], int]:
    """The tensors of an EDSR-PyTorch EDSR (mean shift left out) under restorekit's names, and
    the number of residual blocks; an unknown tensor or a misplaced closing conv is an error."""
    renamed: dict[str, torch.Tensor] = {}
    unknown, blocks, closing = [], set(), set()
    for name, tensor in tensors.items():
        if name in _MEAN_SHIFT:
            continue
        target = _edsr_name(name)
        if target is None:
            unknown.append(name)
            continue
        renamed[target] = tensor
        if target.startswith("blocks."):
            blocks.add(int(name.split(".")[1]))
        elif target.startswith("body_end."):
            closing.add(int(name.split(".")[1]))
    if unknown:
        raise ModelLoadError(
            f"{path}: unknown tensors for an EDSR-PyTorch EDSR: {', '.join(sorted(unknown))}; "
            f"{_describe_kind(tensors)} (other models of that repository are not supported)"
        )
    if closing != {len(blocks)}:
        found = ", ".join(f"body.{i}" for i in sorted(closing)) or "none"
        raise ModelLoadError(
            f"{path}: the body holds {len(blocks)} residual blocks, so its closing conv must be "
            f"body.{len(blocks)}; found {found}"
        )
    return renamed, len(blocks)


def _edsr_rgb_range(tensors: dict[str, torch.Tensor], path: Path, given: float | None) -> float:
    """rgb_range from the checkpoint's mean shift (checked against the DIV2K mean, std 1, and
    ``given``), else ``given``, else 255 (EDSR-PyTorch's default)."""
    present = [n for n in _MEAN_SHIFT if n in tensors]
    if not present:
        return 255.0 if given is None else given
    if len(present) < len(_MEAN_SHIFT):
        missing = sorted(set(_MEAN_SHIFT) - set(present))
        raise ModelLoadError(f"{path}: incomplete EDSR mean shift: no {', '.join(missing)}")
    mean = torch.tensor(DIV2K_RGB_MEAN, dtype=torch.float64)
    identity = torch.eye(3, dtype=torch.float64).view(3, 3, 1, 1)
    parts = []
    for name, sign in (("sub_mean", -1), ("add_mean", 1)):
        weight, bias = (tensors[f"{name}.{k}"].double() for k in ("weight", "bias"))
        if weight.shape != identity.shape or not torch.allclose(weight, identity, atol=1e-6):
            raise ModelLoadError(
                f"{path}: {name}.weight is not the identity (a std other than 1); restorekit's "
                "EDSR subtracts the DIV2K mean only"
            )
        parts.append(sign * bias.flatten() / mean)
    ratios = torch.cat(parts)
    rgb_range = float(ratios.mean())
    if not torch.allclose(ratios, torch.full_like(ratios, rgb_range), rtol=1e-4):
        raise ModelLoadError(
            f"{path}: sub_mean/add_mean biases {tensors['sub_mean.bias'].tolist()} are not the "
            f"DIV2K mean {DIV2K_RGB_MEAN} times one rgb_range; restorekit's EDSR has that mean "
            "built in"
        )
    rgb_range = round(rgb_range, 3)
    if given is not None and abs(given - rgb_range) > 1e-3 * rgb_range:
        raise ConfigError(
            f"--rgb-range {given:g} does not match the checkpoint's mean shift (rgb_range "
            f"{rgb_range:g}, from sub_mean.bias); leave --rgb-range out"
        )
    return rgb_range


def _edsr_scale(tensors: dict[str, torch.Tensor], features: int, path: Path) -> int:
    """The upscaling factor of an EDSR-PyTorch upsampler: two x2 stages (``tail.0.2``) for x4,
    else one stage with features x scale^2 outputs."""
    if "tail.0.2.weight" in tensors:
        return 4
    ratio = tensors["tail.0.0.weight"].shape[0] / features
    if ratio not in (4, 9):
        raise ModelLoadError(
            f"{path}: tail.0.0.weight has {tensors['tail.0.0.weight'].shape[0]} output "
            f"channels, not {features} features x 4 (x2) or x 9 (x3): not an EDSR upsampler"
        )
    return 2 if ratio == 4 else 3


def _import_edsr(
    tensors: dict[str, torch.Tensor],
    path: Path,
    arch: str,
    scale: int | None,
    rgb_range: float | None,
) -> tuple[nn.Module, ModelDescriptor]:
    _require(tensors, ("head.0.weight", "tail.0.0.weight", "tail.1.weight"), "an EDSR", path)
    renamed, n_blocks = _rename_edsr(tensors, path)
    features, in_channels = tensors["head.0.weight"].shape[:2]
    if in_channels != 3:
        raise ModelLoadError(f"{path}: head.0.weight takes {in_channels} channels, not RGB (3)")
    found = _edsr_scale(tensors, features, path)
    if scale is not None and scale != found:
        raise ConfigError(
            f"--scale {scale} does not match {path}: its upsampler is x{found} "
            f"(tail.0.0.weight {tuple(tensors['tail.0.0.weight'].shape)}); give --scale {found} "
            "or the checkpoint of the scale you want"
        )
    other = next(a for a in EDSR_PUBLISHED if a != arch)
    if (n_blocks, features) == EDSR_PUBLISHED[other]:
        raise ConfigError(
            f"{path}: {n_blocks} blocks of {features} features is the published {other!r} "
            f"model, not {arch!r} (residual scaling {EDSR_RES_SCALE[other]:g}, not "
            f"{EDSR_RES_SCALE[arch]:g}); use --arch {other}"
        )
    rgb_range = _edsr_rgb_range(tensors, path, rgb_range)
    converted = {}
    for target, tensor in renamed.items():
        is_bias = target.endswith(".bias")
        converted[target] = (tensor.double() / rgb_range).float() if is_bias else tensor.float()
    arch_args: dict[str, Any] = {
        "scale": found,
        "n_blocks": n_blocks,
        "features": features,
        "res_scale": EDSR_RES_SCALE[arch],
        "in_channels": 3,
    }
    net = cast(EDSR, build_net("edsr", **arch_args))
    load_state(net, converted, path)
    descriptor = ModelDescriptor(
        arch="edsr",
        arch_args=arch_args,
        task="upscale",
        scale=found,
        scales=[found],
        size_multiple=net.size_multiple,
        method="sr",
        training=_provenance(
            path,
            EDSR_URL,
            rgb_range=rgb_range,
            conversion=f"conv biases divided by rgb_range {rgb_range:g} (for [0, 1] images)",
        ),
    )
    return net, descriptor


def import_checkpoint(
    checkpoint: str | Path,
    arch: str,
    out: str | Path,
    scale: int | None = None,
    rgb_range: float | None = None,
    noise: str | None = None,
) -> Imported:
    """Convert the published checkpoint ``checkpoint`` of ``arch`` (one of :data:`ARCHS`) into
    the restorekit model file ``out``, and check that it loads back.

    ``scale``: the expected upscaling factor (EDSR; checked against the checkpoint's
    upsampler; a denoiser takes none or 1). ``rgb_range``: EDSR-PyTorch's pixel range (default:
    from the checkpoint's mean shift, else 255). ``noise``: the noise a denoiser was trained
    for (default: from the file name). A file that is not such a checkpoint, a mismatch with
    the options, an unknown tensor or a wrong shape raises ``ModelLoadError`` or
    ``ConfigError`` naming it.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    if arch not in ARCHS:
        raise ConfigError(f"unknown --arch {arch!r}; importable: {', '.join(ARCHS)}")
    if rgb_range is not None and not rgb_range > 0:
        raise ConfigError(f"--rgb-range must be positive, got {rgb_range}")
    if out.suffix != ".safetensors":
        raise ConfigError(f"-o {out}: the output is a restorekit model file, name it *.safetensors")
    tensors = read_checkpoint(checkpoint)
    if arch == "ne2ne-unet":
        if rgb_range is not None:
            raise ConfigError("--rgb-range applies to EDSR checkpoints only")
        net, descriptor = _import_ne2ne_unet(tensors, checkpoint, scale, noise)
    else:
        if noise is not None:
            raise ConfigError("--noise applies to denoisers (--arch ne2ne-unet) only")
        net, descriptor = _import_edsr(tensors, checkpoint, arch, scale, rgb_range)
    save_model(out, net, descriptor)
    loaded, descriptor = load_model_file(out)
    return Imported(out, descriptor, sum(p.numel() for p in loaded.parameters()))
