"""The app on a real HTTP server (127.0.0.1): a bounded load test, bad uploads in the middle of
good jobs, and the page driven in Debian's Chromium by Playwright."""

from __future__ import annotations

import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web app's extra: pip install 'restorekit[serve]'")

from serve_support import photo, png, user_models  # noqa: E402

from restorekit.serve.app import Settings
from restorekit.serve.live import running

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from serve_load import load, one_request, small_png  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def server(tmp_path, tiny_model_files):
    user_models(tmp_path, tiny_model_files)
    settings = Settings(tmp_path, workers=2, max_waiting=64, max_pixels=1_000_000,
                        max_upload_bytes=2_000_000)  # fmt: skip
    with running(settings) as base:
        yield base


def test_load_many_small_jobs_from_8_clients_none_lost(server):
    """A bounded run of the load test (benchmarks/serve_load.py runs the full 1,000)."""
    result = load(server, 160, 8, small_png(32, False), "tiny-denoiser")
    assert result["completed"] == 160 and result["lost_or_failed"] == 0, result
    assert result["p99_s"] < 60


def test_bad_uploads_get_their_4xx_while_good_jobs_complete(server):
    import httpx

    good = png(photo(5))
    bad = {
        "bomb.png": (png(np.zeros((1500, 1500), np.uint8)), 413),
        "cut.png": (good[: len(good) // 3], 422),
        "huge.png": (b"\x89PNG" + b"\0" * 2_500_000, 413),
    }

    def bad_upload(i: int) -> tuple[str, int, int]:
        name = list(bad)[i % 3]
        with httpx.Client(base_url=server, timeout=60) as http:
            response = http.post("/api/jobs", files={"files": (name, bad[name][0], "image/png")},
                                 data={"model": "tiny-denoiser"})  # fmt: skip
            return name, response.status_code, bad[name][1]

    with ThreadPoolExecutor(8) as pool:
        goods = [pool.submit(one_request, server, good, "tiny-denoiser") for _ in range(6)]
        bads = list(pool.map(bad_upload, range(20)))
        outcomes = [g.result() for g in goods]
    assert all(status == wanted for _, status, wanted in bads), bads
    assert all(state == "done" and size > 0 for _, state, size in outcomes), outcomes


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed: apt-get install chromium")
@pytest.mark.parametrize(
    ("model", "command"), [("tiny-denoiser", "denoise"), ("tiny-x2", "upscale")]
)
def test_the_page_in_a_browser_restores_compares_and_downloads(
    server, tmp_path, tiny_model_files, model, command
):
    """Upload through the page, watch the job finish, move the before/after slider, zoom 1:1,
    download; the downloaded bytes equal `restorekit denoise` / `upscale` of the same file."""
    playwright = pytest.importorskip("playwright.sync_api")
    from click.testing import CliRunner

    from restorekit.cli import main
    from restorekit.io import write_image

    source = tmp_path / "upload" / "street.png"
    write_image(source, photo(6, (72, 96, 3)))
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(server + "/")
        page.wait_for_selector(f"#model option[value='{model}']", state="attached")
        assert page.eval_on_selector("#model", "e => e.value") == "ne2ne-gauss5_50"  # the default
        page.select_option("#model", model)
        assert page.is_visible("#scale-box") == (command == "upscale")
        page.set_input_files("#files", str(source))
        page.click("#run")
        page.wait_for_selector(".job a.download", timeout=60_000)
        assert page.inner_text(".job .state").startswith("done")
        page.wait_for_function("document.getElementById('after').naturalWidth > 0")
        width = page.eval_on_selector("#after", "e => e.naturalWidth")
        assert width == 96 * (2 if command == "upscale" else 1)
        page.fill("#slider", "80")
        page.dispatch_event("#slider", "input")
        clip = page.eval_on_selector("#after", "e => e.style.clipPath")
        assert clip == "inset(0px 0px 0px 80%)"
        page.click("#one-to-one")
        assert page.inner_text("#zoom-level") == "100 %"
        with page.expect_download() as download:
            page.click(".job a.download")
        saved = tmp_path / "downloaded.png"
        download.value.save_as(saved)
        browser.close()
    out = tmp_path / "cli"
    key = "denoise" if command == "denoise" else "upscale"
    result = CliRunner().invoke(
        main, [command, str(source), "-o", str(out), "--model", str(tiny_model_files[key])]
    )
    assert result.exit_code == 0, result.output
    assert saved.read_bytes() == (out / "street.png").read_bytes()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed: apt-get install chromium")
def test_the_page_trains_on_uploads_then_denoises_with_the_new_model(server, tmp_path):
    """The training tab: noisy uploads, Neighbor2Neighbor for a short time budget, a live loss
    curve, then the new model in the first tab's list, applied to an upload."""
    playwright = pytest.importorskip("playwright.sync_api")
    from restorekit.io import write_image

    rng = np.random.default_rng(7)
    clean = np.tile(np.linspace(30, 220, 128), (128, 1))[..., None].repeat(3, 2)
    paths = []
    for i in range(2):
        paths.append(tmp_path / "noisy" / f"n{i}.png")
        write_image(
            paths[-1], np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
        )
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.goto(server + "/")
        page.click("#tab-train")
        page.set_input_files("#train-files", [str(path) for path in paths])
        page.select_option("#method", "ne2ne")
        page.fill("#budget", "12")
        page.fill("#train-name", "from-the-page")
        page.click("#train-run")
        page.wait_for_function(
            "document.getElementById('train-state').textContent.startsWith('done')",
            timeout=180_000,
        )
        assert "loss points" in page.inner_text("#train-state")
        page.wait_for_selector("#model option[value='from-the-page']", state="attached")
        page.click("#tab-restore")
        assert page.eval_on_selector("#model", "e => e.value") == "from-the-page"
        page.set_input_files("#files", str(paths[0]))
        page.click("#run")
        page.wait_for_selector(".job a.download", timeout=60_000)
        browser.close()
