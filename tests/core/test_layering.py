"""Dependencies point one way (the README's Layout lists the order), and the torch-free core
imports without torch: the configs, the image and pixel code, the metrics, the protocols and
the ONNX Runtime path."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import assert_runs_without_torch

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "restorekit"

ORDER = (  # a module may import from its own part and from those before it
    "errors", "units", "pixels", "dihedral", "descriptor", "normalization", "blind_spots",
    "devices", "layout", "randomness", "degrade", "io", "metrics", "configs", "nets", "zoo",
    "infer", "evaluation", "methods", "data", "engine", "serve", "napari_plugin", "demo", "cli",
)  # fmt: skip

TORCH_FREE = (
    "restorekit.configs", "restorekit.io", "restorekit.pixels", "restorekit.dihedral",
    "restorekit.descriptor", "restorekit.normalization", "restorekit.degrade",
    "restorekit.metrics", "restorekit.evaluation", "restorekit.infer.onnx_backend",
    "restorekit.infer.array_model", "restorekit.infer.tiling", "restorekit.infer.ensemble",
)  # fmt: skip


def _part(module: str) -> str | None:
    """The top-level part of ``restorekit.PART...`` (None for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "restorekit" else None


def test_every_import_points_to_an_earlier_part():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = _part("restorekit." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        if me in (None, "__init__", "__main__"):
            continue
        assert me in ORDER, f"{path}: add its part to ORDER (and to the README's Layout)"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                other = _part(node.module)
                if other and other != me and ORDER.index(other) > ORDER.index(me):
                    wrong.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports {node.module}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_the_torch_free_core_imports_without_torch():
    assert_runs_without_torch("\n".join(f"import {module}" for module in TORCH_FREE))
