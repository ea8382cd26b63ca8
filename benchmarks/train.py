"""Training speed on one machine: each speed option on and off, data loading included.

For n2c, n2n and ne2ne (presets ``*-gauss25``: batch 4, patch 256, U-Net with 48 features) and, on
request, n2v (preset ``n2v-bsd68``: grey, patch 64, the CSBDeep U-Net with 96 features, timed at
each of ``--n2v-batches``, default 128 and 16, as entries ``n2v-b128``, ``n2v-b16``) this runs the
trainer's loop, a DataLoader over PatchDataset then Stepper.step, under several config override
sets, timed in one process with interleaved repeats. Batch and patch are per entry: the preset's,
except ``--patch`` for n2c/n2n/ne2ne. Speeds are medians, compared as ratios to plain eager; FLOPs
per step come from FlopCounterMode, and GFLOP/s are given as fractions of this run's own measured
ceiling (a channels_last 3x3 convolution, fp32 and bf16); a rate above the processor's physical
peak ends the run with an error instead of a report.

    python benchmarks/train.py                        # full benchmark (many minutes on a CPU)
    python benchmarks/train.py --methods n2v          # n2v only (about 7 s a step at batch 128)
    python benchmarks/train.py --quick --threads 1    # a few seconds: only checks the script
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from _common import (  # benchmarks/_common.py
    ROOT,
    add_machine_arguments,
    add_timing_arguments,
    describe_machine,
    environment,
    flop_rate,
    main_or_exit,
    measure_ceiling,
    resolve_timing,
    write_report,
)
from _training import (  # benchmarks/_training.py
    Run,
    one_epoch,
    step_flops,
    time_runs,
    training_images,
)

from restorekit.configs import load_config
from restorekit.data import PatchDataset

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
    key: str, preset: str, overrides: list[str], images: list, configs: list[str], args, env, device
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
    for c in runs:  # GFLOP/s and its fraction of the measured ceiling of the same precision
        precision = "bf16" if c == "bf16" else "fp32"
        rate = flop_rate(flops / 1e9, timing[c]["step_s"], env, precision, f"{key} {c} step")
        result[c] = {"overrides": CONFIGS[c], **timing[c], "precision": precision, **rate}
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
    add_machine_arguments(parser)
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

    env = environment(device, args.max_ghz)  # the machine, and this run's own ceiling first
    env["ceiling"] = measure_ceiling(device, env["machine"], quick)
    images, source = training_images(16 if quick else None)
    grey_images = grey(images) if "n2v" in args.methods else []
    results = {
        key: bench_method(
            key,
            preset,
            overrides,
            grey_images if preset == N2V_PRESET else images,
            configs,
            args,
            env,
            device,
        )
        for key, preset, overrides in entries(args.methods, args)
    }

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}, data {source}")
    print(describe_machine(env))
    print(
        f"{args.steps} steps x {args.repeats} repeats after {args.warmup} warm-up; batch and "
        f"patch per method below; data loading timed; pin_memory {device.type == 'cuda'} "
        "(the trainer pins on CUDA only; it does nothing for CPU training)"
    )
    width = max(6, *(len(m) for m in results))
    header = f"{'method':{width}} {'config':14} {'step/s':>7} {'img/s':>7} {'ratio':>6} {'wait':>6}"
    print(header + f" {'GFLOP/s':>8} {'ceil':>6} {'first s':>8}")
    for m, r in results.items():
        for c in configs:
            x = r[c]
            fraction = f"{x['ceiling_fraction']:6.1%}"
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
    print("ceil: GFLOP/s as a fraction of the measured conv ceiling of the same precision")
    if "compile" not in configs:
        print("compile skipped (--quick without --with-compile)")

    report = {
        **env,
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
    main_or_exit(main)
