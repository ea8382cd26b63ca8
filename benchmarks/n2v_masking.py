"""Noise2Void masking throughput: restorekit's vectorised masking against a per-pixel reference.

Both mask a batch of grey patches (default batch 128, patch 64, 0.198 % of pixels: one blind
spot per 22 x 22 box) and replace the blind spots. The reference is the straightforward
implementation, written here: Python loops over samples and blind spots, one NumPy generator per
sample, the neighbourhood cut at the patch border (as the original n2v code's sub-patch). The
vectorised one is :class:`restorekit.methods.n2v_masking.BlindSpotMasker`, its per-sample
random streams (:class:`SampleRandom`) built inside the timed call as a training step does.

    python benchmarks/n2v_masking.py            # full benchmark
    python benchmarks/n2v_masking.py --quick    # a few seconds: only checks that the script works
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

import numpy as np
import torch
from _common import (  # benchmarks/_common.py
    add_machine_arguments,
    describe_machine,
    environment,
    interleaved,
    main_or_exit,
    measure_ceiling,
    write_report,
)

from restorekit.methods.n2v_masking import BlindSpotMasker, box_side
from restorekit.randomness import SampleRandom, derive_seed

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "uniform_withCP": {"manipulator": "uniform_withCP"},
    "median": {"manipulator": "median"},
    "uniform_withCP+struct1x5": {"manipulator": "uniform_withCP", "struct_mask": [1, 1, 1, 1, 1]},
}


def reference_masking(
    patches: np.ndarray,
    seeds: list[int],
    masked_fraction: float,
    manipulator: str,
    radius: int,
    struct_mask: list | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel N2V masking of N x H x W grey patches, channel count 1."""
    out, mask = patches.copy(), np.zeros(patches.shape, dtype=bool)
    n, height, width = patches.shape
    side = box_side(masked_fraction, 2)
    struct = None
    if struct_mask is not None:
        struct = np.atleast_2d(np.array(struct_mask))
        centre = np.array(struct.shape) // 2
        struct = [(dy, dx) for dy, dx in np.argwhere(struct == 1) - centre if (dy, dx) != (0, 0)]
    for i in range(n):
        rng = np.random.default_rng(seeds[i])
        patch = patches[i]
        low, high = patch.min(), patch.max()
        spots = []
        for top in range(0, height, side):
            for left in range(0, width, side):
                y = top + rng.integers(0, min(side, height - top))
                x = left + rng.integers(0, min(side, width - left))
                spots.append((y, x))
        values = []
        for y, x in spots:
            y0, y1 = max(y - radius, 0), min(y + radius + 1, height)
            x0, x1 = max(x - radius, 0), min(x + radius + 1, width)
            if manipulator == "uniform_withCP":
                values.append(patch[rng.integers(y0, y1), rng.integers(x0, x1)])
            else:  # median of the window without the centre
                window = [
                    patch[yy, xx]
                    for yy in range(y0, y1)
                    for xx in range(x0, x1)
                    if (yy, xx) != (y, x)
                ]
                values.append(np.sort(window)[(len(window) - 1) // 2])
        for y, x in spots:
            for dy, dx in struct or []:
                if 0 <= y + dy < height and 0 <= x + dx < width:
                    out[i, y + dy, x + dx] = rng.uniform(low, high)
        for (y, x), value in zip(spots, values, strict=True):
            out[i, y, x] = value
            mask[i, y, x] = True
    return out, mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--masked-fraction", type=float, default=0.00198)
    parser.add_argument("--radius", type=int, default=2)
    parser.add_argument("--repeats", type=int, help="timed repeats, median reported (default 7)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="1 repeat: checks the script works")
    parser.add_argument("--json", type=Path)
    add_machine_arguments(parser)
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 7)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    cases = CASES
    env = environment(device, args.max_ghz)  # the machine, and this run's own ceiling
    env["ceiling"] = measure_ceiling(device, env["machine"], args.quick)
    print(describe_machine(env))

    generator = np.random.default_rng(0)
    patches = generator.random((args.batch, args.patch, args.patch), dtype=np.float32)
    batch = torch.from_numpy(patches)[:, None]
    seeds = [derive_seed(0, i) for i in range(args.batch)]
    side = box_side(args.masked_fraction, 2)
    print(
        f"batch {args.batch}, patch {args.patch}, boxes of {side} px "
        f"({math.ceil(args.patch / side) ** 2} blind spots per patch), radius {args.radius}, "
        f"{torch.get_num_threads()} thread(s), {repeats} repeat(s)"
    )
    print(f"{'case':28s} {'vectorised':>14s} {'reference':>14s} {'speed-up':>9s}")
    results = {}
    for name, options in cases.items():
        masker = BlindSpotMasker(args.masked_fraction, radius=args.radius, **options)
        reference_options = (
            args.masked_fraction,
            options["manipulator"],
            args.radius,
            options.get("struct_mask"),
        )
        # Both implementations mask the same number of pixels per patch.
        vec_mask = masker(batch, SampleRandom(seeds))[1]
        ref_mask = reference_masking(patches, seeds, *reference_options)[1]
        assert int(vec_mask.sum()) == int(ref_mask.sum())
        runs = {
            "vectorised": lambda m=masker: m(batch, SampleRandom(seeds)),
            "reference": lambda o=reference_options: reference_masking(patches, seeds, *o),
        }
        seconds = interleaved(runs, repeats, device)
        entry: dict = {}
        for key, values in seconds.items():
            median = statistics.median(values)
            entry[key] = {
                "seconds": values,
                "median_s": median,
                "patches_per_s": args.batch / median,
            }
        entry["speedup"] = entry["reference"]["median_s"] / entry["vectorised"]["median_s"]
        results[name] = entry
        print(
            f"{name:28s} {entry['vectorised']['patches_per_s']:>10.0f} p/s "
            f"{entry['reference']['patches_per_s']:>10.0f} p/s {entry['speedup']:>8.1f}x"
        )

    default = "n2v_masking_quick.json" if args.quick else "n2v_masking.json"
    report = {
        **env,
        "settings": {
            "batch": args.batch,
            "patch": args.patch,
            "masked_fraction": args.masked_fraction,
            "box_side": side,
            "radius": args.radius,
            "repeats": repeats,
            "quick": args.quick,
            "cases": cases,
        },
        "results": results,
    }
    write_report(args.json or ROOT / "benchmarks" / "results" / default, report)


if __name__ == "__main__":
    main_or_exit(main)
