"""Export a restorekit model to ONNX, checked against PyTorch with ONNX Runtime.

The graph is the bare network. It takes ``input``: N x C x H x W float32 (3D networks:
N x C x D x H x W) with N and every spatial axis dynamic (multiples of the model's
``size_multiple``: callers pad, as :mod:`restorekit.infer.onnx_backend` does) and gives
``output``: N x C' x the spatial sizes times the network's scale (EDSR: its factor; RED-Net
super-resolution, which takes the bicubic-upscaled image, and denoisers: 1). Per-channel
normalisation (Noise2Void models, ``descriptor.normalization``) stays out of the graph: the
backend applies it from the descriptor in the metadata, as the PyTorch model does.

Exporter: the TorchScript-based one (``torch.onnx.export(..., dynamo=False)``). It traces the
networks (U-Nets with max-pool or blur-pool, nearest upsampling and concatenation, 2D or 3D;
EDSR's pixel shuffle; RED-Net's transposed convolutions) into graphs whose batch and spatial
axes stay dynamic, with no dependency beyond ``onnx``; the torch.export-based exporter would
need ``onnxscript`` and constrained shapes for the U-Nets' size checks. Every export is
verified: ONNX Runtime and PyTorch must agree within ``tolerance`` on an input of another size
than the one traced, else nothing is written.

Metadata (``metadata_props``, all strings): ``restorekit`` (the model's one record, the
descriptor JSON of :mod:`restorekit.descriptor`, as in the safetensors file: task, scales,
channels, size multiple, value range, normalisation), and what only the graph knows:
``activation_bytes_per_pixel`` (the activation peak measured by
:func:`restorekit.infer.memory.measure_bytes_per_pixel`; ONNX Runtime's allowance over it is
applied at load, :data:`restorekit.infer.onnx_backend.ONNXRUNTIME_FACTOR`, used to choose
tiles), ``reach`` (the network's receptive-field radius from
:func:`restorekit.infer.reach.measure_reach`, which sets the tile overlap; absent when
unknown), ``weights_sha256`` (SHA-256 of the safetensors file exported; absent when
exporting a model object), ``restorekit_version``.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from restorekit.errors import RestorekitError
from restorekit.infer.memory import measure_bytes_per_pixel
from restorekit.infer.model import RestorationModel, load_model
from restorekit.infer.tiling import round_up
from restorekit.io import atomic_write, sha256_file
from restorekit.io.files import temporary_path
from restorekit.zoo import resolve_model

DEFAULT_OPSET = 17
CHECK_SIZE = (96, 128)
"""Height and width of the verification input (rounded up to the size multiple)."""
CHECK_DEPTH = 16
SPATIAL_AXES = ("depth", "height", "width")
"""Depth of the verification input of 3D networks (rounded up to the size multiple)."""


class OnnxExportError(RestorekitError):
    """A model could not be exported to ONNX, or the exported graph disagrees with PyTorch."""


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote and how closely ONNX Runtime matched PyTorch."""

    path: Path
    opset: int
    max_abs_diff: float
    check_shape: tuple[int, ...]


def export_onnx(
    model_or_path: RestorationModel | str | Path,
    out_path: str | Path,
    opset: int = DEFAULT_OPSET,
    tolerance: float = 1e-4,
    overwrite: bool = True,
) -> OnnxExport:
    """Export a model (a :class:`RestorationModel`, shipped name, model file or run folder).

    Raises :class:`OnnxExportError` when the exporter fails or when ONNX Runtime's output
    differs from PyTorch's by more than ``tolerance`` on the check input (max abs difference,
    times the output's largest magnitude where that exceeds 1: a normalised model's outputs
    reach tens, and float32 rounding grows with them); then
    ``out_path`` is not written. ``out_path`` is checked first
    (:func:`restorekit.io.outputs.plan_export`): it must be named ``*.onnx``, and the model
    file, a folder or an existing file of another kind is never written over; an existing
    ``.onnx`` file is replaced only with ``overwrite``. A folder that cannot be made or
    written raises ``OSError``.
    """
    import onnx

    from restorekit import __version__
    from restorekit.io.outputs import plan_export

    weights_sha256 = None
    if isinstance(model_or_path, RestorationModel):
        plan_export(Path(out_path), None, overwrite=overwrite, check_parents=False)
        model = model_or_path
    else:
        weights = resolve_model(model_or_path)
        plan_export(Path(out_path), weights, overwrite=overwrite, check_parents=False)
        weights_sha256 = sha256_file(weights)
        model = load_model(weights, device="cpu")
    descriptor = model.descriptor
    # Module.to takes memory_format at runtime; torch's overloads of it leave it out
    net = copy.deepcopy(model.net).cpu().to(memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]
    multiple = descriptor.size_multiple
    dims = descriptor.dims
    example = torch.rand(1, descriptor.in_channels, *[2 * multiple] * dims)
    axes = {0: "batch", **{2 + i: name for i, name in enumerate(SPATIAL_AXES[-dims:])}}
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_graph = temporary_path(out_path)  # a name remove_orphan_temporaries knows
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation, tracer notes
            torch.onnx.export(
                net,
                (example,),
                str(tmp_graph),
                dynamo=False,
                opset_version=opset,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": axes, "output": axes},
            )
        graph = onnx.load(str(tmp_graph))
    except Exception as error:  # noqa: BLE001 - any exporter failure is reported the same way
        raise OnnxExportError(
            f"exporting {descriptor.arch} to ONNX (opset {opset}) failed: "
            f"{type(error).__name__}: {error}; try another --opset"
        ) from None
    finally:
        tmp_graph.unlink(missing_ok=True)

    metadata = {
        "restorekit": descriptor.model_dump_json(),
        "activation_bytes_per_pixel": str(
            measure_bytes_per_pixel(net, descriptor.in_channels, multiple, dims, factor=1.0)
        ),
        "restorekit_version": __version__,
    }
    if model.reach is not None:
        metadata["reach"] = str(model.reach)
    if weights_sha256:
        metadata["weights_sha256"] = weights_sha256
    onnx.helper.set_model_props(graph, metadata)
    data = graph.SerializeToString()

    size = ((CHECK_DEPTH,) if dims == 3 else ()) + CHECK_SIZE
    shape = (1, descriptor.in_channels, *(round_up(s, multiple) for s in size))
    low, high = descriptor.value_range
    x = np.random.default_rng(0).uniform(low, high, shape).astype(np.float32)
    if model.normalization is not None:  # what the network sees
        x = np.ascontiguousarray(model.normalization.apply(x[0])[None])
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    got = _run_onnxruntime(data, x)
    diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
    allowed = tolerance * max(1.0, float(np.abs(expected).max()))  # float32 rounding scales
    if not diff <= allowed:
        raise OnnxExportError(
            f"the ONNX graph of {descriptor.arch} disagrees with PyTorch on a {shape} input: "
            f"output {got.shape} vs {expected.shape}, max abs difference {diff:.3g} > "
            f"{allowed:.3g}; {out_path} was not written (try another --opset)"
        )
    atomic_write(out_path, lambda tmp: Path(tmp).write_bytes(data))
    return OnnxExport(out_path, opset, diff, shape)


def _run_onnxruntime(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]
