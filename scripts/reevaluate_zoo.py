"""Re-run every shipped evaluation (``zoo/*/eval/*.json``) and report how each figure moved.

    python scripts/reevaluate_zoo.py [--model NAME]... [--out DIR] [--replace]

Each JSON file is the output of ``restorekit eval --json``; its name gives the benchmark set
(``kodak24-gauss25.json``: ``../shared/data/Kodak24``, matched without regard to case) and its
fields the protocol (noise, repeats, seed, scale, ensemble, backend), so the same command is
rebuilt and run again. The new reports go to ``--out`` (default ``../runs/reevaluate``); a table
gives old and new PSNR/SSIM and their change, and the largest PSNR change is printed last.
``--replace`` copies the new reports over the shipped ones (after the weights changed on
purpose, e.g. stored in another precision).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from restorekit.cli import main as restorekit_cli
from restorekit.zoo import shipped_models

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_folder(report_name: str) -> Path:
    """The benchmark folder of a report named ``SET-...json`` (case-insensitive)."""
    wanted = report_name.split("-")[0].lower()
    matches = [p for p in DATA.iterdir() if p.is_dir() and p.name.lower() == wanted]
    if not matches:
        raise SystemExit(f"no folder for {report_name} under {DATA}")
    return matches[0]


def eval_arguments(model: str, report_path: Path, out: Path) -> list[str]:
    """The ``restorekit eval`` arguments that reproduce ``report_path``'s protocol."""
    report = json.loads(report_path.read_text())
    args = ["eval", "--model", model, "--data", str(data_folder(report_path.stem))]
    args += ["--seed", str(report["seed"])]
    if report.get("noise"):
        args += ["--noise", report["noise"], "--repeats", str(report["repeats"])]
    if report.get("scale", 1) > 1:
        args += ["--scale", str(report["scale"])]
    if report.get("ensemble"):
        args.append("--ensemble")
    if report.get("backend"):
        args += ["--backend", {"onnxruntime": "onnx"}.get(report["backend"], report["backend"])]
    return [*args, "--json", str(out), "--overwrite"]  # out: this script's own scratch copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="only these shipped models")
    parser.add_argument("--out", type=Path, default=DATA.parents[1] / "runs" / "reevaluate")
    parser.add_argument("--replace", action="store_true", help="overwrite the shipped reports")
    args = parser.parse_args()
    runner = CliRunner()
    largest = 0.0
    print(f"{'report':45s} {'PSNR old':>9s} {'new':>9s} {'change':>8s} {'SSIM change':>12s}")
    for model in shipped_models():
        if args.model and model.name not in args.model:
            continue
        for shipped in sorted(model.folder.glob("eval/*.json")):
            new = args.out / model.name / shipped.name
            new.parent.mkdir(parents=True, exist_ok=True)
            result = runner.invoke(restorekit_cli, eval_arguments(model.name, shipped, new))
            if result.exit_code != 0:
                raise SystemExit(f"{shipped}: eval failed:\n{result.output}")
            old_report, new_report = json.loads(shipped.read_text()), json.loads(new.read_text())
            change = new_report["psnr"] - old_report["psnr"]
            largest = max(largest, abs(change))
            print(
                f"{model.name + '/' + shipped.name:45s} {old_report['psnr']:9.4f} "
                f"{new_report['psnr']:9.4f} {change:+8.4f} "
                f"{new_report['ssim'] - old_report['ssim']:+12.6f}",
                flush=True,
            )
            if args.replace:
                shutil.copy(new, shipped)
    print(f"largest PSNR change: {largest:.4f} dB")


if __name__ == "__main__":
    main()
