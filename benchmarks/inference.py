"""Inference speed, whole-process memory and figure change of each model, per backend x precision.

For each shipped model (or --model NAME|PATH) and each image size (768x512 and 4000x3000 by
default; --sizes 12000x9000 for the very large run), every path — PyTorch fp32 (channels_last,
the reference of the ratios), PyTorch bf16, ONNX Runtime fp32 and ONNX Runtime int8 (static
quantisation calibrated on BSD200_train crops, never on test images) — restores a noisy PNG
file (RGB; grey for grey models) into a PNG file as ``restorekit denoise`` / ``upscale`` do
(:func:`restorekit.infer.files.restore_file`: streamed, ``--max-memory`` bounding the whole
process). Each configuration runs in a fresh subprocess that reports megapixels/s of input
(median of --repeats after --warmup runs) and the peak resident memory of its whole process
(``ru_maxrss``: the runtime, the model, the decoded input, the tiles and the writer).

The figure change per path: the model's evaluation on a benchmark set (denoisers: Kodak24 (RGB)
or BSD68 (grey) at their trained noise, one draw per image, seed 0; upscalers: Set14 on the Y
channel at their scale), PSNR on that path minus PSNR on PyTorch fp32.

    python benchmarks/inference.py                        # full benchmark (long on a CPU)
    python benchmarks/inference.py --quick --threads 1    # seconds: only checks the script

``--record-zoo`` writes each measured shipped model's ``speed.json`` (MP/s per size and path)
and ``precision.json`` (figure change per path), which ``--backend auto --precision auto``
follow (:mod:`restorekit.infer.paths`).
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
import time
from pathlib import Path
from unittest import mock

import numpy as np
import onnxruntime
import torch
from _common import (  # benchmarks/_common.py
    add_machine_arguments,
    add_timing_arguments,
    describe_machine,
    environment,
    machine,
    main_or_exit,
    measure_ceiling,
    resolve_timing,
    write_report,
)

from restorekit.data import load_images
from restorekit.degrade import parse_noise
from restorekit.degrade.downscale import make_lr, mod_crop
from restorekit.evaluation import evaluate_denoising, evaluate_upscaling
from restorekit.infer import predict
from restorekit.infer.files import FileOptions, restore_file
from restorekit.infer.model import load_model
from restorekit.infer.onnx_backend import OnnxModel
from restorekit.infer.onnx_export import export_onnx
from restorekit.infer.predict import cpu_has_native_bf16
from restorekit.infer.process_memory import DEFAULT_PROCESS_MEMORY
from restorekit.io import list_images, to_uint8, write_image
from restorekit.nets import build_net
from restorekit.nets.files import ModelDescriptor, save_model
from restorekit.units import parse_bytes
from restorekit.zoo import resolve_model, shipped_model, shipped_models

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
KODIM01 = DATA / "Kodak24" / "kodim01.png"
CALIBRATION = DATA / "BSD200_train"  # training images: int8 calibration never sees a test image
CALIBRATION_GREY = DATA / "Train400"  # grey training images (180 x 180) for grey models
REFERENCE = "torch-fp32"
PATHS = ("torch-fp32", "torch-bf16", "onnxruntime-fp32", "onnxruntime-int8")
SIZES = {False: [(768, 512), (4000, 3000)], True: [(128, 96), (400, 300)]}  # width, height
SIGMA = 25  # Gaussian noise added to the test images (0-255 scale)
CALIBRATION_CROPS, CALIBRATION_SIDE = 16, 128


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


def open_path(job: dict, emulated_bf16: bool = False):  # noqa: ANN201 - an ArrayModel
    """The model of ``job`` on its path. ``emulated_bf16``: PyTorch bf16 also on a CPU without
    native bf16, which the library refuses as slower than fp32 (for figures only: values are
    rounded to bfloat16 alike; the speed would mislead)."""
    backend, precision = job["path"].rsplit("-", 1)
    if backend == "onnxruntime":
        return OnnxModel(job["onnx"][precision], threads=job["threads"])
    if emulated_bf16 and precision == "bf16":
        with mock.patch.object(predict, "cpu_has_native_bf16", return_value=True):
            return load_model(job["weights"], "cpu", precision=precision)
    return load_model(job["weights"], "cpu", precision=precision)


def child(job: dict) -> None:
    """Run one configuration file to file; print its result as one JSON line."""
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    model = open_path(job)
    source, target = Path(job["image"]), Path(job["out"])
    options = FileOptions(memory_limit=job["max_memory"])
    tiles = [1]
    model.tile_progress = lambda done, total: tiles.__setitem__(0, total)
    for _ in range(job["warmup"]):
        restore_file(model, source, target, options)
    seconds = []
    for _ in range(job["repeats"]):
        start = time.perf_counter()
        restore_file(model, source, target, options)
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    keys = ("model", "width", "height", "path", "max_memory")
    result = {key: job[key] for key in keys} | {"tiles": tiles[0], "seconds": seconds}
    result |= {"median_s": median, "megapixels_per_s": job["width"] * job["height"] / 1e6 / median}
    result |= {"peak_rss_mib": peak_rss_mib()}
    print(json.dumps(result))


def peak_rss_mib() -> float:
    """This process's peak resident memory since it started (VmHWM: the memory of its own
    image; ``ru_maxrss`` would include the parent's memory at the fork, kept across exec)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(job: dict) -> dict:
    """``job`` in a fresh Python process: its peak memory is its own."""
    command = [sys.executable, __file__, "--child", json.dumps(job)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{job['model']} {job['path']} failed:\n{done.stderr}")
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


def calibration_batches(descriptor: ModelDescriptor, quick: bool) -> list[np.ndarray]:
    """1 x C x H x W float32 network inputs cut from training images (BSD200_train, Train400
    for grey models): noisy as the model's noise for denoisers, bicubic-downscaled for
    upscalers."""
    folder = CALIBRATION if descriptor.in_channels == 3 else CALIBRATION_GREY
    paths = list_images(folder)[: 2 if quick else CALIBRATION_CROPS]
    noise = parse_noise(descriptor.noise) if descriptor.noise else None
    batches = []
    for index, image in enumerate(load_images(paths, descriptor.in_channels)[0]):
        side = CALIBRATION_SIDE * descriptor.scale
        crop = mod_crop(image[:side, :side], descriptor.scale)
        crop = crop.transpose(2, 0, 1).astype(np.float32) / 255
        if descriptor.task == "upscale":
            crop = make_lr(crop.transpose(1, 2, 0), descriptor.scale).transpose(2, 0, 1)
        elif noise is not None:
            crop = noise.sample_numpy(crop, np.random.default_rng([index, 1]))
        batches.append(np.ascontiguousarray(crop[None], dtype=np.float32))
    return batches


def quantize_int8(fp32_path: Path, target: Path, batches: list[np.ndarray]) -> Path:
    """ONNX Runtime static int8 quantisation (QDQ, per-channel weights) of ``fp32_path``,
    calibrated on ``batches``, the first and last convolutions left in float (common practice:
    edsr-baseline-x2's stage-5 weights lost 2.23 dB on six Set14 images with every convolution
    in int8, 0.07 with the head convolution in float, 0.03 with head and tail; percentile
    calibration did not help: 2.35); the restorekit metadata copied over."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    name = onnxruntime.InferenceSession(str(fp32_path)).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(batches)

        def get_next(self) -> dict | None:
            batch = next(self.items, None)
            return None if batch is None else {name: batch}

    prepared = target.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
    convolutions = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "Conv"]
    quantize_static(
        str(prepared),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=[convolutions[0], convolutions[-1]],  # the graph is in order
    )
    graph, original = onnx.load(str(target)), onnx.load(str(fp32_path))
    onnx.helper.set_model_props(graph, {p.key: p.value for p in original.metadata_props})
    onnx.save(graph, str(target))
    return target


def figure(model, descriptor: ModelDescriptor, quick: bool) -> tuple[float, str]:  # noqa: ANN001
    """The model's PSNR on its benchmark set (see the module docstring) and the set in words."""
    if descriptor.task == "upscale":
        paths = list_images(DATA / "Set14")[: 2 if quick else None]
        images = load_images(paths, 3)[0]
        scale = descriptor.scale

        def upscale(lr: np.ndarray) -> np.ndarray:  # C x h x w float32 -> C x sh x sw
            return model.upscale(lr.transpose(1, 2, 0), check=False).transpose(2, 0, 1)

        report = evaluate_upscaling(upscale, images, [p.name for p in paths], scale)
        return report.psnr, f"Set14 x{scale} (Y channel, {len(paths)} images)"
    folder = "Kodak24" if descriptor.in_channels == 3 else "BSD68"
    paths = list_images(DATA / folder)[: 2 if quick else None]
    images = load_images(paths, descriptor.in_channels)[0]
    noise = parse_noise(descriptor.noise or "gauss:25")
    images = [to_uint8(image) for image in images]
    report = evaluate_denoising(
        lambda noisy: model.predict(noisy[None])[0], images, [p.name for p in paths], noise, 1, 0
    )
    return report.psnr, f"{folder} {descriptor.noise} ({len(paths)} images x 1 draw)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], conflict_handler="resolve"
    )
    parser.add_argument("--model", action="append", help="shipped name or model file (repeat)")
    parser.add_argument(
        "--max-memory", help="whole-process bound, e.g. 2.5GB (default: the command line's)"
    )
    parser.add_argument("--json", type=Path, help="default: benchmarks/results/inference.json")
    parser.add_argument("--quick", action="store_true", help="128x96 and 400x300, 1 repeat")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument(
        "--sizes", nargs="+", metavar="WxH", help="image sizes (default 768x512 4000x3000)"
    )
    parser.add_argument(
        "--int8-sizes",
        nargs="*",
        metavar="WxH",
        help="sizes at which ONNX Runtime int8 is timed (default: the smallest; its figures "
        "are measured anyway)",
    )
    parser.add_argument(
        "--large-paths",
        nargs="+",
        choices=PATHS,
        help="paths timed on images above 4 MP (default: all of --paths but int8)",
    )
    parser.add_argument("--no-figures", action="store_true", help="speed and memory only")
    parser.add_argument(
        "--record-zoo",
        action="store_true",
        help="write speed.json and precision.json into each measured shipped model's folder",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: one configuration
    add_timing_arguments(parser)  # --threads (ONNX Runtime's too), --repeats; and, redefined:
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first")
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
    int8_sizes = [min(sizes, key=lambda s: s[0] * s[1])]
    if args.int8_sizes is not None:
        int8_sizes = [tuple(int(v) for v in size.lower().split("x")) for size in args.int8_sizes]
    paths = list(args.paths)  # timed
    figure_paths = list(paths)  # evaluated: emulated bf16 rounds alike, slowly
    if "torch-bf16" in paths and not cpu_has_native_bf16():
        paths.remove("torch-bf16")
        print("this CPU has no native bf16: PyTorch bf16 is evaluated, not timed")
    name = "inference_quick.json" if args.quick else "inference.json"
    args.json = args.json or ROOT / "benchmarks" / "results" / name
    limit = parse_bytes(args.max_memory) if args.max_memory else DEFAULT_PROCESS_MEMORY

    results, models, figures = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for entry in models_to_measure(args.model, folder):
            model = load_model(entry["weights"], device="cpu")
            descriptor = model.descriptor
            index = len(models)
            exported = export_onnx(model, folder / f"model{index}.onnx")
            onnx_paths = {"fp32": str(exported.path)}
            if "onnxruntime-int8" in paths:
                batches = calibration_batches(descriptor, args.quick)
                int8 = quantize_int8(exported.path, folder / f"model{index}.int8.onnx", batches)
                onnx_paths["int8"] = str(int8)
            entry |= {"onnx_max_abs_diff": exported.max_abs_diff, "task": descriptor.task}
            models.append(
                entry | {"weights": "temporary" if entry["untrained"] else entry["weights"]}
            )
            if not args.no_figures and not entry["untrained"] and DATA.is_dir():
                figures[entry["name"]] = measure_figures(entry, onnx_paths, figure_paths, args)
            for width, height in sizes:
                channels = descriptor.in_channels  # grey models get grey images
                image_path = folder / f"input_{width}x{height}x{channels}.png"
                if not image_path.exists():
                    write_image(image_path, noisy_image(width, height)[0][..., :channels])
                for path in paths:
                    if path == "onnxruntime-int8" and (width, height) not in int8_sizes:
                        continue
                    large = width * height > 4e6
                    if large and args.large_paths is not None and path not in args.large_paths:
                        continue
                    job = {"model": entry["name"], "weights": entry["weights"], "path": path}
                    job |= {"onnx": onnx_paths, "image": str(image_path)}
                    job |= {"out": str(folder / "output.png"), "max_memory": limit}
                    job |= {"width": width, "height": height, "threads": args.threads}
                    job |= {key: getattr(args, key) for key in ("warmup", "repeats")}
                    if large:  # one timed run, no warm-up
                        job |= {"warmup": 0, "repeats": 1}
                    results.append(run_child(job))
                    print(f"  {entry['name']} {width}x{height} {path}: "
                          f"{results[-1]['megapixels_per_s']:.3f} MP/s, "
                          f"{results[-1]['peak_rss_mib']:.0f} MiB", flush=True)  # fmt: skip

    for r in results:  # speed ratio against PyTorch fp32 on the same model and image size
        key = (r["model"], r["width"], r["height"])
        same = [s for s in results if (s["model"], s["width"], s["height"]) == key]
        reference = next((s for s in same if s["path"] == REFERENCE), None)
        r["ratio_to_torch_fp32"] = reference["median_s"] / r["median_s"] if reference else math.nan

    print(
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, CPU, "
        f"threads {args.threads or 'default'}, median of {args.repeats} after {args.warmup} "
        f"(large images: 1 run), whole-process limit {limit / 2**30:.2f} GiB"
    )
    print(describe_machine(env))
    print(
        f"{'model':22} {'size':>10} {'path':17} {'tiles':>5} {'MP/s':>8} {'x fp32':>7} "
        f"{'peak RSS MiB':>12} {'dB vs fp32':>10}"
    )
    for r in results:
        change = figures.get(r["model"], {}).get("change_db", {}).get(r["path"])
        shown = "" if change is None else f"{change:+.4f}"
        print(
            f"{r['model']:22} {r['width']:>5}x{r['height']:<4} {r['path']:17} {r['tiles']:5} "
            f"{r['megapixels_per_s']:8.3f} {r['ratio_to_torch_fp32']:7.2f} "
            f"{r['peak_rss_mib']:12.0f} {shown:>10}"
        )
    settings = {key: getattr(args, key) for key in ("quick", "warmup", "repeats")}
    settings |= {"sizes": sizes, "paths": paths, "figure_paths": figure_paths}
    settings |= {"noise_sigma": SIGMA, "max_memory": limit}
    settings |= {"large_paths": args.large_paths or paths}
    report = {**env, "settings": settings, "models": models, "results": results}
    report |= {"figures": figures, "command": "python " + " ".join(sys.argv)}
    write_report(args.json, report)
    if args.record_zoo:
        record_zoo(results, figures, args.threads)


def measure_figures(entry: dict, onnx_paths: dict, paths: list[str], args) -> dict:  # noqa: ANN001
    """Each path's figure on the model's benchmark set and its change from PyTorch fp32."""
    psnr: dict[str, float] = {}
    evaluation = ""
    for path in paths:
        job = {"path": path, "onnx": onnx_paths, "weights": entry["weights"]}
        model = open_path(job | {"threads": args.threads}, emulated_bf16=True)
        psnr[path], evaluation = figure(model, model.descriptor, args.quick)
        print(f"  {entry['name']} {path}: {psnr[path]:.4f} dB on {evaluation}", flush=True)
    reference = psnr[REFERENCE]
    change = {path: value - reference for path, value in psnr.items() if path != REFERENCE}
    return {"evaluation": evaluation, "psnr": psnr, "fp32": reference, "change_db": change}


def merged_precision(record_path: Path, new: dict) -> dict:
    """``new`` with the paths it did not measure kept from the record at ``record_path`` when
    that record has the same evaluation and the same fp32 figure (the same weights): so
    ``--paths torch-fp32 onnxruntime-int8`` re-measures int8 alone. The earlier command is kept
    in ``earlier_commands`` (the kept paths' figures came from those)."""
    if not record_path.is_file():
        return new
    old = json.loads(record_path.read_text())
    same = old.get("evaluation") == new["evaluation"]
    # the same weights: equal up to the order of float sums (threads); NaN: not the same
    same = same and abs(old.get("fp32", math.nan) - new["fp32"]) < 1e-4
    kept = set(old.get("psnr", {})) - set(new["psnr"])
    if not same or not kept:
        return new
    merged = dict(new)
    merged["psnr"] = {**old["psnr"], **new["psnr"]}
    merged["change_db"] = {**old["change_db"], **new["change_db"]}
    merged["earlier_commands"] = [*old.get("earlier_commands", []), old["command"]]
    return merged


def record_zoo(results: list[dict], figures: dict, threads: int | None) -> None:
    """Write ``speed.json`` (MP/s per size and path) and ``precision.json`` (figure change per
    path) for each measured shipped model."""
    command = "python " + " ".join(sys.argv)
    for name in dict.fromkeys(r["model"] for r in results):
        zoo = shipped_model(name)
        if zoo is None:
            continue
        rates: dict[str, dict[str, float]] = {}
        for r in results:
            if r["model"] == name:
                size = f"{r['width']}x{r['height']}"
                rates.setdefault(size, {})[r["path"]] = r["megapixels_per_s"]
        record = {"megapixels_per_s": rates, "threads": threads or torch.get_num_threads()}
        record |= {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__}
        record |= {"processor": machine()["processor"], "command": command}
        (zoo.folder / "speed.json").write_text(json.dumps(record, indent=2) + "\n")
        if name in figures:
            record_path = zoo.folder / "precision.json"
            precision = merged_precision(record_path, figures[name] | {"command": command})
            record_path.write_text(json.dumps(precision, indent=2) + "\n")
        print(f"wrote {zoo.folder}/speed.json and precision.json")


if __name__ == "__main__":
    main_or_exit(main)
