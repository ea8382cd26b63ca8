"""Copy a trained model into the package's zoo, keeping its descriptor and recording provenance.

    python scripts/ship_model.py RUN_DIR NAME [--weights final|best] [--command "..."]...

Writes ``src/restorekit/zoo/NAME/model.safetensors`` with float16 weights (half the bytes;
loading upcasts them to float32; the change of every shipped model's figures was measured under
0.005 dB) and checks that it exports to ONNX with parity (the export itself is not shipped: it
is made on first use into a per-user cache, :mod:`restorekit.infer.onnx_cache`). The
descriptor's ``training`` gains the run's command history (the ``--command`` values, for
commands that predate the run's ``commands.log``, then that log) and the source checkpoint.
Evaluate it afterwards with ``restorekit eval --json`` into ``zoo/NAME/eval/`` and write
``zoo/NAME/card.md``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from restorekit.infer.onnx_export import export_onnx
from restorekit.nets.files import load_model_file, save_model

ZOO = Path(__file__).resolve().parents[1] / "src" / "restorekit" / "zoo"
STORED_DTYPE = torch.float16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--weights", choices=["final", "best"], default="final")
    parser.add_argument("--command", action="append", default=[], help="a command of the run")
    args = parser.parse_args()

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
    save_model(target, net, descriptor.model_copy(update={"training": training}), STORED_DTYPE)
    size = target.stat().st_size / 1e6
    print(f"wrote {target} ({size:.1f} MB, float16) from {source}, step {training.get('step')}")
    with tempfile.TemporaryDirectory() as tmp:
        result = export_onnx(target, Path(tmp) / "model.onnx")
    print(
        f"ONNX export checked: ONNX Runtime matches PyTorch to {result.max_abs_diff:.2g} on a "
        f"{'x'.join(map(str, result.check_shape))} input"
    )


if __name__ == "__main__":
    main()
