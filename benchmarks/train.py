"""Training speed on one machine: each speed option on and off, data loading included.

For n2c, n2n and ne2ne (presets ``*-gauss25``: batch 4, patch 256, U-Net with 48 features) and, on
request, n2v (preset ``n2v-bsd68``: grey, patch 64, the CSBDeep U-Net with 96 features, timed at
each of ``--n2v-batches``, default 128 and 16, as entries ``n2v-b128``, ``n2v-b16``) this runs the
trainer's loop, a DataLoader over PatchDataset then Stepper.step, under several config override
sets, timed in one process with interleaved repeats. Batch and patch are per entry: the preset's,
except ``--patch`` for n2c/n2n/ne2ne. Speeds are medians, compared as ratios to plain eager; FLOPs
per step come from FlopCounterMode and are set against this CPU's fp32 peak.

    python benchmarks/train.py                        # full benchmark (many minutes on a CPU)
    python benchmarks/train.py --methods n2v          # n2v only (about 7 s a step at batch 128)
    python benchmarks/train.py --quick --threads 1    # a few seconds: only checks the script
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import numpy as np
import torch
from _common import (  # benchmarks/_common.py
    ROOT,
    add_timing_arguments,
    environment,
    resolve_timing,
    write_report,
)
from _training import Run, one_epoch, time_runs, training_images  # benchmarks/_training.py
from torch.utils.data import Dataset
from torch.utils.flop_counter import FlopCounterMode

from restorekit.configs import Config, load_config
from restorekit.data import EpochSampler, PatchDataset

METHODS = ("n2c", "n2n", "ne2ne")  # the default --methods: presets "{method}-gauss25", RGB
N2V_PRESET = "n2v-bsd68"  # grey; its own patch (64); timed at each of --n2v-batches
N2V_BATCHES = (128, 16)  # --n2v-batches default; --quick: N2V_QUICK_BATCHES
N2V_QUICK_BATCHES = (4, 2)
CONFIGS = {  # name: overrides on top of the preset; "eager" is the reference (ratio 1)
    "eager": ["train.channels_last=false", "data.workers=0", "train.compile=false"],
    "channels_last": ["train.channels_last=true", "data.workers=0", "train.compile=false"],
    "workers=1": ["train.channels_last=true", "data.workers=1", "train.compile=false"],
    "compile": ["train.channels_last=true", "data.workers=0", "train.compile=true"],
    # bf16 autocast: only where the CPU has native bf16 (AVX512-BF16/AMX), else it is emulated
    "bf16": ["train.channels_last=true", "data.workers=0", "train.precision=bf16"],
}


def cpu_peak(threads: int, ghz: float | None, flop_per_cycle: int | None) -> dict:
    """fp32 peak of the cores the compute threads run on: cores x clock x FLOP/cycle."""
    cpuinfo = Path("/proc/cpuinfo")
    first = cpuinfo.read_text().split("\n\n")[0] if cpuinfo.exists() else ""
    fields = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in first.splitlines())}
    flags = set(fields.get("flags", "").split())
    if {"avx512f", "fma"} <= flags:  # 2 FMA units x 16 fp32 lanes x 2 FLOP
        isa, per_cycle = "AVX-512 + FMA", 64
    elif {"avx2", "fma"} <= flags:  # 2 x 8 x 2
        isa, per_cycle = "AVX2 + FMA", 32
    else:
        isa, per_cycle = "no FMA (or not x86)", 16
    if flop_per_cycle:
        isa, per_cycle = f"{isa}, --flop-per-cycle", flop_per_cycle
    if ghz:
        clock_source = "--ghz"
    elif fields.get("cpu MHz"):
        ghz = float(fields["cpu MHz"]) / 1000
        clock_source = "/proc/cpuinfo 'cpu MHz'; cores may boost above it"
    else:
        ghz, clock_source = 2.5, "assumed: no clock in /proc/cpuinfo (set --ghz)"
    cores = min(len(os.sched_getaffinity(0)), threads)
    gflops = cores * ghz * per_cycle
    return {
        "model": fields.get("model name", platform.processor()),
        "affinity_cores": len(os.sched_getaffinity(0)),
        "cores": cores,
        "ghz": ghz,
        "clock_source": clock_source,
        "isa": isa,
        "flop_per_cycle": per_cycle,
        "gflops": gflops,
        "note": f"peak = {cores} core(s) (min of affinity and threads) x {ghz:.3g} GHz "
        f"[{clock_source}] x {per_cycle} FLOP/cycle [{isa}] = {gflops:.0f} GFLOP/s fp32. "
        "Cores that run AVX-512 on 256-bit units (e.g. AMD Zen 4) reach half: --flop-per-cycle 32.",
    }


def step_flops(cfg: Config, dataset: Dataset, sampler: EpochSampler, device) -> float:
    """FLOPs of one eager step (forward + backward, as FlopCounterMode counts them)."""
    run = Run(cfg, dataset, sampler, 1, device)
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def grey(images: list[np.ndarray]) -> list[np.ndarray]:
    """RGB uint8 H x W x 3 images as grey uint8 H x W x 1 (ITU-R BT.601 luma)."""
    weights = np.array([0.299, 0.587, 0.114])
    return [np.rint(a[..., :3] @ weights).clip(0, 255).astype(np.uint8)[..., None] for a in images]


def entries(methods: list[str], args) -> list[tuple[str, str, list[str]]]:
    """(result key, preset, overrides) of each timed entry: n2v once per --n2v-batches."""
    out = []
    for m in methods:
        if m == "n2v":  # the preset's own patch size
            out += [(f"n2v-b{b}", N2V_PRESET, [f"train.batch_size={b}"]) for b in args.n2v_batches]
        else:
            out.append((m, f"{m}-gauss25", [f"data.patch_size={args.patch}"]))
    return out


def bench_method(
    preset: str, overrides: list[str], images: list, configs: list[str], args, peak: dict, device
) -> dict:
    cfgs = {c: load_config(preset, [*overrides, *CONFIGS[c]]) for c in configs}
    eager = cfgs["eager"]
    batch, total = eager.train.batch_size, args.warmup + args.steps * args.repeats
    dataset = PatchDataset(images, eager.data.patch_size, eager.data.augment)
    sampler = one_epoch(len(images), eager, args)
    flops = step_flops(eager, dataset, sampler, device)
    runs = {c: Run(cfg, dataset, sampler, total, device) for c, cfg in cfgs.items()}
    timing = time_runs(runs, args, device)  # eager first: the reference of the ratios
    result: dict = {"preset": preset, "gflop_per_step": flops / 1e9, "batch_size": batch}
    result |= {"noise": eager.noise, "in_channels": eager.model.in_channels}
    result |= {"patch_size": eager.data.patch_size, "features": eager.model.features}
    for c in runs:
        gflops = flops / 1e9 * timing[c]["steps_per_s"]
        result[c] = {
            "overrides": CONFIGS[c],
            **timing[c],
            "gflops": gflops,
            "peak_fraction": gflops / peak["gflops"] if device.type == "cpu" else None,
        }
    if "compile" in runs:  # compile time: the first steps' excess over the steady step time
        comp, base = result["compile"], result["channels_last"]
        comp["compile_s"] = max(0.0, sum(comp["warmup_s"]) - args.warmup * comp["step_s"])
        saved = base["step_s"] - comp["step_s"]  # against the same config without compile
        comp["break_even_steps"] = comp["compile_s"] / saved if saved > 0 else "never"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="default benchmarks/results/train[_quick].json")
    parser.add_argument("--quick", action="store_true", help="patch 64, 2 steps: checks the script")
    parser.add_argument("--with-compile", action="store_true", help="time compile with --quick too")
    add_timing_arguments(parser)
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=[*METHODS, "n2v"],
        default=list(METHODS),
        help=f"default {' '.join(METHODS)}; n2v (preset {N2V_PRESET}, slow) only when asked",
    )
    parser.add_argument(
        "--n2v-batches",
        nargs="+",
        type=int,
        help=f"n2v global batch sizes, one entry each (default {' '.join(map(str, N2V_BATCHES))}; "
        f"--quick: {' '.join(map(str, N2V_QUICK_BATCHES))})",
    )
    parser.add_argument("--ghz", type=float, help="CPU clock for the peak (default: /proc/cpuinfo)")
    parser.add_argument("--flop-per-cycle", type=int, help="fp32 FLOP/cycle/core (default: flags)")
    args = parser.parse_args()
    quick = args.quick
    resolve_timing(args)
    if args.n2v_batches is None:
        args.n2v_batches = list(N2V_QUICK_BATCHES if quick else N2V_BATCHES)
    name = "train_quick.json" if quick else "train.json"
    args.json = args.json or ROOT / "benchmarks" / "results" / name
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    configs = [c for c in CONFIGS if c != "compile" or not quick or args.with_compile]
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        configs.remove("bf16")
        print("bf16 skipped: this CPU has no native bf16")

    images, source = training_images(16 if quick else None)
    peak = cpu_peak(torch.get_num_threads(), args.ghz, args.flop_per_cycle)
    grey_images = grey(images) if "n2v" in args.methods else []
    results = {
        key: bench_method(
            preset,
            overrides,
            grey_images if preset == N2V_PRESET else images,
            configs,
            args,
            peak,
            device,
        )
        for key, preset, overrides in entries(args.methods, args)
    }

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}, data {source}")
    print(f"CPU {peak['model']}: {peak['note']}")
    print(
        f"{args.steps} steps x {args.repeats} repeats after {args.warmup} warm-up; batch and "
        f"patch per method below; data loading timed; pin_memory {device.type == 'cuda'} "
        "(the trainer pins on CUDA only; it does nothing for CPU training)"
    )
    width = max(6, *(len(m) for m in results))
    header = f"{'method':{width}} {'config':14} {'step/s':>7} {'img/s':>7} {'ratio':>6} {'wait':>6}"
    print(header + f" {'GFLOP/s':>8} {'peak':>6} {'first s':>8}")
    for m, r in results.items():
        for c in configs:
            x = r[c]
            fraction = f"{x['peak_fraction']:6.1%}" if x["peak_fraction"] is not None else "   n/a"
            rates = f"{x['steps_per_s']:7.3f} {x['images_per_s']:7.2f} {x['ratio']:6.3f}"
            flops = f"{x['data_wait_fraction']:6.1%} {x['gflops']:8.1f} {fraction}"
            print(f"{m:{width}} {c:14} {rates} {flops} {x['warmup_s'][0]:8.2f}")
        line = (
            f"{m}: {r['preset']}, batch {r['batch_size']}, patch {r['patch_size']}, "
            f"{r['in_channels']} channel(s), {r['features']} features; "
            f"{r['gflop_per_step']:.2f} GFLOP/step (forward + backward)"
        )
        if "compile" in r:
            even = r["compile"]["break_even_steps"]
            even = even if isinstance(even, str) else f"{even:.0f} steps"
            line += (
                f"; compile {r['compile']['compile_s']:.1f} s, break-even vs channels_last: {even}"
            )
        print(line)
    if any((r[c]["peak_fraction"] or 0) > 1 for r in results.values() for c in configs):
        print("above 100% of peak: the clock (or FLOP/cycle) assumed is too low; set --ghz")
    if "compile" not in configs:
        print("compile skipped (--quick without --with-compile)")

    report = {
        **environment(device),
        "cpu": peak,
        "settings": {
            "quick": quick,
            "steps": args.steps,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "patch_size": args.patch,  # n2c/n2n/ne2ne; n2v: its preset's (per entry)
            "methods": args.methods,
            "n2v_batches": args.n2v_batches if "n2v" in args.methods else None,
            "data": source,
            "configs": {c: CONFIGS[c] for c in configs},
            "pin_memory": device.type == "cuda",
            "data_loading_timed": True,
        },
        "training": results,
    }
    write_report(args.json, report)


if __name__ == "__main__":
    main()
