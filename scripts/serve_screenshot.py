"""The README's screenshot of ``restorekit serve``: a noisy photograph (scikit-image's
``coffee`` with Gaussian noise, sigma 25) denoised through the page by the model it starts with
(:data:`restorekit.zoo.DEFAULT_DENOISER`, the blind ``ne2ne-gauss5_50``), the
before/after slider at 50 %, taken with Playwright in Debian's Chromium.

    python scripts/serve_screenshot.py [--out docs/serve.jpg]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "serve.jpg")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    from skimage import data

    from restorekit.io import write_image
    from restorekit.serve.app import Settings
    from restorekit.serve.live import running
    from restorekit.zoo import DEFAULT_DENOISER

    clean = data.coffee()[:320, 64:576].astype(np.float64)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25, clean.shape) + 0.5, 0, 255)
    with tempfile.TemporaryDirectory() as folder, running(Settings(Path(folder))) as base:
        source = Path(folder) / "coffee_noisy.png"
        write_image(source, noisy.astype(np.uint8))
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1100, "height": 1000})
            page.goto(base + "/")
            page.wait_for_selector(f"#model option[value='{DEFAULT_DENOISER}']", state="attached")
            page.select_option("#model", DEFAULT_DENOISER)
            page.set_input_files("#files", str(source))
            page.click("#run")
            page.wait_for_selector(".job a.download", timeout=300_000)
            page.wait_for_function("document.getElementById('after').naturalWidth > 0")
            page.fill("#slider", "50")
            page.dispatch_event("#slider", "input")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), type="jpeg", quality=85)
            browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
