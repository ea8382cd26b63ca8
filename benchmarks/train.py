"""Training speed on one machine: each speed option on and off, data loading included.

For n2c, n2n and ne2ne (presets ``*-gauss25``: batch 4, patch 256, U-Net with 48 features) this runs
the trainer's loop, a DataLoader over PatchDataset then Stepper.step, under several config override
sets, timed in one process with interleaved repeats. Speeds are medians, compared as ratios to plain
eager; FLOPs per step come from FlopCounterMode and are set against this CPU's fp32 peak.

    python benchmarks/train.py                        # full benchmark (many minutes on a CPU)
    python benchmarks/train.py --quick --threads 1    # a few seconds: only checks the script
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

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

METHODS = ("n2c", "n2n", "ne2ne")
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


def bench_method(name: str, images: list, configs: list[str], args, peak: dict, device) -> dict:
    cfgs = {
        c: load_config(f"{name}-gauss25", [f"data.patch_size={args.patch}", *CONFIGS[c]])
        for c in configs
    }
    eager = cfgs["eager"]
    batch, total = eager.train.batch_size, args.warmup + args.steps * args.repeats
    dataset = PatchDataset(images, eager.data.patch_size, eager.data.augment)
    sampler = one_epoch(len(images), eager, args)
    flops = step_flops(eager, dataset, sampler, device)
    runs = {c: Run(cfg, dataset, sampler, total, device) for c, cfg in cfgs.items()}
    timing = time_runs(runs, args, device)  # eager first: the reference of the ratios
    result: dict = {"gflop_per_step": flops / 1e9, "batch_size": batch, "noise": eager.noise}
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
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--ghz", type=float, help="CPU clock for the peak (default: /proc/cpuinfo)")
    parser.add_argument("--flop-per-cycle", type=int, help="fp32 FLOP/cycle/core (default: flags)")
    args = parser.parse_args()
    quick = args.quick
    resolve_timing(args)
    name = "train_quick.json" if quick else "train.json"
    args.json = args.json or ROOT / "benchmarks" / "results" / name
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    configs = [c for c in CONFIGS if c != "compile" or not quick or args.with_compile]
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        configs.remove("bf16")
        print("bf16 skipped: this CPU has no native bf16")

    images, source = training_images(16 if quick else None)
    peak = cpu_peak(torch.get_num_threads(), args.ghz, args.flop_per_cycle)
    results = {m: bench_method(m, images, configs, args, peak, device) for m in args.methods}

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}, data {source}")
    print(f"CPU {peak['model']}: {peak['note']}")
    batch = results[args.methods[0]]["batch_size"]
    print(
        f"batch {batch}, patch {args.patch}, {args.steps} steps x {args.repeats} repeats after "
        f"{args.warmup} warm-up; data loading timed; pin_memory {device.type == 'cuda'} "
        "(the trainer pins on CUDA only; it does nothing for CPU training)"
    )
    header = f"{'method':6} {'config':14} {'step/s':>7} {'img/s':>7} {'ratio':>6} {'wait':>6}"
    print(header + f" {'GFLOP/s':>8} {'peak':>6} {'first s':>8}")
    for m, r in results.items():
        for c in configs:
            x = r[c]
            fraction = f"{x['peak_fraction']:6.1%}" if x["peak_fraction"] is not None else "   n/a"
            rates = f"{x['steps_per_s']:7.3f} {x['images_per_s']:7.2f} {x['ratio']:6.3f}"
            flops = f"{x['data_wait_fraction']:6.1%} {x['gflops']:8.1f} {fraction}"
            print(f"{m:6} {c:14} {rates} {flops} {x['warmup_s'][0]:8.2f}")
        line = f"{m}: {r['gflop_per_step']:.2f} GFLOP/step (forward + backward)"
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
            "patch_size": args.patch,
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
