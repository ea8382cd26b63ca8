"""Run an exported restorekit model with ONNX Runtime: NumPy in, NumPy out, torch never imported.

``load_onnx_model("model.onnx").denoise(image)`` takes the same arrays as
:class:`restorekit.infer.model.RestorationModel` (see :mod:`restorekit.infer.arrays`) and applies
the same padding, whole-or-tiled decision and tile blending (:mod:`restorekit.infer.tiling`, all
NumPy), so its output matches the PyTorch model's to ONNX Runtime's float precision. The model's
facts come from the file's metadata written by :func:`restorekit.infer.onnx_export.export_onnx`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import ModelLoadError, RestorekitError
from restorekit.infer.arrays import apply_to_image
from restorekit.infer.tiling import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_OVERLAP,
    FALLBACK_BYTES_PER_PIXEL,
    plan_tiles,
    tiled_apply,
)

REQUIRED_METADATA = ("restorekit", "scale", "channels", "size_multiple")


class OnnxModel:
    """An exported model in an ONNX Runtime session.

    Attributes from the file: ``descriptor`` (the model descriptor as a dict), ``task``,
    ``scale``, ``in_channels``, ``out_channels``, ``size_multiple``, ``value_range``,
    ``bytes_per_pixel``. ``tile``, ``max_memory``, ``overlap`` and ``batch_size`` work as in
    :class:`restorekit.infer.model.RestorationModel`. ``providers``: ONNX Runtime execution
    providers (default: CPU); ``threads``: intra-op threads (default: ONNX Runtime's choice).
    """

    def __init__(
        self,
        path: str | Path,
        tile: int | None = None,
        max_memory: float = DEFAULT_MAX_MEMORY,
        overlap: int = DEFAULT_OVERLAP,
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
        self.descriptor: dict[str, Any] = json.loads(meta["restorekit"])
        self.task = meta.get("task", "denoise")
        self.scale = int(meta["scale"])
        self.in_channels = int(meta["channels"])
        self.out_channels = int(meta.get("out_channels", meta["channels"]))
        self.size_multiple = int(meta["size_multiple"])
        self.value_range = tuple(json.loads(meta.get("value_range", "[0, 1]")))
        self.bytes_per_pixel = float(meta.get("bytes_per_pixel", FALLBACK_BYTES_PER_PIXEL))
        self.input_name = self.session.get_inputs()[0].name
        self.tile = tile
        self.max_memory = max_memory
        self.overlap = overlap
        self.batch_size = batch_size

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """The graph on a B x C x H x W float32 batch whose sides are multiples of the size
        multiple (no padding, no tiling)."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch)})[0]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The model on an N x C x H x W float batch of any size (padded, tiled when large).

        Output: N x out_channels x (scale * H) x (scale * W), float32.
        """
        batch = np.asarray(batch, dtype=np.float32)
        tile, batch_size = plan_tiles(
            batch.shape,
            self.size_multiple,
            self.bytes_per_pixel,
            self.tile,
            self.max_memory,
            self.overlap,
            self.batch_size,
        )
        return tiled_apply(
            self.forward, batch, self.size_multiple, tile, self.overlap, self.scale, batch_size
        )

    def denoise(self, image: np.ndarray) -> np.ndarray:
        """Denoised copy of ``image``: H x W (x C) uint8 / uint16 / float, same dtype out."""
        return apply_to_image(self.run, image, self.in_channels)


def load_onnx_model(
    path: str | Path,
    tile: int | None = None,
    max_memory: float = DEFAULT_MAX_MEMORY,
    overlap: int = DEFAULT_OVERLAP,
) -> OnnxModel:
    """Load an exported .onnx model for :meth:`OnnxModel.denoise` (see :class:`OnnxModel`)."""
    return OnnxModel(path, tile=tile, max_memory=max_memory, overlap=overlap)
