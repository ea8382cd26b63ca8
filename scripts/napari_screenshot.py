"""The README's screenshot of the napari plugin: scikit-image's ``cell`` micrograph with photon
(Poisson, 20 photons at the brightest pixel) and read (Gaussian, 2 e-) noise in 16 bits, Noise2Void
trained on it for 45 s by the Train widget, the result beside the input (grid view).

Needs a display with OpenGL (napari's canvas); headless:

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" \\
        python scripts/napari_screenshot.py [--out docs/napari.jpg]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONTRAST = (0, 2200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "napari.jpg")
    args = parser.parse_args()
    import napari
    from PIL import Image
    from qtpy.QtCore import QTimer
    from skimage import data

    from restorekit.napari_plugin.widgets import DenoiseWidget, TrainWidget

    clean = data.cell().astype(np.float64) / 255 * 20
    rng = np.random.default_rng(0)
    noisy = np.clip((rng.poisson(clean) + rng.normal(0, 2, clean.shape)) * 100, 0, 65535)
    viewer = napari.Viewer(title="restorekit in napari")
    viewer.window._qt_window.resize(1400, 800)
    layer = viewer.add_image(
        noisy.astype(np.uint16), name="cell (noisy)", scale=(0.5, 0.5), contrast_limits=CONTRAST
    )
    denoise, train = DenoiseWidget(viewer), TrainWidget(viewer)
    viewer.window.add_dock_widget(denoise, name="restorekit: Denoise", area="right")
    viewer.window.add_dock_widget(train, name="restorekit: Train Noise2Void", area="right")
    denoise.layer.value = train.layer.value = layer
    denoise.model.value = "n2v-bsd68"
    train.minutes.value = 0.75
    train.start()

    def wait() -> None:
        if train.result is None:
            QTimer.singleShot(1000, wait)
            return
        train.result.contrast_limits = CONTRAST
        viewer.grid.enabled = True
        viewer.reset_view()
        QTimer.singleShot(1500, shoot)

    def shoot() -> None:
        picture = viewer.screenshot(canvas_only=False)
        Image.fromarray(picture).convert("RGB").save(args.out, quality=85, optimize=True)
        print(f"wrote {args.out}")
        viewer.close()

    QTimer.singleShot(1000, wait)
    napari.run()


if __name__ == "__main__":
    main()
