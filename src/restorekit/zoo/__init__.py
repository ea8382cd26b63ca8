"""Shipped models: one folder each, holding ``model.safetensors`` (weights stored compactly:
float16, or int8 with per-channel scales, :mod:`restorekit.nets.storage`; read back as
float32), ``card.md`` (how it was made) and ``eval/*.json`` (the output of ``restorekit eval
--json`` on each benchmark set). Their ONNX graphs are not shipped: they are exported from the
weights on first use into a per-user cache (:mod:`restorekit.infer.onnx_cache`).
``speed.json`` and ``precision.json`` (optional; written by ``python benchmarks/inference.py
--record-zoo``) hold the model's measured CPU speed on each backend and precision at each image
size, and the change of its evaluation figure in each precision, which ``auto`` follows
(:mod:`restorekit.infer.paths`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restorekit.descriptor import read_descriptor
from restorekit.errors import ModelLoadError

ZOO_DIR = Path(__file__).parent

DEFAULT_DENOISER = "ne2ne-gauss5_50"
"""The model ``restorekit denoise``, the web app and napari start with: the blind Gaussian model
(trained on sigma 5-50, RGB), since a photograph's noise level is unknown; on Kodak24 it beat
``ne2ne-gauss25`` at every sigma measured, 25 included (see its card)."""


@dataclass(frozen=True)
class ZooModel:
    name: str
    folder: Path

    @property
    def weights(self) -> Path:
        return self.folder / "model.safetensors"

    @property
    def card(self) -> Path:
        return self.folder / "card.md"

    @property
    def speed(self) -> dict[str, Any] | None:
        """The measured CPU speed (``speed.json``: ``megapixels_per_s`` per image size and path,
        e.g. ``{"768x512": {"torch-fp32": 0.74, ...}}``, the machine, ``command``), or None."""
        return self._record("speed.json")

    @property
    def precision(self) -> dict[str, Any] | None:
        """The measured change of the evaluation figure per path (``precision.json``:
        ``evaluation``, ``fp32`` figure, ``change_db`` per path, ``command``), or None."""
        return self._record("precision.json")

    def _record(self, name: str) -> dict[str, Any] | None:
        path = self.folder / name
        return json.loads(path.read_text()) if path.is_file() else None

    def evaluations(self) -> dict[str, dict[str, Any]]:
        """Measured figures, keyed by benchmark file name (e.g. ``kodak24-gauss25``)."""
        return {p.stem: json.loads(p.read_text()) for p in sorted(self.folder.glob("eval/*.json"))}


def shipped_models() -> list[ZooModel]:
    """All models that ship with the package, sorted by name."""
    return [ZooModel(p.parent.name, p.parent) for p in sorted(ZOO_DIR.glob("*/model.safetensors"))]


def shipped_model(name: str | Path) -> ZooModel | None:
    """The shipped model called ``name``, or None."""
    return next((m for m in shipped_models() if m.name == str(name)), None)


@functools.cache
def default_denoiser_noise() -> tuple[str, str] | None:
    """``(DEFAULT_DENOISER, the noise it was trained for)``, the model the clean-input warning
    suggests (:func:`restorekit.io.checks.check_noise_level`), or None if it is not shipped."""
    model = shipped_model(DEFAULT_DENOISER)
    noise = read_descriptor(model.weights).noise if model else None
    return (DEFAULT_DENOISER, noise) if noise else None


def shipped_upscalers() -> dict[int, str]:
    """The shipped upscaler for each scale, ``{2: "edsr-baseline-x2", ...}`` (the first by
    name when several take a scale)."""
    found: dict[int, str] = {}
    for model in shipped_models():
        descriptor = read_descriptor(model.weights)
        if descriptor.task == "upscale":
            for scale in descriptor.trained_scales:
                found.setdefault(scale, model.name)
    return dict(sorted(found.items()))


def shipped_denoisers(channels: int) -> list[str]:
    """The names of the shipped denoisers that take ``channels`` channels."""
    return [
        m.name
        for m in shipped_models()
        if (d := read_descriptor(m.weights)).task == "denoise" and d.in_channels == channels
    ]


def resolve_model(name_or_path: str | Path) -> Path:
    """Path of a shipped model's weights, or of a user's model file or training run folder."""
    path = Path(name_or_path)
    if path.is_dir() and (path / "model.safetensors").is_file():
        return path / "model.safetensors"  # a zoo-style folder or a finished run
    if path.is_dir() and (path / "checkpoints" / "best.safetensors").is_file():
        return path / "checkpoints" / "best.safetensors"
    if path.is_file():
        return path
    if path.is_dir() and shipped_model(name_or_path) is None:  # a shipped model's name wins
        resume = path / "checkpoints" / "last.state.pt"
        hint = (
            f"; it holds a resume point: finish the run with `restorekit train --resume {path}`"
            if resume.is_file()
            else ""
        )
        raise ModelLoadError(
            f"{path} is a folder without a model: a finished run folder holds model.safetensors, "
            f"a run in progress checkpoints/best.safetensors{hint}"
        )
    model = shipped_model(name_or_path)
    if model is not None:
        return model.weights
    known = ", ".join(m.name for m in shipped_models()) or "none"
    raise ModelLoadError(
        f"no model file, run folder or shipped model named {str(name_or_path)!r}; shipped: {known}"
    )
