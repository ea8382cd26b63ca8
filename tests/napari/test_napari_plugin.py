"""The napari widgets, headless (Qt's offscreen platform, napari's viewer model: the full
viewer's canvas needs OpenGL): denoise a layer (progress, cancel, scale kept) and train
Noise2Void on a layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")

from conftest import write_tiny_n2v  # noqa: E402
from napari.components import ViewerModel  # noqa: E402

import restorekit  # noqa: E402
from restorekit.errors import ConfigError  # noqa: E402
from restorekit.napari_plugin.layers import TrainingRequest, layer_axes  # noqa: E402

WAIT_MS = 120_000


def test_layer_axes_follow_napari_conventions():
    assert layer_axes(2) == "YX"
    assert layer_axes(3, rgb=True) == "YXC"
    assert layer_axes(3) == "SYX"
    assert layer_axes(3, volume=True) == "ZYX"
    assert layer_axes(4, volume=True) == "SZYX"
    assert layer_axes(4) == "STYX"
    with pytest.raises(ConfigError, match="volume"):
        layer_axes(2, volume=True)


def test_the_manifest_declares_both_widgets():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("restorekit")
    titles = {w.display_name for w in manifest.contributions.widgets}
    assert titles == {"Denoise", "Train Noise2Void"}


def _n2v_file(folder: Path) -> Path:
    return write_tiny_n2v(folder / "n2v.safetensors")


@pytest.fixture
def noisy_stack() -> np.ndarray:
    rng = np.random.default_rng(0)
    ramp = np.linspace(60, 190, 96)
    return np.clip(ramp + rng.normal(0, 20, (6, 80, 96)), 0, 255).astype(np.uint8)


def test_the_denoise_widget_adds_the_result_with_the_layers_scale(qtbot, tmp_path, noisy_stack):
    from restorekit.napari_plugin.widgets import MODEL_FILE, DenoiseWidget
    from restorekit.nets.files import read_descriptor
    from restorekit.zoo import shipped_models

    viewer = ViewerModel()
    layer = viewer.add_image(noisy_stack, name="cells", scale=(2.0, 0.5, 0.5))
    widget = DenoiseWidget(viewer)
    denoisers = {m.name for m in shipped_models() if read_descriptor(m.weights).task == "denoise"}
    assert {"n2v-bsd68", "ne2ne-gauss25"} <= denoisers and not any("edsr" in n for n in denoisers)
    assert set(widget.model.choices) == denoisers | {MODEL_FILE}  # the shipped denoisers
    assert widget.model.value == "ne2ne-gauss5_50"  # the blind model, as `restorekit denoise`
    qtbot.addWidget(widget.native)
    model_file = _n2v_file(tmp_path)
    widget.layer.value = layer
    widget.model.value = MODEL_FILE
    widget.model_file.value = model_file
    seen: list[float] = []
    widget.start()
    widget.worker.yielded.connect(seen.append)
    qtbot.waitUntil(lambda: widget.result is not None, timeout=WAIT_MS)
    result = widget.result
    assert result.name == "cells denoised" and tuple(result.scale) == (2.0, 0.5, 0.5)
    expected = restorekit.load_model(model_file).denoise_stack(noisy_stack, "SYX")
    np.testing.assert_array_equal(result.data, expected)
    assert seen and seen == sorted(seen) and widget.progress.value == 1000
    assert widget.run_button.enabled and not widget.cancel_button.enabled


def test_the_denoise_widget_cancels_between_blocks(qtbot, noisy_stack):
    from restorekit.napari_plugin.widgets import DenoiseWidget

    viewer = ViewerModel()
    layer = viewer.add_image(np.repeat(noisy_stack, 8, axis=0), name="long")
    widget = DenoiseWidget(viewer)
    widget.layer.value = layer
    widget.model.value = "n2v-bsd68"
    widget.start()
    widget.worker.yielded.connect(lambda _: widget.cancel())
    qtbot.waitUntil(lambda: widget.status.value == "cancelled", timeout=WAIT_MS)
    assert widget.result is None and len(viewer.layers) == 1
    assert widget.run_button.enabled


def test_the_train_widget_trains_noise2void_and_denoises_the_layer(qtbot, noisy_stack):
    from restorekit.napari_plugin.widgets import TrainWidget

    viewer = ViewerModel()
    layer = viewer.add_image(noisy_stack, name="cells", scale=(1.0, 0.3, 0.3))
    widget = TrainWidget(viewer)
    widget.layer.value = layer
    widget.method.value = "N2V2"
    widget.minutes.value = 0.25
    widget.start()
    qtbot.waitUntil(lambda: widget.result is not None, timeout=WAIT_MS)
    assert widget.model_path is not None and widget.model_path.is_file()
    assert widget.result.name == "cells N2V2" and tuple(widget.result.scale) == (1.0, 0.3, 0.3)
    assert widget.result.data.shape == noisy_stack.shape
    assert len(widget.plot.points) >= 2  # the live loss plot read the run's log
    assert restorekit.load_model(widget.model_path).descriptor.arch_args["blurpool"] is True


def test_a_training_request_builds_the_presets_config(tmp_path, noisy_stack):
    config = TrainingRequest(noisy_stack, "SYX", "structN2V (horizontal stripes)", 2.0).config()
    assert config.method.struct_mask == [[1, 1, 1, 1, 1]]
    assert config.train.time_budget == 120 and config.data.axes == "SYX"
    deep = np.repeat(noisy_stack, 2, axis=0)[None]  # 12 planes
    volume = TrainingRequest(deep, "SZYX", run_dir=tmp_path).config()
    assert volume.model.dims == 3 and volume.data.patch_depth == 8
    with pytest.raises(ConfigError, match="8"):
        TrainingRequest(noisy_stack[None], "SZYX").config()


@pytest.mark.parametrize("native", [True, False])
def test_training_takes_bf16_only_where_it_is_native_and_for_images(
    monkeypatch, noisy_stack, native
):
    from restorekit import devices

    monkeypatch.setattr(devices, "bf16_is_native", lambda device: native)
    image = TrainingRequest(noisy_stack, "SYX").config()
    assert image.train.precision == ("bf16" if native else "fp32")
    volume = TrainingRequest(np.repeat(noisy_stack, 2, axis=0)[None], "SZYX").config()
    assert volume.train.precision == "fp32"  # bf16 3D convolutions are not measured


def test_the_denoise_widget_runs_a_3d_model_on_a_volume(qtbot, tmp_path, noisy_stack):
    from restorekit.napari_plugin.widgets import MODEL_FILE, DenoiseWidget

    viewer = ViewerModel()
    volume = np.repeat(noisy_stack, 2, axis=0)  # 12 planes
    layer = viewer.add_image(volume, name="volume", scale=(1.5, 0.5, 0.5))
    widget = DenoiseWidget(viewer)
    model_file = write_tiny_n2v(tmp_path / "n2v3d.safetensors", dims=3)
    widget.layer.value = layer
    widget.model.value = MODEL_FILE
    widget.model_file.value = model_file
    widget.volume.value = True
    widget.start()
    qtbot.waitUntil(lambda: widget.result is not None, timeout=WAIT_MS)
    expected = restorekit.load_model(model_file).denoise_stack(volume, "ZYX")
    np.testing.assert_array_equal(widget.result.data, expected)
    assert tuple(widget.result.scale) == (1.5, 0.5, 0.5)
