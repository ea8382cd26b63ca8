"""The napari dock widgets: denoise a layer with any model, train Noise2Void on a layer.

Both run their work in a napari worker thread, so the viewer stays responsive: denoising yields
after each block of rows (progress bar; Cancel stops it there), training polls its run's log once
a second (progress from the time budget, a live loss plot; Stop ends it with its last
checkpoint). Results are new layers with the source layer's scale, translation and metadata.
The logic lives in :mod:`restorekit.napari_plugin.layers`; this module is the Qt side only.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from magicgui.types import FileDialogMode
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
)
from napari.layers import Image
from napari.qt.threading import create_worker
from qtpy.QtCore import QPointF, QTimer
from qtpy.QtGui import QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

from restorekit.napari_plugin.layers import (
    METHODS,
    TrainingRequest,
    denoise_blocks,
    denoise_layer,
    layer_axes,
    train_layer,
)

MODEL_FILE = "model file..."


def _image_layers(widget: Any) -> list[Image]:
    viewer = getattr(widget, "_viewer", None)
    return [layer for layer in viewer.layers if isinstance(layer, Image)] if viewer else []


def _add_result(viewer: Any, source: Image, data: Any, suffix: str) -> Image:
    """A new image layer beside ``source`` with its scale, translation and metadata."""
    return viewer.add_image(
        data,
        name=f"{source.name} {suffix}",
        scale=source.scale,
        translate=source.translate,
        metadata=dict(source.metadata),
        rgb=source.rgb,
    )


class DenoiseWidget(Container):
    """Denoise the chosen image layer with a shipped model, a model file or a run folder."""

    def __init__(self, viewer: Any) -> None:
        from restorekit.descriptor import read_descriptor
        from restorekit.zoo import DEFAULT_DENOISER, shipped_models

        self._viewer = viewer
        self.layer = ComboBox(label="layer", choices=lambda _: _image_layers(self))
        names = [m.name for m in shipped_models() if read_descriptor(m.weights).task == "denoise"]
        start = DEFAULT_DENOISER if DEFAULT_DENOISER in names else names[0]
        self.model = ComboBox(label="model", choices=[*names, MODEL_FILE], value=start)
        self.model_file = FileEdit(label="file", mode=FileDialogMode.EXISTING_FILE, visible=False)
        self.volume = CheckBox(text="3D model: Z is the axis before Y, X", value=False)
        self.ensemble = CheckBox(text="8-pass ensemble (slower, slightly better)")
        self.run_button = PushButton(text="Denoise")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1000, label="progress")
        self.status = Label(value="")
        super().__init__(
            widgets=[
                self.layer,
                self.model,
                self.model_file,
                self.volume,
                self.ensemble,
                self.run_button,
                self.cancel_button,
                self.progress,
                self.status,
            ]
        )
        self.model.changed.connect(lambda v: setattr(self.model_file, "visible", v == MODEL_FILE))
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        viewer.layers.events.inserted.connect(lambda _: self.layer.reset_choices())
        viewer.layers.events.removed.connect(lambda _: self.layer.reset_choices())
        self.worker: Any = None
        self.result: Image | None = None

    def model_source(self) -> str:
        return str(self.model_file.value) if self.model.value == MODEL_FILE else self.model.value

    def start(self) -> None:
        source = self.layer.value
        if source is None:
            self.status.value = "no image layer"
            return
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.progress.value = 0
        self.status.value = f"denoising {source.name}..."
        self.worker = create_worker(self._work, source, self.model_source())
        self.worker.yielded.connect(self._progress)
        self.worker.returned.connect(lambda data: self._done(source, data))
        self.worker.errored.connect(self._failed)
        self.worker.aborted.connect(self._cancelled)
        self.worker.start()

    def _work(self, source: Image, model_name: str) -> Any:
        import restorekit

        model = restorekit.load_model(model_name)
        axes = layer_axes(source.data.ndim, source.rgb, self.volume.value)
        for fraction, result in denoise_blocks(model, source.data, axes, self.ensemble.value):
            if result is not None:
                return result
            yield fraction
        return None

    def _progress(self, fraction: float) -> None:
        self.progress.value = round(1000 * fraction)

    def _done(self, source: Image, data: Any) -> None:
        self.result = _add_result(self._viewer, source, data, "denoised")
        self.progress.value = 1000
        self.status.value = f"done: {self.result.name}"
        self._idle()

    def _failed(self, error: Exception) -> None:
        self.status.value = f"error: {error}"
        self._idle()

    def _cancelled(self) -> None:
        self.status.value = "cancelled"
        self._idle()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.quit()

    def _idle(self) -> None:
        self.run_button.enabled, self.cancel_button.enabled = True, False


class LossPlot(QWidget):
    """The training loss against steps, drawn as a line (no plotting library needed)."""

    def __init__(self) -> None:
        super().__init__()
        self.points: list[tuple[int, float]] = []
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_points(self, points: list[tuple[int, float]]) -> None:
        self.points = points
        self.update()

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().base())
        if len(self.points) < 2:
            painter.drawText(self.rect().adjusted(6, 6, 0, 0), 0, "loss: waiting for steps")
            return
        steps = [p[0] for p in self.points]
        losses = [p[1] for p in self.points]
        low, high = min(losses), max(losses)
        width, height = self.width() - 12, self.height() - 24
        span_x, span_y = max(steps[-1] - steps[0], 1), max(high - low, 1e-12)
        line = [
            QPointF(6 + width * (s - steps[0]) / span_x, 6 + height * (1 - (v - low) / span_y))
            for s, v in self.points
        ]
        painter.setPen(QPen(self.palette().text().color(), 1.5))
        painter.drawPolyline(QPolygonF(line))
        painter.drawText(6, self.height() - 4, f"loss {losses[-1]:.4g} at step {steps[-1]}")


class TrainWidget(Container):
    """Train Noise2Void / N2V2 / structN2V on the chosen layer for a time budget, then denoise
    the layer with the result."""

    def __init__(self, viewer: Any) -> None:
        self._viewer = viewer
        self.layer = ComboBox(label="layer", choices=lambda _: _image_layers(self))
        self.method = ComboBox(label="method", choices=list(METHODS), value="Noise2Void")
        self.volume = CheckBox(text="3D: Z is the axis before Y, X", value=False)
        self.minutes = FloatSpinBox(label="minutes", value=5.0, min=0.1, max=24 * 60, step=0.5)
        self.run_button = PushButton(text="Train")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1000, label="progress")
        self.status = Label(value="")
        self.plot = LossPlot()
        super().__init__(
            widgets=[
                self.layer,
                self.method,
                self.volume,
                self.minutes,
                self.run_button,
                self.stop_button,
                self.progress,
                self.status,
            ]
        )
        self.native.layout().addWidget(self.plot)
        self.run_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        viewer.layers.events.inserted.connect(lambda _: self.layer.reset_choices())
        viewer.layers.events.removed.connect(lambda _: self.layer.reset_choices())
        self.timer = QTimer()
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self._poll)
        self.stop_event = threading.Event()
        self.request: TrainingRequest | None = None
        self.worker: Any = None
        self.model_path: Path | None = None
        self.result: Image | None = None
        self.run_root = Path(tempfile.mkdtemp(prefix="restorekit-napari-"))
        self.started = 0.0

    def start(self) -> None:
        source = self.layer.value
        if source is None:
            self.status.value = "no image layer"
            return
        axes = layer_axes(source.data.ndim, source.rgb, self.volume.value)
        run_dir = self.run_root / f"run{len(list(self.run_root.iterdir())) + 1}"
        self.request = TrainingRequest(
            source.data, axes, self.method.value, self.minutes.value, run_dir=run_dir
        )
        self.stop_event.clear()
        self.run_button.enabled, self.stop_button.enabled = False, True
        self.status.value = f"training {self.method.value} on {source.name} ({axes})..."
        self.worker = create_worker(_train_and_apply, self.request, self.stop_event)
        self.worker.returned.connect(lambda done: self._trained(source, *done))
        self.worker.errored.connect(self._failed)
        self.started = time.monotonic()
        self.worker.start()
        self.timer.start()

    def _poll(self) -> None:
        from restorekit.engine.logger import read_loss_curve

        if self.request is None:
            return
        self.plot.set_points(read_loss_curve(self.request.run_dir / "train.log"))
        elapsed = time.monotonic() - self.started
        self.progress.value = min(999, round(1000 * elapsed / (self.request.minutes * 60)))

    def _trained(self, source: Image, path: Path, result: Any) -> None:
        self.timer.stop()
        self._poll()
        self.model_path = path
        self.result = _add_result(self._viewer, source, result, self.method.value)
        self.progress.value = 1000
        self.status.value = f"done: model {path}"
        self._idle()

    def _failed(self, error: Exception) -> None:
        self.timer.stop()
        self.status.value = f"stopped: {error}"
        self._idle()

    def stop(self) -> None:
        self.stop_event.set()

    def _idle(self) -> None:
        self.run_button.enabled, self.stop_button.enabled = True, False


def _train_and_apply(request: TrainingRequest, stop: threading.Event) -> tuple[Path, Any]:
    """Train (in the worker thread), then denoise the training data with the new model."""
    import restorekit

    path = train_layer(request, stop)
    return path, denoise_layer(restorekit.load_model(path), request.data, request.axes)
