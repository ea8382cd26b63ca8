"""What jobs do: images through a model (the command line's own code, so the bytes match
``restorekit denoise`` / ``upscale`` with the same options), and a time-budgeted training run
on uploaded noisy images whose model then serves later jobs."""

from __future__ import annotations

import re
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import ModelLoadError, RestorekitError
from restorekit.infer.array_model import ArrayModel
from restorekit.infer.files import FileOptions, restore_file, restore_stack
from restorekit.io import read_image, to_uint8
from restorekit.io.files import atomic_write
from restorekit.metrics import psnr
from restorekit.serve.jobs import Job, JobCancelled, JobQueue
from restorekit.serve.uploads import shown_name
from restorekit.zoo import DEFAULT_DENOISER, ZooModel, shipped_models

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ModelEntry:
    """A model the server offers: shipped (``zoo``) or trained here (``folder``: its run)."""

    name: str
    source: str  # what open_model takes: a shipped name or a run folder
    zoo: ZooModel | None = None
    folder: Path | None = None


class Models:
    """The shipped models and those trained through the server (``data_dir/models/NAME``,
    run folders with a finished ``model.safetensors``). Only these names are served: a client
    never names a path."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def entries(self) -> dict[str, ModelEntry]:
        found = {m.name: ModelEntry(m.name, m.name, zoo=m) for m in shipped_models()}
        if self.folder.is_dir():
            for run in sorted(self.folder.iterdir()):
                if (run / "model.safetensors").is_file() and run.name not in found:
                    found[run.name] = ModelEntry(run.name, str(run), folder=run)
        return found

    def get(self, name: str) -> ModelEntry:
        entry = self.entries().get(name)
        if entry is None:
            known = ", ".join(self.entries())
            raise ModelLoadError(f"unknown model {name!r}; models: {known}")
        return entry

    def describe(self) -> list[dict[str, Any]]:
        """What ``GET /api/models`` lists: task, channels, scales, noise, measured figures, and
        ``default`` (true for the one the page starts with, :data:`DEFAULT_DENOISER`)."""
        from restorekit.descriptor import read_descriptor

        listed = []
        for entry in self.entries().values():
            weights = entry.zoo.weights if entry.zoo else Path(entry.source) / "model.safetensors"
            d = read_descriptor(weights)
            figures = {
                bench: {k: r[k] for k in ("psnr_in", "psnr", "ssim_in", "ssim", "n_images")}
                for bench, r in (entry.zoo.evaluations() if entry.zoo else {}).items()
            }
            listed.append(
                {
                    "name": entry.name,
                    "shipped": entry.zoo is not None,
                    "default": entry.name == DEFAULT_DENOISER,
                    "task": d.task,
                    "channels": d.in_channels,
                    "scales": d.trained_scales if d.task == "upscale" else [],
                    "noise": d.noise,
                    "method": d.method,
                    "arch": d.arch,
                    "figures": figures,
                }
            )
        return listed


def open_for_job(
    queue: JobQueue,
    entry: ModelEntry,
    backend: str,
    max_memory: float,
    torch_reasons: tuple[str, ...] = (),
) -> ArrayModel:
    """The model for this worker thread (loaded once per thread, model and backend choice, so
    that jobs never share one: its tiling attributes and progress callback are the job's).
    ``torch_reasons``: what was asked that ``auto`` leaves to PyTorch, as the command line
    does (the ensemble, stacks), so that the backend and the bytes are the command line's."""
    from restorekit.infer.backends import open_model

    cache: dict[tuple, ArrayModel] = queue.local().__dict__.setdefault("models", {})
    key = (entry.source, backend, torch_reasons)
    if key not in cache:
        chosen = open_model(entry.source, backend, "cpu", torch_reasons, max_memory=max_memory)
        cache[key] = chosen.model
    return cache[key]


def apply_job(
    job: Job,
    model: ArrayModel,
    inputs: list[Path],
    options: FileOptions,
    out_format: str | None,
    references: dict[str, Path],
    axes: str | None = None,
) -> None:
    """Each input through ``model`` into ``job.folder/out`` (images with
    :func:`restore_file`; TIFF stacks laid out as ``axes`` with :func:`restore_stack`, as the
    command line does); per-file results (a failed file is reported and the others go on); the
    result is the one output, or a zip of them."""
    out_dir = job.folder / "out"
    out_dir.mkdir(exist_ok=True)
    tile = model.tile
    outputs: list[Path] = []
    for index, source in enumerate(inputs):
        job.check_cancel()
        name = shown_name(source)
        target = out_dir / _output_name(name, out_format, {p.name for p in outputs})

        def tiles(done: int, total: int, index: int = index) -> None:
            job.check_cancel()
            job.tiles = (done, total)
            job.progress = (index + done / max(total, 1)) / len(inputs)

        model.tile_progress = tiles
        try:
            if axes is None:
                warnings = restore_file(model, source, target, options)
            else:
                float32 = options.bit_depth == 32
                restore_stack(
                    model, source, target, axes, options.ensemble, float32,
                    input_scale=options.input_scale,
                )  # fmt: skip
                warnings = []
        except RestorekitError as error:
            job.results.append({"file": name, "error": str(error).replace(str(source), name)})
            continue
        finally:
            model.tile_progress, model.tile = None, tile
        shown = [w.replace(str(source), name) for w in warnings]  # never the server's folders
        result: dict[str, Any] = {"file": name, "output": target.name, "warnings": shown}
        if name in references:
            result["psnr"] = _psnr(target, references[name])
        job.results.append(result)
        outputs.append(target)
        job.progress = (index + 1) / len(inputs)
    if not outputs:
        raise RestorekitError(
            "no file could be processed: " + "; ".join(r["error"] for r in job.results)
        )
    job.result_path = outputs[0] if len(outputs) == 1 else _zip(outputs, job.folder / "results.zip")


def _output_name(name: str, out_format: str | None, taken: set[str]) -> str:
    """The input's name with ``out_format``'s extension if given; ``stem (2).ext`` when two
    inputs would give the same name."""
    path = Path(name)
    suffix = f".{out_format}" if out_format else path.suffix
    candidate, n = path.stem + suffix, 1
    while candidate in taken:
        n += 1
        candidate = f"{path.stem} ({n}){suffix}"
    return candidate


def _psnr(output: Path, reference: Path) -> float | None:
    """PSNR (dB, 8-bit RGB or grey) of an output against the client's clean reference; None
    when their sizes differ."""
    out, ref = to_uint8(read_image(output).array), to_uint8(read_image(reference).array)
    if out.shape != ref.shape:
        return None
    return float(psnr(ref, out))


def _zip(paths: list[Path], target: Path) -> Path:
    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in paths:
                archive.write(path, path.name)

    atomic_write(target, write)
    return target


def preview(path: Path) -> bytes:
    """An image file as an 8-bit PNG the browser shows (TIFF and 16-bit are not)."""
    import io

    from PIL import Image as PILImage

    image = read_image(path)
    pixels = to_uint8(image.array)
    if image.alpha is not None:
        colour = np.repeat(pixels, 3, 2) if pixels.shape[2] == 1 else pixels
        pixels = np.concatenate([colour, to_uint8(image.alpha[..., None])], 2)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(buffer, "PNG")
    return buffer.getvalue()


TRAIN_PRESETS = {"ne2ne": "ne2ne-gauss25", "n2v": "n2v-bsd68"}
"""The preset a training request starts from, by method; its noise is set to null (the
uploads are the noisy data) and its channels, patch and batch to what the uploads allow."""


def train_config(method: str, images: list[Path], budget_s: float) -> Any:
    """The config of a training request on the uploaded noisy ``images`` (see
    :data:`TRAIN_PRESETS`)."""
    from restorekit.configs import load_config
    from restorekit.devices import fastest_training_precision, resolve_device

    if method not in TRAIN_PRESETS:
        raise RestorekitError(f"method {method!r}: choose one of {', '.join(TRAIN_PRESETS)}")
    arrays = [read_image(p).array for p in images]
    channels = 1 if all(a.shape[2] == 1 for a in arrays) else 3
    side = min(min(a.shape[:2]) for a in arrays)
    multiple = 64 if method == "ne2ne" else 4  # ne2ne: the U-Net's 32 on half-size sub-images
    patch = min(128, side // multiple * multiple)
    if patch < 64:
        raise RestorekitError(
            f"the smallest upload is {side} pixels on a side; training needs at least 64"
        )
    model = {"model.in_channels": channels}
    if method == "ne2ne":
        model["model.out_channels"] = channels
    else:
        model |= {"model.out_channels": channels, "model.features": 32}
    return load_config(
        TRAIN_PRESETS[method],
        [
            "noise=null",
            "train.batch_size=4",
            f"train.precision={fastest_training_precision(resolve_device(None))}",
            "train.log_every=5",
            "train.checkpoint_every=50",
            "train.threads=1",
        ],
        {
            "data.train": [str(images[0].parent)],
            "data.patch_size": patch,
            "data.repeat": max(1, 64 // len(images)),
            "train.time_budget": budget_s,
            **model,
        },
    )


def train_job(job: Job, config: Any, run_dir: Path, models_dir: Path, name: str) -> None:
    """Train; the loss curve is read from the run's log as it goes; the finished run becomes
    the model ``name`` (``models_dir/name``)."""
    from restorekit.engine import TrainingInterrupted, train

    job.extra |= {"run": name, "started": time.time(), "log": str(run_dir / "train.log")}
    try:
        train(config, run_dir, command=f"restorekit serve: train {name}", stop=job.cancel)
    except TrainingInterrupted:
        raise JobCancelled from None
    target = models_dir / name
    models_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run_dir, target)  # the job's folder goes with its time to live
    job.message = f"model {name} trained: pick it to denoise"
    job.extra["model_ready"] = name


def train_status(job: Job, budget_s: float) -> dict[str, Any]:
    """A training job's loss curve (from its log) and progress (from its time budget)."""
    from restorekit.engine.logger import read_loss_curve

    log = Path(job.extra.get("log", job.folder / "run" / "train.log"))
    loss = [[step, value] for step, value in read_loss_curve(log)]
    if job.state == "running" and job.extra.get("started"):
        job.progress = min(0.99, (time.time() - job.extra["started"]) / budget_s)
    return {"loss": loss}
