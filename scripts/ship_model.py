"""Copy a trained model into the package's zoo, keeping its descriptor and recording provenance.

    python scripts/ship_model.py RUN_DIR NAME [--weights final|best] [--command "..."]...
    python scripts/ship_model.py --onnx-only NAME    # rewrite zoo/NAME/model.onnx only

Writes ``src/restorekit/zoo/NAME/model.safetensors`` and its ONNX export
``src/restorekit/zoo/NAME/model.onnx`` (``export_onnx``: checked against PyTorch with ONNX
Runtime, carrying the SHA-256 of the safetensors file, which ``--backend auto`` and the tests
compare). The descriptor's ``training`` gains the run's command history (the ``--command``
values, for commands that predate the run's ``commands.log``, then that log) and the source
checkpoint. Evaluate it afterwards with ``restorekit eval --json`` into ``zoo/NAME/eval/`` and
write ``zoo/NAME/card.md``. ``--onnx-only NAME`` regenerates the ONNX file from the shipped
weights, e.g. after they were replaced.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from restorekit.infer.onnx_export import export_onnx
from restorekit.nets.files import load_model_file, save_model

ZOO = Path(__file__).resolve().parents[1] / "src" / "restorekit" / "zoo"


def write_onnx(name: str) -> None:
    """Export ``zoo/NAME/model.safetensors`` to ``zoo/NAME/model.onnx`` (parity-checked)."""
    weights = ZOO / name / "model.safetensors"
    if not weights.is_file():
        raise SystemExit(f"{weights} does not exist: ship the model first (RUN_DIR NAME)")
    result = export_onnx(weights, weights.with_name("model.onnx"))
    size = result.path.stat().st_size / 1e6
    print(
        f"wrote {result.path} ({size:.1f} MB, opset {result.opset}); ONNX Runtime matches "
        f"PyTorch to {result.max_abs_diff:.2g} on a {'x'.join(map(str, result.check_shape))} input"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, nargs="?")
    parser.add_argument("name", nargs="?")
    parser.add_argument("--weights", choices=["final", "best"], default="final")
    parser.add_argument("--command", action="append", default=[], help="a command of the run")
    parser.add_argument("--onnx-only", metavar="NAME", help="only rewrite zoo/NAME/model.onnx")
    args = parser.parse_args()
    if args.onnx_only:
        if args.run_dir or args.name:
            parser.error("--onnx-only NAME takes no RUN_DIR")
        write_onnx(args.onnx_only)
        return
    if args.name is None:
        parser.error("give RUN_DIR NAME, or --onnx-only NAME")

    source = (
        args.run_dir / "model.safetensors"
        if args.weights == "final"
        else args.run_dir / "checkpoints" / "best.safetensors"
    )
    net, descriptor = load_model_file(source)
    log = args.run_dir / "commands.log"
    commands = args.command + (log.read_text().splitlines() if log.exists() else [])
    training = {**descriptor.training, "commands": commands, "source": source.name}
    target = ZOO / args.name / "model.safetensors"
    save_model(target, net, descriptor.model_copy(update={"training": training}))
    size = target.stat().st_size / 1e6
    print(f"wrote {target} ({size:.1f} MB) from {source}, step {training.get('step')}")
    write_onnx(args.name)


if __name__ == "__main__":
    main()
