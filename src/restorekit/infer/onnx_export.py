"""Export a restorekit model to ONNX, checked against PyTorch with ONNX Runtime.

The graph takes ``input``: N x C x H x W float32 with N, H and W dynamic (H and W multiples of
the model's ``size_multiple``: callers pad, as :mod:`restorekit.infer.onnx_backend` does) and
gives ``output``: N x C' x (scale * H) x (scale * W).

Exporter: the TorchScript-based one (``torch.onnx.export(..., dynamo=False)``). It traces the
N2N U-Net (max-pool, nearest upsampling by scale factor 2, concatenation) into a graph whose
batch and spatial axes stay dynamic, with no dependency beyond ``onnx``; the torch.export-based
exporter would need ``onnxscript`` and a constrained shape for the U-Net's multiple-of-32 check.
Every export is verified: ONNX Runtime and PyTorch must agree within ``tolerance`` on an image
sized input different from the one traced, else nothing is written.

Metadata (``metadata_props``, all strings): ``restorekit`` (the descriptor JSON, as in the
safetensors file), ``task``, ``scale``, ``channels`` (input), ``out_channels``,
``value_range`` (JSON), ``size_multiple``, ``bytes_per_pixel`` (the working-memory estimate of
:func:`restorekit.infer.tiling.estimate_bytes_per_pixel`, used to choose tiles),
``restorekit_version``.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from restorekit.errors import RestorekitError
from restorekit.infer.model import RestorationModel, load_model
from restorekit.infer.tiling import estimate_bytes_per_pixel
from restorekit.io import atomic_write

DEFAULT_OPSET = 17
CHECK_SIZE = (96, 128)
"""Height and width of the verification input (rounded up to the size multiple)."""


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
) -> OnnxExport:
    """Export a model (a :class:`RestorationModel`, shipped name, model file or run folder).

    Raises :class:`OnnxExportError` when the exporter fails or when ONNX Runtime's output
    differs from PyTorch's by more than ``tolerance`` (max abs) on the check input; then
    ``out_path`` is not written.
    """
    import onnx

    from restorekit import __version__

    model = (
        model_or_path
        if isinstance(model_or_path, RestorationModel)
        else load_model(model_or_path, device="cpu")
    )
    descriptor = model.descriptor
    if getattr(descriptor, "normalization", None) or descriptor.arch_args.get("dims", 2) != 2:
        raise OnnxExportError(
            f"{descriptor.arch}: models with per-channel normalisation or 3D networks (the "
            "stack path) cannot be exported to ONNX yet; use the torch backend"
        )
    net = copy.deepcopy(model.net).cpu().to(memory_format=torch.contiguous_format).eval()
    multiple = descriptor.size_multiple
    example = torch.rand(1, descriptor.in_channels, 2 * multiple, 2 * multiple)
    axes = {0: "batch", 2: "height", 3: "width"}
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_graph = out_path.with_name(f".{out_path.name}.export")
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
        "task": descriptor.task,
        "scale": str(descriptor.scale),
        "channels": str(descriptor.in_channels),
        "out_channels": str(descriptor.out_channels),
        "value_range": json.dumps(list(descriptor.value_range)),
        "size_multiple": str(multiple),
        "bytes_per_pixel": str(estimate_bytes_per_pixel(net, descriptor.scale)),
        "restorekit_version": __version__,
    }
    onnx.helper.set_model_props(graph, metadata)
    data = graph.SerializeToString()

    shape = (1, descriptor.in_channels, *(-(-s // multiple) * multiple for s in CHECK_SIZE))
    low, high = descriptor.value_range
    x = np.random.default_rng(0).uniform(low, high, shape).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    got = _run_onnxruntime(data, x)
    diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
    if not diff <= tolerance:
        raise OnnxExportError(
            f"the ONNX graph of {descriptor.arch} disagrees with PyTorch on a {shape} input: "
            f"output {got.shape} vs {expected.shape}, max abs difference {diff:.3g} > "
            f"{tolerance:g}; {out_path} was not written (try another --opset)"
        )
    atomic_write(out_path, lambda tmp: Path(tmp).write_bytes(data))
    return OnnxExport(out_path, opset, diff, shape)


def _run_onnxruntime(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]
