"""Run an exported restorekit model with ONNX Runtime: NumPy in, NumPy out, torch never imported.

``load_onnx_model("model.onnx").denoise(image)`` (or ``.upscale(image)``, or
``.denoise_stack(array, axes)``) takes the same arrays as
:class:`restorekit.infer.model.RestorationModel` and does the same around the network, with the
same code (:class:`restorekit.infer.array_model.ArrayModel`, all NumPy): per-channel
normalisation, padding, the whole-or-tiled decision and tile blending, bicubic input for RED-Net
super-resolution, the self-ensemble. So its output matches the PyTorch model's to ONNX Runtime's
float precision. The model's facts come from the file's metadata written by
:func:`restorekit.infer.onnx_export.export_onnx`; the normalisation is the descriptor's record
(kept out of the graph).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from restorekit.descriptor import ModelDescriptor
from restorekit.errors import ModelLoadError, RestorekitError
from restorekit.infer.array_model import ArrayModel
from restorekit.infer.tiling import DEFAULT_MAX_MEMORY, FALLBACK_BYTES_PER_PIXEL

ONNXRUNTIME_FACTOR = 2.1
"""Allowance over the measured activation peak (``activation_bytes_per_pixel``) for ONNX
Runtime's CPU arena (memory patterns off, arena grown by what is asked). Measured here on a
4000x3000 denoise in 1248-pixel tiles (ne2ne-gauss25): the process grew by 1.98x the
activation estimate of a tile; ONNX Runtime's default power-of-two arena growth held 2.4x."""

LEGACY_FACTOR = 1.6
"""The allowance older exports included in their ``bytes_per_pixel`` metadata."""

REQUIRED_METADATA = ("restorekit",)
"""The descriptor's JSON (:mod:`restorekit.descriptor`): every fact the backend uses."""


class OnnxModel(ArrayModel):
    """An exported model in an ONNX Runtime session.

    Attributes from the file: ``descriptor`` (the model's
    :class:`restorekit.descriptor.ModelDescriptor`, as in its safetensors file),
    ``bytes_per_pixel``, ``reach`` (the overlap follows from it; None in older exports),
    ``weights_sha256`` (of the safetensors file it was exported from, or None). ``tile``,
    ``max_memory``, ``overlap`` and ``batch_size`` work as in
    :class:`restorekit.infer.model.RestorationModel`. ``providers``: ONNX Runtime execution
    providers (default: CPU); ``threads``: intra-op threads (default: ONNX Runtime's choice).
    """

    def __init__(
        self,
        path: str | Path,
        tile: int | None = None,
        max_memory: float = DEFAULT_MAX_MEMORY,
        overlap: int | None = None,
        batch_size: int = 1,
        providers: list[str] | None = None,
        threads: int | None = None,
    ) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise RestorekitError(
                "the ONNX backend needs ONNX Runtime: pip install 'restorekit[onnx]'"
            ) from None
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelLoadError(f"ONNX model file {self.path} does not exist")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # Memory patterns only pay off for fixed shapes; with tiles of varying sizes they more
        # than doubled the arena's peak (EDSR x2, 896 px: 6.1 KB/px with, 3.5 without).
        options.enable_mem_pattern = False
        _share_arena(onnxruntime, options)
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(
                str(self.path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own exception types
            raise ModelLoadError(
                f"{self.path}: not a loadable ONNX model ({type(error).__name__}: {error}); "
                "export one with `restorekit export`"
            ) from None
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = [key for key in REQUIRED_METADATA if key not in meta]
        if missing:
            raise ModelLoadError(
                f"{self.path}: ONNX file without restorekit metadata ({', '.join(missing)} "
                "missing); export the model with `restorekit export`"
            )
        try:
            descriptor = ModelDescriptor.model_validate_json(meta["restorekit"])
        except ValueError as error:
            raise ModelLoadError(
                f"{self.path}: malformed restorekit metadata ({error}); export the model again "
                "with `restorekit export`"
            ) from None
        self.weights_sha256: str | None = meta.get("weights_sha256")
        if "activation_bytes_per_pixel" in meta:
            activations = float(meta["activation_bytes_per_pixel"])
        elif "bytes_per_pixel" in meta:  # older exports: with the allowance of their time
            activations = float(meta["bytes_per_pixel"]) / LEGACY_FACTOR
        else:
            activations = FALLBACK_BYTES_PER_PIXEL
        bytes_per_pixel = activations * ONNXRUNTIME_FACTOR
        reach = int(meta["reach"]) if "reach" in meta else None  # absent in older exports
        super().__init__(descriptor, bytes_per_pixel, reach, tile, max_memory, overlap, batch_size)
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """The graph on a B x C x *spatial float32 batch whose sides are multiples of the size
        multiple (no normalisation, padding or tiling)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run(None, {self.input_name: batch})[0]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """:meth:`predict`: the model on an N x C x H x W (volumes N x C x D x H x W) float batch
        of any size (normalised if the model is, padded, tiled when large)."""
        return self.predict(batch)


_ARENA_REGISTERED = False


def _share_arena(onnxruntime, options) -> None:  # noqa: ANN001 - ONNX Runtime's own types
    """Sessions use one process-wide CPU arena that grows by what is asked, not by powers of two
    (ONNX Runtime's default doubled the arena's peak: a 2.2 GB tile budget held 3.3 GB)."""
    global _ARENA_REGISTERED
    if not _ARENA_REGISTERED:
        info = onnxruntime.OrtMemoryInfo(
            "Cpu",
            onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR,
            0,
            onnxruntime.OrtMemType.DEFAULT,
        )
        arena = onnxruntime.OrtArenaCfg({"arena_extend_strategy": 1})  # kSameAsRequested
        onnxruntime.create_and_register_allocator(info, arena)
        _ARENA_REGISTERED = True
    options.add_session_config_entry("session.use_env_allocators", "1")


def load_onnx_model(
    path: str | Path,
    tile: int | None = None,
    max_memory: float = DEFAULT_MAX_MEMORY,
    overlap: int | None = None,
) -> OnnxModel:
    """Load an exported .onnx model for :meth:`OnnxModel.denoise`, :meth:`OnnxModel.upscale` or
    :meth:`OnnxModel.denoise_stack` (see :class:`OnnxModel`)."""
    return OnnxModel(path, tile=tile, max_memory=max_memory, overlap=overlap)
