"""Export a restorekit model as a BioImage Model Zoo package (model description format 0.5), for
deepImageJ, ilastik, the BioImage.IO Python core and Fiji's consumers.

The package (a zip built by ``bioimageio.spec``'s own writer) holds ``rdf.yaml`` and:

* weights in three formats: ``pytorch_state_dict`` (the network's state dict, with the
  restorekit class and its arguments as the architecture), ``torchscript`` (a traced module, for
  consumers without restorekit) and ``onnx`` (:mod:`restorekit.infer.onnx_export`'s graph,
  checked against PyTorch);
* one input tensor ``raw`` and one output ``denoised`` (or ``upscaled``): batch, channel and
  spatial axes (z for 3D networks), any size that is a multiple of the network's size multiple
  from that multiple up; the output keeps the input's size (denoisers) or is ``scale`` times it
  (upscalers), with the network's measured reach as its halo (what a consumer's tiling must
  overlap, as restorekit's own tiling does);
* pre- and post-processing that put the consumer's raw pixel values (``pixel_scale``: 255 for
  8-bit data, 65535 for 16-bit, 1 for data already in [0, 1]) on the network's scale and back:
  restorekit's [0, 1] scaling, and for models trained with ``data.normalization`` its fixed
  per-channel mean / std, folded into one ``fixed_zero_mean_unit_variance`` step (undone by one
  ``scale_linear`` after the network);
* test tensors (a sample input, from ``sample`` or made from the model's noise, and the output
  computed here with the same pre- and post-processing), a cover (input | output), the model's
  card as documentation, the method's paper as citation (DOI only: nothing in the package asks
  for a network connection when it is tested).

Not exported: models that take a bicubic-upscaled input (RED-Net super-resolution: that step has
no BioImage.IO processing) and models whose output range is not [0, 1].
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restorekit.descriptor import ModelDescriptor
from restorekit.errors import RestorekitError
from restorekit.infer.model import RestorationModel, load_model
from restorekit.infer.onnx_export import export_onnx
from restorekit.io.files import atomic_write
from restorekit.zoo import resolve_model, shipped_model

PAPERS = {
    "n2v": (
        "Krull, Buchholz, Jug. Noise2Void - Learning Denoising from Single Noisy Images. "
        "CVPR 2019.",
        "10.1109/CVPR.2019.00223",
    ),
    "n2v2": (
        "Hoeck, Buchholz, Jug et al. N2V2 - Fixing Noise2Void Checkerboard Artifacts "
        "with Modified Sampling Strategies and a Tweaked Network Architecture. ECCV "
        "Workshops 2022.",
        "10.48550/arXiv.2211.08512",
    ),
    "structn2v": (
        "Broaddus, Krull, Weigert, Schmidt, Myers. Removing Structured Noise with "
        "Self-Supervised Blind-Spot Networks. ISBI 2020.",
        "10.1109/ISBI45749.2020.9098336",
    ),
    "ne2ne": (
        "Huang, Li, Jia, Lu, Liu. Neighbor2Neighbor: Self-Supervised Denoising from "
        "Single Noisy Images. CVPR 2021.",
        "10.1109/CVPR46437.2021.01454",
    ),
    "n2n": (
        "Lehtinen et al. Noise2Noise: Learning Image Restoration without Clean Data. ICML 2018.",
        "10.48550/arXiv.1803.04189",
    ),
    "n2c": (
        "Lehtinen et al. Noise2Noise: Learning Image Restoration without Clean Data. ICML "
        "2018 (its supervised baseline).",
        "10.48550/arXiv.1803.04189",
    ),
    "sr": (
        "Lim, Son, Kim, Nah, Lee. Enhanced Deep Residual Networks for Single Image "
        "Super-Resolution. CVPR Workshops 2017.",
        "10.1109/CVPRW.2017.151",
    ),
}
"""Each training method's paper: (citation text, DOI)."""

TEST_SIZE = 128
"""Height and width (and depth / 4 for volumes) of the test input, before rounding up to the
size multiple."""


class BioImageIOExportError(RestorekitError):
    """The model cannot be described in the BioImage Model Zoo format, or its package failed."""


@dataclass(frozen=True)
class BioImageIOPackage:
    path: Path
    weights: tuple[str, ...]
    test_shape: tuple[int, ...]


def export_bioimageio(
    model_name: str | Path,
    out: Path,
    pixel_scale: float = 255.0,
    sample: np.ndarray | None = None,
    authors: tuple[str, ...] = ("restorekit developers",),
) -> BioImageIOPackage:
    """Write ``model_name``'s BioImage Model Zoo package to ``out`` (a ``.zip``, atomically).

    ``pixel_scale``: the raw value of full scale in the data the package will be given.
    ``sample``: a test input in that scale, laid out as the model's tensors without batch
    (C x (Z) x Y x X); cropped to the test size. None: a smooth pattern with the model's noise.
    """
    try:
        from bioimageio.spec import save_bioimageio_package
    except ImportError:
        raise BioImageIOExportError(
            "BioImage Model Zoo packages need the bioimageio extra: "
            "pip install 'restorekit[bioimageio]'"
        ) from None
    source = resolve_model(model_name)
    model = load_model(source, "cpu")
    descriptor = model.descriptor
    _check_exportable(descriptor, pixel_scale)
    with tempfile.TemporaryDirectory(prefix="restorekit-bmz-") as folder:
        work = Path(folder)
        raw = _test_input(descriptor, pixel_scale, sample, _smallest_side(model))
        expected = _run(model, raw, pixel_scale)
        np.save(work / "test_input.npy", raw)
        np.save(work / "test_output.npy", expected)
        _cover(raw, expected, work / "cover.png")
        _documentation(source, descriptor, pixel_scale, work / "README.md")
        weights = _weights(model, source, raw, work)
        description = _describe(model, source, descriptor, pixel_scale, authors, weights, work)

        def write(tmp: Path) -> None:
            built = save_bioimageio_package(description, output_path=work / "package.zip")
            shutil.move(str(built), tmp)

        atomic_write(out, write)
    return BioImageIOPackage(Path(out), tuple(weights), tuple(raw.shape))


def _check_exportable(descriptor: ModelDescriptor, pixel_scale: float) -> None:
    if descriptor.upsample_input:
        raise BioImageIOExportError(
            f"{descriptor.arch} takes a bicubic-upscaled input, a step the BioImage Model Zoo "
            "format cannot describe; export it to ONNX instead (restorekit export)"
        )
    if tuple(descriptor.value_range) != (0.0, 1.0):
        raise BioImageIOExportError(
            f"the model's values range over {descriptor.value_range}, not [0, 1]: not exportable"
        )
    if not pixel_scale > 0:
        raise BioImageIOExportError(f"--pixel-scale must be positive, got {pixel_scale}")


def _test_input(
    descriptor: ModelDescriptor, pixel_scale: float, sample: np.ndarray | None, smallest: int
) -> np.ndarray:
    """1 x C x (Z) x Y x X float32 in the raw pixel scale, each side at least ``smallest``."""
    multiple = descriptor.size_multiple
    side = max(smallest, -(-TEST_SIZE // multiple) * multiple)
    depth = max(smallest, -(-TEST_SIZE // 4 // multiple) * multiple)
    sizes = [side, side] if descriptor.dims == 2 else [depth, side, side]
    if sample is not None:
        sample = np.asarray(sample, dtype=np.float32)
        if sample.ndim != len(sizes) + 1 or sample.shape[0] != descriptor.in_channels:
            raise BioImageIOExportError(
                f"the sample has shape {sample.shape}; this model takes "
                f"{descriptor.in_channels} x {' x '.join('ZYX'[-len(sizes) :])} (channels first)"
            )
        if any(n < s for n, s in zip(sample.shape[1:], sizes, strict=True)):
            raise BioImageIOExportError(
                f"the sample {sample.shape[1:]} is smaller than the test size {tuple(sizes)}"
            )
        crop: tuple = (slice(None),) + tuple(slice(0, s) for s in sizes)
        return sample[crop][None]
    rng = np.random.default_rng(0)
    grids = np.meshgrid(*[np.linspace(0, 1, s) for s in sizes], indexing="ij")
    clean = 0.5 + 0.3 * np.sin(6 * grids[-1]) * np.cos(4 * grids[-2])
    clean = np.broadcast_to(clean, (descriptor.in_channels, *sizes))
    sigma = _sigma(descriptor.noise)
    noisy = clean + rng.normal(0, sigma, clean.shape)
    return (np.clip(noisy, 0, 1) * pixel_scale).astype(np.float32)[None]


def _sigma(noise: str | None) -> float:
    """The test input's Gaussian noise: the model's (highest sigma of a range), else 25/255."""
    if noise and noise.startswith("gauss:"):
        return float(noise.split(":")[1].split("-")[-1]) / 255
    return 25 / 255


def _normalization(descriptor: ModelDescriptor, pixel_scale: float) -> tuple[list, list]:
    """Per-channel (mean, std) taking raw values to the network's input: x / pixel_scale, then
    the model's own normalisation if it has one."""
    channels = descriptor.in_channels
    if descriptor.normalization is None:
        return [0.0] * channels, [pixel_scale] * channels
    from restorekit.normalization import Normalization

    norm = Normalization.from_record(descriptor.normalization)
    mean = [float(v) * pixel_scale for v in np.broadcast_to(norm.offset, (channels,))]
    std = [float(v) * pixel_scale for v in np.broadcast_to(norm.scale, (channels,))]
    return mean, std


def _run(model: RestorationModel, raw: np.ndarray, pixel_scale: float) -> np.ndarray:
    """The package's function on ``raw``: pre-processing, the bare network, post-processing."""
    mean, std = _normalization(model.descriptor, pixel_scale)
    shape = (1, -1) + (1,) * (raw.ndim - 2)
    mean_a, std_a = np.reshape(mean, shape), np.reshape(std, shape)
    x = ((raw.astype(np.float64) - mean_a) / std_a).astype(np.float32)
    with torch.no_grad():
        y = model.net(torch.from_numpy(x)).numpy().astype(np.float64)
    out_mean, out_std = _output_normalization(model.descriptor, pixel_scale)
    shape_out = (1, -1) + (1,) * (y.ndim - 2)
    y = y * np.reshape(out_std, shape_out) + np.reshape(out_mean, shape_out)
    return y.astype(np.float32)


def _output_normalization(descriptor: ModelDescriptor, pixel_scale: float) -> tuple[list, list]:
    """(offset, gain) per output channel that take the network's output to raw values."""
    mean, std = _normalization(descriptor, pixel_scale)
    if descriptor.out_channels != len(mean):
        mean = [mean[0]] * descriptor.out_channels
        std = [std[0]] * descriptor.out_channels
    return mean, std


def _cover(raw: np.ndarray, out: np.ndarray, path: Path) -> None:
    """Input | output side by side (the middle plane of a volume), 8-bit."""
    from PIL import Image

    def picture(a: np.ndarray) -> np.ndarray:
        a = a[0]
        if a.ndim == 4:
            a = a[:, a.shape[1] // 2]
        a = a[:3] if a.shape[0] >= 3 else a[:1]
        low, high = np.percentile(raw, (0.5, 99.5))
        scaled = np.clip((a - low) / max(high - low, 1e-6), 0, 1)
        if scaled.shape[-2:] != raw.shape[-2:]:  # an upscaled output: shown at the input's size
            step = scaled.shape[-1] // raw.shape[-1]
            scaled = scaled[..., ::step, ::step]
        picture = (scaled * 255).round().astype(np.uint8).transpose(1, 2, 0)
        return np.repeat(picture, 3, axis=2) if picture.shape[2] == 1 else picture

    both = np.concatenate([picture(raw), picture(out)], axis=1)
    Image.fromarray(both).save(path)


def _documentation(
    source: Path, descriptor: ModelDescriptor, pixel_scale: float, path: Path
) -> None:
    zoo = shipped_model(source)
    card = zoo.folder / "card.md" if zoo is not None else None
    text = card.read_text(encoding="utf-8") if card is not None and card.is_file() else ""
    if not text:
        text = f"# {source.stem}\n\nA restorekit {descriptor.task} model ({descriptor.arch}).\n"
    text += (
        "\n\n## BioImage Model Zoo package\n\nExported by `restorekit export --format bioimageio`."
        f" Input: raw pixel values with full scale {pixel_scale:g} (the pre-processing divides by"
        " it and applies the model's normalisation; the post-processing undoes both). Tiles"
        " must overlap by the output's halo to give the whole-image result.\n"
    )
    path.write_text(text, encoding="utf-8")


def _weights(model: RestorationModel, source: Path, raw: np.ndarray, work: Path) -> dict[str, Path]:
    """The weight files: state dict, TorchScript, ONNX."""
    net = model.net.eval()
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    torch.save(state, work / "weights.pt")
    example = torch.zeros(raw.shape, dtype=torch.float32)
    with torch.no_grad(), warnings.catch_warnings():
        # the size check's Python bool is traced as a constant: the package's test runs the
        # traced module at other sizes and batch sizes too. TorchScript is deprecated in
        # PyTorch but is what deepImageJ runs.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(net, example, check_trace=False)
    traced.save(str(work / "weights.torchscript.pt"))
    export_onnx(source, work / "weights.onnx")
    return {
        "pytorch_state_dict": work / "weights.pt",
        "torchscript": work / "weights.torchscript.pt",
        "onnx": work / "weights.onnx",
    }


def _describe(
    model: RestorationModel,
    source: Path,
    descriptor: ModelDescriptor,
    pixel_scale: float,
    authors: tuple[str, ...],
    weights: dict[str, Path],
    work: Path,
):  # noqa: ANN202 - bioimageio.spec's ModelDescr
    from bioimageio.spec.model import v0_5 as bmz

    dims = descriptor.dims
    spatial = ["z", "y", "x"][-dims:]
    multiple = descriptor.size_multiple
    raw_id = bmz.TensorId("raw")
    scale = descriptor.scale
    halo = _halo(model)
    smallest = _smallest_side(model)
    input_axes: list = [bmz.BatchAxis(), _channels(bmz, descriptor.in_channels)]
    input_axes += [
        bmz.SpaceInputAxis(
            id=bmz.AxisId(a), size=bmz.ParameterizedSize(min=smallest, step=multiple)
        )
        for a in spatial
    ]
    output_axes: list = [bmz.BatchAxis(), _channels(bmz, descriptor.out_channels)]
    for a in spatial:
        size = bmz.SizeReference(tensor_id=raw_id, axis_id=bmz.AxisId(a))
        if halo:
            output_axes.append(bmz.SpaceOutputAxisWithHalo(id=bmz.AxisId(a), size=size, halo=halo))
        else:
            output_axes.append(bmz.SpaceOutputAxis(id=bmz.AxisId(a), size=size, scale=1 / scale))
    mean, std = _normalization(descriptor, pixel_scale)
    out_mean, out_std = _output_normalization(descriptor, pixel_scale)
    preprocessing: list[Any] = [
        bmz.FixedZeroMeanUnitVarianceDescr(
            kwargs=_per_channel(bmz, "FixedZeroMeanUnitVarianceAlongAxisKwargs", mean, std)
            if descriptor.in_channels > 1
            else bmz.FixedZeroMeanUnitVarianceKwargs(mean=mean[0], std=std[0])
        )
    ]
    postprocessing: list[Any] = [
        bmz.ScaleLinearDescr(
            kwargs=_per_channel(bmz, "ScaleLinearAlongAxisKwargs", out_mean, out_std, linear=True)
            if descriptor.out_channels > 1
            else bmz.ScaleLinearKwargs(gain=out_std[0], offset=out_mean[0])
        )
    ]
    inputs = [
        bmz.InputTensorDescr(
            id=raw_id,
            axes=input_axes,
            test_tensor=bmz.FileDescr(source=work / "test_input.npy"),
            preprocessing=preprocessing,
        )
    ]
    output_name = "denoised" if descriptor.task == "denoise" else "upscaled"
    outputs = [
        bmz.OutputTensorDescr(
            id=bmz.TensorId(output_name),
            axes=output_axes,
            test_tensor=bmz.FileDescr(source=work / "test_output.npy"),
            postprocessing=postprocessing,
        )
    ]
    net_class = type(model.net)
    architecture = bmz.ArchitectureFromLibraryDescr(
        callable=bmz.Identifier(net_class.__name__),
        import_from=net_class.__module__,
        kwargs=dict(descriptor.arch_args),
    )
    torch_version = bmz.Version(torch.__version__.split("+")[0])
    pytorch = bmz.PytorchStateDictWeightsDescr(
        source=weights["pytorch_state_dict"],
        architecture=architecture,
        pytorch_version=torch_version,
    )
    onnx_weights = bmz.OnnxWeightsDescr(
        source=weights["onnx"], opset_version=17, parent="pytorch_state_dict"
    )
    torchscript = bmz.TorchscriptWeightsDescr(
        source=weights["torchscript"], pytorch_version=torch_version, parent="pytorch_state_dict"
    )
    text, doi = PAPERS.get(descriptor.method or "", PAPERS["n2c"])
    what = "Denoising" if descriptor.task == "denoise" else f"Super-resolution x{scale}"
    method = descriptor.method or "supervised"
    return bmz.ModelDescr(
        name=_package_name(source, descriptor),
        description=f"{what} ({method}, {descriptor.arch}) trained with restorekit.",
        authors=[bmz.Author(name=name) for name in authors],
        cite=[bmz.CiteEntry(text=text, doi=bmz.Doi(doi))],
        license=bmz.LicenseId("MIT"),
        documentation=bmz.FileDescr(source=work / "README.md"),
        covers=[bmz.FileDescr(source=work / "cover.png")],
        tags=["restorekit", descriptor.task, method, f"{dims}d"],
        inputs=inputs,
        outputs=outputs,
        weights=bmz.WeightsDescr(
            pytorch_state_dict=pytorch, torchscript=torchscript, onnx=onnx_weights
        ),
    )


def _channels(bmz, count: int):  # noqa: ANN001, ANN202 - bioimageio.spec types
    return bmz.ChannelAxis(channel_names=[bmz.Identifier(f"channel{i}") for i in range(count)])


def _per_channel(bmz, kind: str, first: list, second: list, linear: bool = False):  # noqa: ANN001, ANN202
    if linear:
        return bmz.ScaleLinearAlongAxisKwargs(axis=bmz.AxisId("channel"), gain=second, offset=first)
    return bmz.FixedZeroMeanUnitVarianceAlongAxisKwargs(
        axis=bmz.AxisId("channel"), mean=first, std=second
    )


def _halo(model: RestorationModel) -> int:
    """The output's halo: the network's measured reach (0 when unknown; none for upscalers,
    whose output axes are scaled references the format gives no halo)."""
    return int(model.reach or 0) if model.descriptor.scale == 1 else 0


def _smallest_side(model: RestorationModel) -> int:
    """The smallest input side offered: a multiple of the size multiple larger than twice the
    halo (a tile must keep a centre beyond its halo)."""
    multiple = model.descriptor.size_multiple
    return -(-(2 * _halo(model) + 1) // multiple) * multiple


def _package_name(source: Path, descriptor: ModelDescriptor) -> str:
    stem = source.parent.name if source.stem == "model" else source.stem
    role = {"denoise": "denoiser", "upscale": "upscaler"}[descriptor.task]
    name = f"restorekit {stem} {role}".replace("_", "-")
    cleaned = "".join(c if c.isalnum() or c in " _+-()" else "-" for c in name)
    return cleaned[:128] if len(cleaned) >= 5 else f"restorekit {cleaned}"
