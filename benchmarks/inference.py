"""Inference speed and peak memory of each model: PyTorch eager, channels_last and ONNX Runtime.

For each shipped model (or --model NAME|PATH) and each of a 768x512 and a 4000x3000 noisy RGB
image, every backend runs ``denoise()`` on the uint8 image through the public models
(RestorationModel, OnnxModel), which run whole images that fit ``max_memory`` and tile larger
ones. Each configuration runs in a fresh subprocess that reports megapixels/s (median of
--repeats after --warmup calls) and its peak RSS growth over its state after loading. The report
names the machine and holds this run's own measured ceiling (a channels_last 3x3 convolution).

    python benchmarks/inference.py                        # full benchmark (long on a CPU)
    python benchmarks/inference.py --quick --threads 1    # seconds: only checks the script

``--record-zoo`` writes each measured shipped model's ``speed.json`` (its zoo folder): the
MP/s per backend on the 768x512 image (else the first size measured) and the faster of
PyTorch (channels_last) and ONNX Runtime, which ``--backend auto`` then takes for it.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from _common import (  # benchmarks/_common.py
    add_machine_arguments,
    add_timing_arguments,
    describe_machine,
    environment,
    interleaved,
    machine,
    main_or_exit,
    measure_ceiling,
    resolve_timing,
    write_report,
)

from restorekit.data import load_images
from restorekit.infer.model import load_model
from restorekit.infer.onnx_backend import OnnxModel
from restorekit.infer.onnx_export import export_onnx
from restorekit.infer.tiling import (
    DEFAULT_MAX_MEMORY,
    plan_tiles,
    round_up,
    tile_origins,
)
from restorekit.nets import build_net
from restorekit.nets.files import ModelDescriptor, save_model
from restorekit.units import parse_bytes
from restorekit.zoo import resolve_model, shipped_model, shipped_models

ROOT = Path(__file__).resolve().parents[1]
KODIM01 = ROOT.parent / "shared" / "data" / "Kodak24" / "kodim01.png"
BACKENDS = ("eager", "channels_last", "onnxruntime")
SIZES = {False: [(768, 512), (4000, 3000)], True: [(128, 96), (400, 300)]}  # width, height
QUICK_TILE, QUICK_OVERLAP = 256, 64  # --quick only: tile the 400x300 image
SIGMA = 25  # Gaussian noise added to the test images (0-255 scale)


def noisy_image(width: int, height: int) -> tuple[np.ndarray, str]:
    """H x W x 3 uint8 plus noise: kodim01 cropped when large enough, else smooth synthetic.

    Built one channel at a time in float32 so that the set-up's own memory peak stays low.
    """
    rng = np.random.default_rng(0)
    kodak = KODIM01.exists() and width <= 768 and height <= 512
    clean = load_images([KODIM01], 3)[0][0][:height, :width] if kodak else None
    y = np.linspace(0, height / max(width, height), height, dtype=np.float32)[:, None]
    x = np.linspace(0, width / max(width, height), width, dtype=np.float32)[None]
    image = np.empty((height, width, 3), np.uint8)
    for c, (a, b) in enumerate(((6, 2), (-3, 5), (4, 4))):
        base = clean[..., c].astype(np.float32) if kodak else np.sin(a * x + b * y) * 127.5 + 127.5
        noise = rng.standard_normal((height, width), dtype=np.float32) * SIGMA
        image[..., c] = np.clip(base + noise + 0.5, 0, 255)
    return image, (str(KODIM01) if kodak else "synthetic")


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak_rss() -> bool:
    """Lower the peak-RSS mark to the current RSS (Linux 4.0+), so that set-up transients
    (imports, image creation) cannot hide a smaller peak of the runs; False where refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child(job: dict) -> None:
    """Run one configuration and print its result as one JSON line (the parent reads it)."""
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    image, source = noisy_image(job["width"], job["height"])
    budget, overlap = job["max_memory"], job["overlap"]
    if job["backend"] == "onnxruntime":
        model = OnnxModel(job["onnx"], max_memory=budget, overlap=overlap, threads=job["threads"])
        multiple = model.size_multiple
    else:
        model = load_model(job["weights"], "cpu", max_memory=budget, overlap=overlap)
        multiple = model.descriptor.size_multiple
        if job["backend"] == "eager":
            model.channels_last = False
            model.net = model.net.to(memory_format=torch.contiguous_format)
    # The same plan as model.run() makes for this image (one 1 x 3 x H x W batch).
    shape = (1, 3, job["height"], job["width"])
    tile, _ = plan_tiles(
        shape, multiple, model.bytes_per_pixel, model.tile, model.max_memory, model.overlap
    )
    padded = [round_up(side, multiple) for side in shape[2:]]
    overlap = round_up(model.overlap, multiple)
    tiles = math.prod(len(tile_origins(n, min(tile, n), overlap, multiple)) for n in padded)
    reset = reset_peak_rss()
    baseline = max_rss_mib()

    apply = model.upscale if model.descriptor.task == "upscale" else model.denoise  # MP/s of input

    def run() -> None:
        for _ in range(job["steps"]):
            apply(image)

    for _ in range(job["warmup"]):
        apply(image)
    seconds = interleaved({"run": run}, job["repeats"], torch.device("cpu"))["run"]
    median = statistics.median(seconds)
    megapixels = job["steps"] * job["width"] * job["height"] / 1e6
    keys = ("model", "width", "height", "backend", "max_memory")
    result = {key: job[key] for key in keys} | {"overlap": overlap, "peak_reset": reset}
    result |= {"image": source, "tile": tile, "tiles": tiles, "tiled": tiles > 1}
    result |= {"seconds": seconds, "median_s": median, "megapixels_per_s": megapixels / median}
    result |= {"baseline_rss_mib": baseline, "peak_rss_mib": max_rss_mib() - baseline}
    print(json.dumps(result))


def run_child(job: dict) -> dict:
    """``job`` in a fresh Python process: its peak memory is its own."""
    command = [sys.executable, __file__, "--child", json.dumps(job)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{job['model']} {job['backend']} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def models_to_measure(names: list[str] | None, folder: Path) -> list[dict]:
    """--model names/paths, else the shipped models, else a freshly initialised U-Net."""
    if names:
        return [{"name": n, "weights": str(resolve_model(n)), "untrained": False} for n in names]
    shipped = shipped_models()
    if shipped:
        return [{"name": m.name, "weights": str(m.weights), "untrained": False} for m in shipped]
    torch.manual_seed(0)
    net = build_net("unet-n2n", features=48)
    path = folder / "unet-n2n-untrained.safetensors"
    descriptor = ModelDescriptor(
        arch="unet-n2n", arch_args={"features": 48}, size_multiple=net.size_multiple
    )
    save_model(path, net, descriptor)
    print("no shipped model and no --model: measuring an UNTRAINED unet-n2n (48 features)")
    return [{"name": "unet-n2n-48 (untrained)", "weights": str(path), "untrained": True}]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], conflict_handler="resolve"
    )
    parser.add_argument("--model", action="append", help="shipped name or model file (repeat)")
    parser.add_argument("--max-memory", help="tiling budget, e.g. 2GB (default: the library's)")
    parser.add_argument("--json", type=Path, help="default: benchmarks/results/inference.json")
    parser.add_argument("--quick", action="store_true", help="128x96 and 400x300, 1 repeat")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument(
        "--sizes", nargs="+", metavar="WxH", help="image sizes (default 768x512 4000x3000)"
    )
    parser.add_argument(
        "--record-zoo",
        action="store_true",
        help="write speed.json (fastest CPU backend) into each measured shipped model's folder",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: one configuration
    add_timing_arguments(parser)  # --threads (ONNX Runtime's too), --repeats; and, redefined:
    parser.add_argument("--steps", type=int, default=1, help="denoise() calls per timed repeat")
    parser.add_argument("--warmup", type=int, default=1, help="untimed denoise() calls first")
    add_machine_arguments(parser)
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))
    resolve_timing(args)
    env = environment(torch.device("cpu"), args.max_ghz)  # the machine; the ceiling, same threads
    env["ceiling"] = measure_ceiling(torch.device("cpu"), env["machine"], args.quick)
    sizes = SIZES[args.quick]
    if args.sizes:
        sizes = [tuple(int(v) for v in size.lower().split("x")) for size in args.sizes]
    name = "inference_quick.json" if args.quick else "inference.json"
    args.json = args.json or ROOT / "benchmarks" / "results" / name

    results, models = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for entry in models_to_measure(args.model, Path(tmp)):
            model = load_model(entry["weights"], device="cpu")
            exported = export_onnx(model, Path(tmp) / f"model{len(models)}.onnx")
            # --quick: overlap 64 and a budget for tiles of 256, so that 400x300 is tiled too
            # (otherwise the model's own overlap, from its measured reach)
            overlap = QUICK_OVERLAP if args.quick else None
            budget = DEFAULT_MAX_MEMORY
            if args.max_memory:
                budget = parse_bytes(args.max_memory)
            elif args.quick:
                budget = model.bytes_per_pixel * (QUICK_TILE + 0.5) ** 2
            entry |= {"onnx_max_abs_diff": exported.max_abs_diff, "max_memory": budget}
            entry |= {"bytes_per_pixel": model.bytes_per_pixel, "reach": model.reach}
            entry |= {"overlap": model.overlap if overlap is None else overlap}
            models.append(
                entry | {"weights": "temporary" if entry["untrained"] else entry["weights"]}
            )
            for width, height in sizes:
                for backend in args.backends:
                    job = {"model": entry["name"], "weights": entry["weights"]}
                    job |= {"onnx": str(exported.path), "backend": backend, "overlap": overlap}
                    job |= {"max_memory": budget}
                    job |= {"width": width, "height": height, "threads": args.threads}
                    job |= {key: getattr(args, key) for key in ("steps", "warmup", "repeats")}
                    results.append(run_child(job))
                    print(f"  {entry['name']} {width}x{height} {backend}: done", flush=True)

    fastest: dict[str, dict[str, str]] = {}
    for r in results:  # speed ratio against eager on the same model and image size
        key = (r["model"], r["width"], r["height"])
        same = [s for s in results if (s["model"], s["width"], s["height"]) == key]
        eager = next((s for s in same if s["backend"] == "eager"), None)  # not in --backends
        r["ratio_to_eager"] = eager["median_s"] / r["median_s"] if eager else float("nan")
        best = max(same, key=lambda s: s["megapixels_per_s"])
        fastest.setdefault(r["model"], {})[f"{r['width']}x{r['height']}"] = best["backend"]

    print(
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, CPU, "
        f"threads {args.threads or 'default'}, median of {args.repeats} after {args.warmup}"
    )
    print(describe_machine(env))
    print(
        f"{'model':26} {'size':>9} {'backend':14} {'tile':>5} {'tiles':>5} {'MP/s':>8} "
        f"{'peak RSS MiB':>13} {'x eager':>8}"
    )
    for r in results:
        print(
            f"{r['model']:26} {r['width']:>4}x{r['height']:<4} {r['backend']:14} {r['tile']:5} "
            f"{r['tiles']:5} {r['megapixels_per_s']:8.3f} {r['peak_rss_mib']:13.1f} "
            f"{r['ratio_to_eager']:8.3f}"
        )
    for r in results:
        if fastest[r["model"]][f"{r['width']}x{r['height']}"] == r["backend"]:
            print(
                f"fastest for {r['model']} at {r['width']}x{r['height']}: {r['backend']} "
                f"({r['megapixels_per_s']:.3f} MP/s, {r['ratio_to_eager']:.3f} x eager)"
            )

    settings = {key: getattr(args, key) for key in ("quick", "steps", "warmup", "repeats")}
    settings |= {"sizes": sizes, "backends": args.backends, "noise_sigma": SIGMA, "device": "cpu"}
    report = {**env, "settings": settings, "models": models, "results": results, "fastest": fastest}
    write_report(args.json, report)
    if args.record_zoo:
        record_zoo(results, args.threads, sizes)


def record_zoo(results: list[dict], threads: int | None, sizes: list[tuple[int, int]]) -> None:
    """Write ``speed.json`` for each shipped model measured on both PyTorch (channels_last) and
    ONNX Runtime: the figures at 768x512 (else the first size) and the faster backend."""
    width, height = (768, 512) if (768, 512) in sizes else sizes[0]
    for name in dict.fromkeys(r["model"] for r in results):
        zoo = shipped_model(name)
        rates = {
            r["backend"]: r["megapixels_per_s"]
            for r in results
            if (r["model"], r["width"], r["height"]) == (name, width, height)
        }
        if zoo is None or not {"channels_last", "onnxruntime"} <= set(rates):
            continue
        faster = "torch" if rates["channels_last"] > rates["onnxruntime"] else "onnxruntime"
        record = {"fastest_cpu_backend": faster, "image": f"{width}x{height}"}
        record |= {"megapixels_per_s": rates, "threads": threads or torch.get_num_threads()}
        record |= {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__}
        record |= {"processor": machine()["processor"]}
        record |= {"command": "python " + " ".join(sys.argv)}
        (zoo.folder / "speed.json").write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {zoo.folder / 'speed.json'}: --backend auto takes {faster}")


if __name__ == "__main__":
    main_or_exit(main)
