"""Helpers shared by the benchmark scripts (run as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
# Without cpufreq (a VM) the max clock is /proc/cpuinfo's 'cpu MHz' (the nominal clock) times this:
# above the boost/base ratio of most server parts (AMD EPYC 9004: up to about 1.5; this project's
# 2.6 GHz Zen 4 VMs: 3.67 GHz measured with a dependent-add chain, 1.41x). --max-ghz overrides.
BOOST_ALLOWANCE = 1.5
FLAGS = ("fma", "avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")  # the ones that matter
# The ceiling: one 3x3 convolution, 48 -> 48 channels, channels_last, N x 48 x S x S (forward).
CEILING_CHANNELS = 48
CEILING_SHAPES = {("cpu", False): (4, 256), ("cpu", True): (1, 256), ("cuda", False): (32, 256)}
CEILING_SHAPES[("cuda", True)] = (8, 256)
CEILING_WARMUP_S = 2.0
MATMUL_SIDES = {False: 8192, True: 4096}  # CUDA only: a square bf16 matmul


class AbovePhysicalPeak(RuntimeError):
    """A measured rate above what the processor can physically do: the count or timing is wrong."""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved(runs: dict[str, Callable[[], None]], repeats: int, device) -> dict[str, list]:
    """Seconds of each run, alternating between runs on every repeat so drift hits all alike."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            sync(device)
            start = time.perf_counter()
            run()
            sync(device)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    """--threads, --steps, --warmup, --repeats: resolved by :func:`resolve_timing`."""
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--steps", type=int, help="timed training steps per repeat (default 10)")
    parser.add_argument("--warmup", type=int, help="untimed training steps first (default 3)")
    parser.add_argument("--repeats", type=int, help="timed repeats, median reported (default 3)")


def resolve_timing(args: argparse.Namespace) -> None:
    """Fill unset timing arguments (``--quick``: 2 steps, 1 warm-up, 1 repeat; patch 64)."""
    for key, full, short in (("steps", 10, 2), ("warmup", 3, 1), ("repeats", 3, 1)):
        if getattr(args, key) is None:
            setattr(args, key, short if args.quick else full)
    args.patch = 64 if args.quick else 256
    if args.threads:
        torch.set_num_threads(args.threads)


def add_machine_arguments(parser: argparse.ArgumentParser) -> None:
    """--max-ghz: the processor's max clock for its physical peak (see :func:`machine`)."""
    parser.add_argument(
        "--max-ghz",
        type=float,
        help="max CPU clock for the physical peak (default: cpufreq's cpuinfo_max_freq, else "
        f"/proc/cpuinfo 'cpu MHz' x {BOOST_ALLOWANCE})",
    )


def _cpuinfo() -> list[dict[str, str]]:
    """The processor blocks of /proc/cpuinfo as dicts (empty where there is none)."""
    path = Path("/proc/cpuinfo")
    if not path.exists():
        return []
    blocks = [b for b in path.read_text().split("\n\n") if b.strip()]
    return [
        {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in b.splitlines())}
        for b in blocks
    ]


def _integer(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _max_clock(blocks: list[dict[str, str]], cpus: list[int], max_ghz: float | None):
    """(GHz, how it was found) of the fastest CPU in ``cpus``; (None, why) where unknown."""
    if max_ghz:
        return max_ghz, "--max-ghz"
    khz = []
    for cpu in cpus:
        path = Path(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq")
        if path.exists():
            khz.append(int(path.read_text()))
    if khz:
        return max(khz) / 1e6, "cpufreq cpuinfo_max_freq"
    mhz = [float(b["cpu MHz"]) for b in blocks if "cpu MHz" in b]
    if mhz:
        return max(mhz) / 1000 * BOOST_ALLOWANCE, (
            f"no cpufreq: /proc/cpuinfo 'cpu MHz' {max(mhz):.0f} (nominal) x {BOOST_ALLOWANCE} "
            "boost allowance (--max-ghz overrides)"
        )
    return None, "unknown: no cpufreq and no 'cpu MHz' (--max-ghz sets it)"


def flop_per_cycle(vendor: str, family: int | None, flags: set[str]) -> dict:
    """Upper bounds of fp32 and bf16 FLOP per cycle per core from the x86 flags (an FMA = 2)."""
    if "avx512f" in flags and vendor == "AuthenticAMD" and family == 25:
        fp32, isa = 32, "AVX-512 on Zen 4's two 256-bit FMA pipes: 2 x 8 x 2"
    elif "avx512f" in flags:  # Xeons with one 512-bit FMA unit reach half: a bound, not a claim
        fp32, isa = 64, "AVX-512 + FMA, two 512-bit FMA units at most: 2 x 16 x 2"
    elif {"avx2", "fma"} <= flags:
        fp32, isa = 32, "AVX2 + FMA, two 256-bit FMA units: 2 x 8 x 2"
    elif "avx" in flags:
        fp32, isa = 16, "AVX without FMA: 8-wide multiply + add"
    elif "sse2" in flags:
        fp32, isa = 8, "SSE: 4-wide multiply + add"
    else:
        return {"fp32": None, "bf16": None, "isa": "unknown (not x86 or no flags): not checked"}
    if "amx_bf16" in flags:
        bf16, isa = 1024, isa + "; bf16: AMX tiles, 1024"
    elif "avx512_bf16" in flags:  # VDPBF16PS: two bf16 products per fp32 lane
        bf16, isa = 2 * fp32, isa + "; bf16: AVX512-BF16 dot products, 2 x fp32"
    else:
        bf16, isa = fp32, isa + "; bf16: no native bf16 (runs as fp32)"
    return {"fp32": fp32, "bf16": bf16, "isa": isa}


def machine(max_ghz: float | None = None) -> dict:
    """The processor, its core count and affinity, versions, and its physical peak (GFLOP/s).

    Physical peak = cores (CPUs in the affinity, at most the torch threads) x max clock x FLOP
    per cycle (:func:`flop_per_cycle`): a bound no measured rate can exceed; None where the
    clock or the instruction set is unknown (then nothing is checked).
    """
    blocks = _cpuinfo()
    first = blocks[0] if blocks else {}
    flags = set(first.get("flags", "").split())
    vendor = first.get("vendor_id", "")
    family = _integer(first.get("cpu family"))
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cpus = affinity or list(range(os.cpu_count() or 1))
    threads = torch.get_num_threads()
    cores = min(len(cpus), threads)
    ghz, clock_source = _max_clock(blocks, cpus, max_ghz)
    per_cycle = flop_per_cycle(vendor, family, flags)
    peak = {
        precision: cores * ghz * n if ghz and n else None
        for precision, n in per_cycle.items()
        if precision != "isa"
    }
    try:
        onnxruntime = importlib.metadata.version("onnxruntime")
    except importlib.metadata.PackageNotFoundError:
        onnxruntime = None
    cuda = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        cuda = {"name": props.name, "capability": f"{props.major}.{props.minor}"}
        cuda |= {"multiprocessors": props.multi_processor_count, "cuda": torch.version.cuda}
    return {
        "processor": {
            "model_name": first.get("model name", platform.processor()),
            "vendor": vendor,
            "family": family,
            "model": _integer(first.get("model")),
            "stepping": _integer(first.get("stepping")),
            "flags": {flag: flag in flags for flag in FLAGS},
        },
        "cpu_count": os.cpu_count(),
        "affinity": affinity,
        "threads": threads,
        "cores_for_peak": cores,
        "max_ghz": ghz,
        "clock_source": clock_source,
        "flop_per_cycle": per_cycle,
        "physical_peak_gflops": peak,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime,
        "python": platform.python_version(),
        "uname": platform.uname()._asdict(),
        "cuda": cuda,
    }


def environment(device: torch.device, max_ghz: float | None = None) -> dict:
    """Where a benchmark ran: the machine (:func:`machine`), device, date (UTC)."""
    return {
        "machine": machine(max_ghz),
        "device": str(device),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def check_physical(
    gflops: float, machine: dict, precision: str = "fp32", what: str = "", device: str = "cpu"
) -> None:
    """Raise :class:`AbovePhysicalPeak` when ``gflops`` exceeds the CPU's physical peak of
    ``precision`` (no check on CUDA, or where the peak is unknown)."""
    peak = machine["physical_peak_gflops"].get(precision)
    if device.startswith("cuda") or peak is None or gflops <= peak:
        return
    cores, ghz, per_cycle = machine["cores_for_peak"], machine["max_ghz"], machine["flop_per_cycle"]
    raise AbovePhysicalPeak(
        f"{what or 'a rate'}: {gflops:.1f} GFLOP/s {precision} is above this processor's physical "
        f"peak of {peak:.1f} ({cores} core(s) x {ghz:.3g} GHz [{machine['clock_source']}] x "
        f"{per_cycle[precision]} FLOP/cycle [{per_cycle['isa']}], "
        f"{machine['processor']['model_name']}): its FLOP count or its timing is wrong, or the "
        "clock is (--max-ghz). Nothing written."
    )


def count_flops(run: Callable[[], object]) -> float:
    """FLOPs of one call of ``run`` as FlopCounterMode counts them (2 per multiply-add)."""
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def measure_ceiling(
    device: torch.device, machine: dict, quick: bool = False, repeats: int | None = None
) -> dict:
    """This run's own ceiling: GFLOP/s of one channels_last 3x3 convolution, 48 -> 48 channels,
    fp32 and (where bf16 is native: AVX512-BF16/AMX, or a GPU with bf16) bf16 autocast; on CUDA
    also a square bf16 matmul. The best of ``repeats`` timed calls after a warm-up of at least
    :data:`CEILING_WARMUP_S` (0.2 s with ``quick``). Each is
    checked against the physical peak (:func:`check_physical`)."""
    repeats = repeats or (5 if quick else 10)
    batch, side = CEILING_SHAPES[(device.type, quick)]
    c = CEILING_CHANNELS
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(c, c, 3, padding=1).to(device, memory_format=torch.channels_last)
    x = torch.randn(batch, c, side, side, device=device).to(memory_format=torch.channels_last)
    flop = 2 * batch * c * c * 9 * side * side  # 2 FLOP per multiply-add, as FlopCounterMode
    if device.type == "cuda":
        native_bf16 = torch.cuda.is_bf16_supported()
    else:
        native_bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()

    def autocast(dtype: torch.dtype | None):
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    def conv_run(dtype: torch.dtype | None, x: torch.Tensor) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode(), autocast(dtype):
                conv(x)

        return run

    runs = {"fp32": conv_run(None, x)}
    if native_bf16:  # the input already bf16, as autocast's convolutions get it inside a net
        runs["bf16"] = conv_run(torch.bfloat16, x.to(torch.bfloat16))
    flops = dict.fromkeys(runs, flop)
    if device.type == "cuda":
        n = MATMUL_SIDES[quick]
        a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
        runs["bf16_matmul"] = lambda: torch.mm(a, b)
        flops["bf16_matmul"] = 2 * n**3
    # Warm-up, at least CEILING_WARMUP_S: oneDNN/cuDNN kernel choice, weight reorders, and the
    # clock (a Zen 3 VM's calls still got faster, 0.29 -> 0.12 s, over ten after one warm-up)
    warm_until = time.perf_counter() + (0.2 if quick else CEILING_WARMUP_S)
    while True:
        for run in runs.values():
            run()
        sync(device)
        if time.perf_counter() >= warm_until:
            break
    seconds = interleaved(runs, repeats, device)
    result: dict = {
        "op": f"conv2d 3x3 {c}->{c}, padding 1, channels_last, forward",
        "shape": [batch, c, side, side],
        "threads": torch.get_num_threads(),
        "repeats": repeats,
    }
    if device.type == "cuda":
        result["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        result["matmul_shape"] = [MATMUL_SIDES[quick]] * 3
    for name, values in seconds.items():
        gflops = flops[name] / min(values) / 1e9
        precision = "fp32" if name == "fp32" else "bf16"
        check_physical(gflops, machine, precision, f"ceiling {name}", device.type)
        result[name] = {
            "gflop": flops[name] / 1e9,
            "seconds": values,
            "gflops": gflops,  # the best call
            "median_gflops": flops[name] / statistics.median(values) / 1e9,
        }
    return result


def flop_rate(
    gflop: float, seconds: float, env: dict, precision: str = "fp32", what: str = ""
) -> dict:
    """GFLOP/s of ``gflop`` done in ``seconds`` and its fraction of the run's measured conv
    ceiling of ``precision`` (``env``: :func:`environment` plus ``ceiling``); raises
    :class:`AbovePhysicalPeak` above the physical peak."""
    gflops = gflop / seconds
    check_physical(gflops, env["machine"], precision, what, env["device"])
    reference = env["ceiling"].get(precision)
    return {
        "gflops": gflops,
        "ceiling_fraction": gflops / reference["gflops"] if reference else None,
    }


def describe_machine(report: dict) -> str:
    """Two lines on the processor, its physical peak and this run's ceiling."""
    m, ceiling = report["machine"], report.get("ceiling", {})
    p = m["processor"]
    flags = " ".join(flag for flag, present in p["flags"].items() if present) or "none"
    peak = m["physical_peak_gflops"]
    peaks = ", ".join(f"{k} {v:.0f}" for k, v in peak.items() if v) or "unknown"
    measured = ", ".join(
        f"{k} {v['gflops']:.1f}"
        for k, v in ceiling.items()
        if isinstance(v, dict) and "gflops" in v
    )
    return (
        f"{p['model_name']} (family {p['family']}, model {p['model']}; {flags}), "
        f"{m['cores_for_peak']} of {len(m['affinity']) or m['cpu_count']} CPUs, "
        f"torch {m['torch']}, onnxruntime {m['onnxruntime']}, {report['device']}\n"
        f"physical peak GFLOP/s {peaks} ({m['max_ghz'] and round(m['max_ghz'], 3)} GHz: "
        f"{m['clock_source']}); measured ceiling GFLOP/s ({ceiling.get('op')}, "
        f"{ceiling.get('shape')}): {measured}"
    )


def main_or_exit(main: Callable[[], None]) -> None:
    """Run a benchmark's ``main``; a rate above the physical peak ends it with exit status 1
    and the message, before anything is written."""
    try:
        main()
    except AbovePhysicalPeak as error:
        sys.exit(f"benchmark failed: {error}")


def write_report(path: Path, report: dict) -> None:
    """Write a benchmark's JSON report (creating its folder) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
