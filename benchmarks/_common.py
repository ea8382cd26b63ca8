"""Helpers shared by the benchmark scripts (run as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


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


def environment(device: torch.device) -> dict:
    """Where a benchmark ran: torch, threads, machine, device, date."""
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": {"processor": platform.processor(), **platform.uname()._asdict()},
        "device": str(device),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_report(path: Path, report: dict) -> None:
    """Write a benchmark's JSON report (creating its folder) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
