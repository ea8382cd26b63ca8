"""What the napari widgets do, without Qt: a layer's axes, denoising its data block by block
(progress and cancel between blocks), and training Noise2Void on it. Tested without a viewer.

A napari image layer holds an array of any dimension with Y and X last (RGB layers: then the
colour axis). Axes given to restorekit (:mod:`restorekit.io.axes`): the last two are ``YX``; an
RGB layer adds ``C``; a 3D model takes the axis before them as ``Z``; any other leading axis is a
slice axis (``S``, then ``T`` for a second one), each slice denoised on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import ConfigError
from restorekit.infer.array_model import ArrayModel
from restorekit.io.axes import from_canonical, to_canonical

METHODS: dict[str, dict[str, Any]] = {
    "Noise2Void": {},
    "N2V2": {"method.manipulator": "median", "model.blurpool": True, "model.skip_top": False},
    "structN2V (horizontal stripes)": {"method.struct_mask": [[1, 1, 1, 1, 1]]},
    "structN2V (vertical stripes)": {"method.struct_mask": [[1], [1], [1], [1], [1]]},
}
"""The training methods the widget offers, as changes to the n2v-2d / n2v-3d presets."""


def layer_axes(ndim: int, rgb: bool = False, volume: bool = False) -> str:
    """The axes of a layer's data: Y X last (then C for RGB), Z before them for a 3D model,
    slice axes (S, T) before those."""
    spatial = ("Z" if volume else "") + "YX" + ("C" if rgb else "")
    leading = ndim - len(spatial)
    if leading < 0:
        raise ConfigError(
            f"the layer has {ndim} dimension(s); "
            + ("a 3D model needs a volume (Z, Y, X)" if volume else "an image needs Y and X")
        )
    if leading > 2:
        raise ConfigError(f"the layer has {ndim} dimensions: at most two besides the image's")
    return "ST"[:leading] + spatial


def denoise_blocks(
    model: ArrayModel, data: Any, axes: str, ensemble: bool = False
) -> Iterator[tuple[float, np.ndarray | None]]:
    """Denoise ``data`` (laid out as ``axes``) block by block: yields ``(fraction done,
    None)`` after each block of rows and ``(1.0, result)`` at the end, the result in the data's
    layout and dtype. Stopping the iteration between blocks cancels the work."""
    array = np.asarray(data)
    axes = model.stack_axes(axes)
    canonical = to_canonical(array, axes)
    model.check_stack(canonical, axes, True, "the layer")
    result = np.empty(canonical.shape, canonical.dtype)
    rows = canonical.shape[2] * model.descriptor.net_scale
    total = canonical.shape[0] * rows
    for s, row, block in model.stack_blocks(canonical, ensemble, canonical.dtype):
        result[s, :, row : row + block.shape[2]] = block[0]
        yield (s * rows + row + block.shape[2]) / total, None
    yield 1.0, from_canonical(result, axes, array.shape)


def denoise_layer(model: ArrayModel, data: Any, axes: str, ensemble: bool = False) -> np.ndarray:
    """:func:`denoise_blocks` run to its end: the result."""
    for _, result in denoise_blocks(model, data, axes, ensemble):
        if result is not None:
            return result
    raise AssertionError("denoise_blocks ends with the result")


@dataclass
class TrainingRequest:
    """What the training widget asks: Noise2Void (a :data:`METHODS` key) on ``data`` laid out
    as ``axes``, for ``minutes`` of training, in ``run_dir``."""

    data: np.ndarray
    axes: str
    method: str = "Noise2Void"
    minutes: float = 5.0
    patch_size: int = 64
    run_dir: Path = Path("restorekit-napari-run")

    def config(self) -> Any:
        """The run's config: the n2v-2d (or, with Z, n2v-3d) preset with this method, data,
        channels, time budget and a validation share when there are slices to hold out."""
        from restorekit.configs import load_config
        from restorekit.devices import fastest_training_precision, resolve_device

        if self.method not in METHODS:
            raise ConfigError(f"method {self.method!r}: one of {', '.join(METHODS)}")
        canonical = to_canonical(np.asarray(self.data), self.axes)
        volume = "Z" in self.axes
        sides = canonical.shape[-3 if volume else -2 :]
        patch = min(self.patch_size, min(sides[-2:]) // 8 * 8)
        if patch < 16:
            raise ConfigError(f"the layer is {sides} pixels: training needs at least 16 a side")
        device = resolve_device(None)  # the trainer's own choice (train.device=auto)
        fields: dict[str, Any] = {
            "data.train": [str(self.data_file)],
            "data.axes": self.axes,
            "data.patch_size": patch,
            "data.val_fraction": 0.1 if canonical.shape[0] >= 10 else 0.0,
            "train.time_budget": self.minutes * 60,
            # bf16 where native (about 2x on such a CPU, as the web app); volumes stay fp32:
            # bf16 3D convolutions were not measured
            "train.precision": "fp32" if volume else fastest_training_precision(device),
            "train.batch_size": 16 if not volume else 4,
            "train.log_every": 5,
            "train.checkpoint_every": 100,
            "model.in_channels": canonical.shape[1],
            "model.out_channels": canonical.shape[1],
            **METHODS[self.method],
        }
        if volume:
            if sides[0] < 8:
                raise ConfigError(f"the volume has {sides[0]} planes: 3D training needs 8")
            fields["data.patch_depth"] = min(16, sides[0] // 8 * 8)
        return load_config("n2v-3d" if volume else "n2v-2d", [], fields)

    @property
    def data_file(self) -> Path:
        return self.run_dir / "data" / "layer.tif"

    def write_data(self) -> None:
        """The layer's data as the run's training file (memory-mapped by the data loader)."""
        from restorekit.io import write_stack

        write_stack(self.data_file, np.asarray(self.data))


def train_layer(request: TrainingRequest, stop: threading.Event | None = None) -> Path:
    """Train as ``request`` asks (blocking; ``stop`` ends it early with its last checkpoint,
    raising :class:`restorekit.engine.TrainingInterrupted`); returns the model file."""
    from restorekit.engine import train

    config = request.config()
    request.write_data()
    result = train(config, request.run_dir, command="restorekit napari: train", stop=stop)
    return Path(result.model_path)
