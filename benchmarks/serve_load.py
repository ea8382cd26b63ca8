"""Load test of ``restorekit serve`` on 127.0.0.1: N small-image jobs (upload, poll, download)
from C concurrent clients; none may be lost or failed. Reports p50/p99/max latency per request
(upload to downloaded result) and jobs per second, and writes ``results/serve_load.json``.

    python benchmarks/serve_load.py [--requests 1000] [--concurrency 8] [--workers 1]
        [--model n2v-bsd68] [--size 32]

The server runs in this process (a uvicorn thread, :func:`restorekit.serve.live.running`);
the clients are threads with their own HTTP connections (httpx).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def one_request(base: str, image: bytes, model: str) -> tuple[float, str, int]:
    """Upload, poll until finished, download: (seconds, final state, result bytes)."""
    import httpx

    start = time.perf_counter()
    with httpx.Client(base_url=base, timeout=120) as http:
        response = http.post(
            "/api/jobs", files={"files": ("x.png", image, "image/png")}, data={"model": model}
        )
        if response.status_code != 200:
            return time.perf_counter() - start, f"http {response.status_code}", 0
        job = response.json()["id"]
        while True:
            state = http.get(f"/api/jobs/{job}").json()["state"]
            if state in ("done", "failed", "cancelled"):
                break
            time.sleep(0.01)
        size = len(http.get(f"/api/jobs/{job}/result").content) if state == "done" else 0
        http.delete(f"/api/jobs/{job}")
    return time.perf_counter() - start, state, size


def load(base: str, requests: int, concurrency: int, image: bytes, model: str) -> dict:
    """``requests`` jobs from ``concurrency`` clients; the outcome and the latencies."""
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        outcomes = list(pool.map(lambda _: one_request(base, image, model), range(requests)))
    wall = time.perf_counter() - start
    seconds = sorted(o[0] for o in outcomes)
    failed = [o[1] for o in outcomes if o[1] != "done" or o[2] == 0]
    return {
        "requests": requests,
        "concurrency": concurrency,
        "completed": requests - len(failed),
        "lost_or_failed": len(failed),
        "failures": sorted(set(failed)),
        "p50_s": statistics.median(seconds),
        "p99_s": seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))],
        "max_s": seconds[-1],
        "wall_s": wall,
        "jobs_per_s": requests / wall,
    }


def small_png(size: int, grey: bool) -> bytes:
    from PIL import Image

    shape = (size, size) if grey else (size, size, 3)
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, shape, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="the server's job workers")
    parser.add_argument("--model", default="n2v-bsd68")
    parser.add_argument("--size", type=int, default=32, help="side of the square test image")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/serve_load.json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch
    from _common import environment, write_report

    from restorekit.serve.app import Settings
    from restorekit.serve.live import running

    with (
        tempfile.TemporaryDirectory() as folder,
        running(
            Settings(Path(folder), workers=args.workers, max_waiting=4 * args.concurrency)
        ) as base,
    ):
        one_request(base, small_png(args.size, True), args.model)  # load the model once
        result = load(base, args.requests, args.concurrency, small_png(args.size, True), args.model)
    image = f"{args.size}x{args.size} grey PNG"
    report = {"environment": environment(torch.device("cpu")), "model": args.model}
    report |= {"image": image, "workers": args.workers, **result}
    write_report(args.out, report)
    print(
        f"{result['requests']} requests at concurrency {result['concurrency']}: "
        f"{result['completed']} completed, {result['lost_or_failed']} lost or failed; "
        f"p50 {result['p50_s'] * 1000:.0f} ms, p99 {result['p99_s'] * 1000:.0f} ms, "
        f"{result['jobs_per_s']:.1f} jobs/s ({args.workers} worker(s), model {args.model})"
    )


if __name__ == "__main__":
    main()
