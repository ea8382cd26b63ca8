"""Copy a trained model into the package's zoo, keeping its descriptor and recording provenance.

    python scripts/ship_model.py RUN_DIR NAME [--weights final|best] [--command "..."]...
        [--storage float16|int8]
    python scripts/ship_model.py src/restorekit/zoo/NAME/model.safetensors NAME --storage int8
        [--int8-min-values N]

Writes ``src/restorekit/zoo/NAME/model.safetensors`` in a compact storage
(:mod:`restorekit.nets.storage`): ``float16`` by default (half the bytes), or ``int8``
(convolution weights in int8 with per-channel scales; the image-facing first and last
convolutions, and weights of fewer than ``--int8-min-values`` values, in float16), and checks
that it exports to ONNX with parity (the export itself is not shipped: it is made on first use
into a per-user cache, :mod:`restorekit.infer.onnx_cache`).
From a run folder the descriptor's ``training`` gains the run's command history (the
``--command`` values, for commands that predate the run's ``commands.log``, then that log) and
the source checkpoint. Given a model file (a shipped model, to store it another way), the
descriptor is kept as it is. Evaluate afterwards with ``restorekit eval --json`` into
``zoo/NAME/eval/`` (after a change of storage: ``python scripts/reevaluate_zoo.py --model NAME``,
every figure within 0.005 dB) and write ``zoo/NAME/card.md``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from restorekit.infer.onnx_export import export_onnx
from restorekit.nets.files import load_model_file, save_model
from restorekit.nets.storage import MIN_INT8_VALUES, STORAGES

ZOO = Path(__file__).resolve().parents[1] / "src" / "restorekit" / "zoo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a run folder, or a model file")
    parser.add_argument("name")
    parser.add_argument("--weights", choices=["final", "best"], default="final")
    parser.add_argument("--command", action="append", default=[], help="a command of the run")
    parser.add_argument(
        "--storage", choices=[s for s in STORAGES if s != "float32"], default="float16"
    )
    parser.add_argument(
        "--int8-min-values",
        type=int,
        default=MIN_INT8_VALUES,
        help="with --storage int8: smaller convolution weights stay float16",
    )
    args = parser.parse_args()

    if args.source.is_file():
        source = args.source
        net, descriptor = load_model_file(source)
    else:
        source = (
            args.source / "model.safetensors"
            if args.weights == "final"
            else args.source / "checkpoints" / "best.safetensors"
        )
        net, descriptor = load_model_file(source)
        log = args.source / "commands.log"
        commands = args.command + (log.read_text().splitlines() if log.exists() else [])
        training = {**descriptor.training, "commands": commands, "source": source.name}
        descriptor = descriptor.model_copy(update={"training": training})
    target = ZOO / args.name / "model.safetensors"
    save_model(
        target, net, descriptor, args.storage, args.int8_min_values
    )  # atomic: the source is read first
    size = target.stat().st_size / 1e6
    print(
        f"wrote {target} ({size:.2f} MB, {args.storage}) from {source}, "
        f"step {descriptor.training.get('step')}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = export_onnx(target, Path(tmp) / "model.onnx")
    print(
        f"ONNX export checked: ONNX Runtime matches PyTorch to {result.max_abs_diff:.2g} on a "
        f"{'x'.join(map(str, result.check_shape))} input"
    )


if __name__ == "__main__":
    main()
