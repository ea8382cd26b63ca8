"""Checkpoints of a run folder.

``checkpoints/last.state.pt`` is the resume point: weights, optimizer state, epoch, step, best
validation PSNR and RNG states (and, where used, the weight average, a time budget's plan and
fp16's GradScaler state) in one file, written atomically, so a crash or a killed process at
any moment leaves either the previous or the new resume point, never a mix. It holds only
tensors and plain values and is read with ``torch.load(weights_only=True)``.

Verified: each state file carries ``checksum``, the SHA-256 of its content (every tensor's
bytes, dtype and shape, every key and value: :func:`payload_digest`), checked on resume before
any step. The run keeps the last two: a new state is written whole to a temporary file, then
the current ``last.state.pt`` is renamed ``previous.state.pt`` and the new one renamed
``last.state.pt`` (a ``last.state.pt`` known to be damaged is not kept as the previous one). On
resume, a ``last.state.pt`` that is empty, truncated, junk, not a resume state or whose
content does not match its checksum is named in a warning (:class:`CheckpointRecoveryWarning`,
and ``ResumeState.recovery``) and ``previous.state.pt`` is used; if neither is usable the run
stops with :class:`CheckpointError`, saying which file has what and how to go on; torch's own
error text never reaches the user. A bit flip either changes what is loaded, so the checksum
(or the file's structure) no longer matches, or falls in bytes that are never read (zip
padding, timestamps), so what is loaded is exactly what was saved. State files of runs from
before checksums are resumed unverified. Temporary files of a killed save are removed at the
next start by :func:`remove_leftover_temporaries`.
``checkpoints/last.safetensors``, written after it, is the same weights as a loadable model file
(for ``restorekit eval`` on a running job); resuming does not read it.
(State files of older runs lack the weights: those resume from ``last.safetensors``, whose step
must match.)

With ``train.ema`` the state file also holds the weight average (``ema``: its weights, buffers
and update count) next to the raw weights training continues from, so a resumed run equals an
uninterrupted one; ``last.safetensors`` then holds the averaged weights, like ``best`` and
``model.safetensors``. Resuming with ``train.ema`` set from a state without an average starts
the average from the resumed weights; resuming with it off drops a stored average. Both say so
in the log.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from restorekit.errors import RestorekitError
from restorekit.io.files import fsync_file, remove_orphan_temporaries, temporary_path
from restorekit.nets.files import (
    ModelDescriptor,
    load_model_file,
    load_state,
    read_descriptor,
    save_model,
)

PREVIOUS_STATE = "previous.state.pt"
CHECKSUM_KEY = "checksum"
_REQUIRED = ("epoch", "step", "best_psnr", "optimizer", "torch_rng")


class CheckpointError(RestorekitError):
    """No usable checkpoint to resume from: every state file is missing or damaged."""


class CheckpointRecoveryWarning(UserWarning):
    """The last checkpoint is damaged: the run resumes from the previous one."""


@dataclass
class ResumeState:
    epoch: int  # the epoch in progress (from 1)
    step: int  # optimizer steps taken so far
    best_psnr: float
    optimizer: dict[str, Any]
    ema_note: str | None = None  # how a state without (or with an unwanted) average was resumed
    plan: dict[str, int] | None = None  # total_steps and epochs, when a time budget fixed them
    recovery: str | None = None  # why the previous checkpoint was used (the last is damaged)
    source: Path | None = None  # the state file resumed from
    # train.precision=fp16: the GradScaler's loss scale and growth counter (None: not saved)
    grad_scaler: dict[str, Any] | None = None


def checkpoint_paths(run_dir: Path) -> tuple[Path, Path]:
    folder = run_dir / "checkpoints"
    return folder / "last.safetensors", folder / "last.state.pt"


def previous_state_path(run_dir: Path) -> Path:
    """The resume point before ``last.state.pt``, used when that one is damaged."""
    return run_dir / "checkpoints" / PREVIOUS_STATE


def remove_leftover_temporaries(run_dir: Path, before: float | None = None) -> list[Path]:
    """Remove the temporary files a killed process left in ``run_dir`` and its
    ``checkpoints/`` (``.NAME.XXXXXXXX.tmp`` older than this process, or than ``before``;
    nothing else); return their paths. Call it at the start of a run, new or resumed, on the
    main process."""
    run_dir = Path(run_dir)
    return [
        *remove_orphan_temporaries(run_dir / "checkpoints", before),
        *remove_orphan_temporaries(run_dir, before),
    ]


def payload_digest(payload: Mapping[str, Any]) -> str:
    """``sha256:HEX`` of a state's content but its checksum: keys, plain values, and each
    tensor's dtype, shape and bytes, in order."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k != CHECKSUM_KEY})
    return "sha256:" + digest.hexdigest()


def _feed(digest: Any, value: object) -> None:  # noqa: ANN401 - a hashlib object
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)};".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, Mapping):
        digest.update(f"dict {len(value)};".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__} {len(value)};".encode())
        for item in value:
            _feed(digest, item)
    elif value is None or isinstance(value, bool):
        digest.update(f"{value!r};".encode())
    elif isinstance(value, int):
        digest.update(f"int {int(value)};".encode())
    elif isinstance(value, float):
        digest.update(f"float {float(value).hex()};".encode())
    elif isinstance(value, str):
        encoded = value.encode()
        digest.update(f"str {len(encoded)};".encode() + encoded)
    else:
        digest.update(f"{type(value).__name__} {value!r};".encode())


_KNOWN: dict[str, tuple[tuple[int, int, int], bool]] = {}
"""State files this process wrote or read: their (inode, size, mtime) and whether they are
good, so that a save keeps a damaged ``last.state.pt`` as the previous one only after checking
a file it does not know."""


def _signature(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _remember(path: Path, good: bool) -> None:
    with contextlib.suppress(OSError):
        _KNOWN[str(path.resolve())] = (_signature(path), good)


def _is_good(path: Path) -> bool:
    """Whether the state file ``path`` is a usable resume point (read only when not known)."""
    if not path.is_file():
        return False
    known = _KNOWN.get(str(path.resolve()))
    if known is not None and known[0] == _signature(path):
        return known[1]
    good = _read_state(path)[1] is None
    _remember(path, good)
    return good


def _write_state(path: Path, payload: dict[str, Any]) -> None:
    """Write the state whole beside ``path``, then rotate: ``path`` (if usable) becomes
    ``previous.state.pt`` and the new file ``path``. Each rename is atomic: a kill at any
    moment leaves a usable ``last.state.pt`` or ``previous.state.pt``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        torch.save(payload, tmp)
        fsync_file(tmp)
        if _is_good(path):
            os.replace(path, path.with_name(PREVIOUS_STATE))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _remember(path, True)


def check_state_file(path: str | Path) -> str | None:
    """What is wrong with the state file ``path`` (in words: empty, junk, truncated, damaged,
    checksum mismatch), or ``None`` when it is a usable resume point."""
    return _read_state(Path(path))[1]


def _read_state(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The state in ``path`` and ``None``, or ``None`` and what is wrong with the file (in
    words; never torch's text)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(4)
            handle.seek(max(size - 22, 0))
            tail = handle.read(4)
    except OSError as error:
        return None, f"cannot be read ({error.strerror or error})"
    if size == 0:
        return None, "is empty (0 bytes)"
    if head != b"PK\x03\x04":
        return None, f"is not a checkpoint: its {size} bytes do not start like one (junk?)"
    if tail != b"PK\x05\x06":
        return None, f"is truncated or damaged: its end is missing or altered ({size} bytes)"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any failure is damage; torch's text is not for users
        return None, f"is damaged: it cannot be read as a checkpoint ({size} bytes)"
    if not isinstance(state, dict) or any(key not in state for key in _REQUIRED):
        return None, "does not hold a resume state (a file of another kind?)"
    stored = state.get(CHECKSUM_KEY)
    if stored is not None and stored != payload_digest(state):
        return None, (
            "is damaged: its content does not match the SHA-256 checksum saved with it "
            "(bytes changed after it was written)"
        )
    return state, None


def _choose_state(run_dir: Path) -> tuple[Path, dict[str, Any], str | None]:
    """The newest usable state file, its state, and why the last one was passed over."""
    _, last = checkpoint_paths(run_dir)
    previous = previous_state_path(run_dir)
    if not last.exists() and not previous.exists():
        raise RestorekitError(
            f"{run_dir}: no checkpoint to resume from (expected {last.name} in "
            f"{last.parent}; the run stopped before its first save, or this is not a run "
            f"folder); start it again without --resume: restorekit train "
            f"{run_dir / 'config.yaml'} --out {run_dir}"
        )
    problems: dict[Path, str] = {}
    for path in (last, previous):
        if not path.exists():
            problems[path] = "is missing"
            continue
        state, problem = _read_state(path)
        _remember(path, problem is None)
        if state is not None:
            recovery = None
            if path == previous:
                recovery = (
                    f"{last} {problems[last]}: resuming from {previous} (step {state['step']}) "
                    "instead; the steps after it are trained again"
                )
                if problems[last] == "is missing":
                    recovery = (
                        f"{last} is missing (a save was interrupted): resuming from "
                        f"{previous} (step {state['step']})"
                    )
            return path, state, recovery
        assert problem is not None  # _read_state gives a state or what is wrong
        problems[path] = problem
    if problems[previous] == "is missing":
        problems[previous] = "is missing (a run keeps two checkpoints once it has saved two)"
    listed = "; ".join(f"{path} {problem}" for path, problem in problems.items())
    raise CheckpointError(
        f"cannot resume {run_dir}: no usable checkpoint. {listed}. Nothing was trained and no "
        f"checkpoint was changed. Fix: restore {last.parent} from a backup, or train again "
        f"from the run's config: restorekit train {run_dir / 'config.yaml'} --out NEW_FOLDER"
    )


def save_checkpoint(
    run_dir: Path,
    net: nn.Module,
    descriptor: ModelDescriptor,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    step: int,
    best_psnr: float,
    ema: AveragedModel | None = None,
    plan: dict[str, int] | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> None:
    """Write the resume point, then ``last.safetensors`` (``ema``'s averaged weights if given,
    else ``net``'s). ``plan``: the run's length when a time budget fixed it (kept on resume).
    ``scaler``: fp16's loss scaler, kept when enabled so that a resumed run goes on with the
    scale it had reached instead of starting again at 65,536 (and skipping steps to find it)."""
    weights, state = checkpoint_paths(run_dir)
    descriptor = descriptor.model_copy(update={"training": {**descriptor.training, "step": step}})
    payload = {
        "epoch": epoch,
        "step": step,
        "best_psnr": best_psnr,
        "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    if ema is not None:
        payload["ema"] = {k: v.detach().cpu() for k, v in ema.state_dict().items()}
    if plan is not None:
        payload["plan"] = dict(plan)
    if scaler is not None and scaler.is_enabled():
        payload["grad_scaler"] = scaler.state_dict()
    payload[CHECKSUM_KEY] = payload_digest(payload)
    _write_state(state, payload)
    save_model(weights, net if ema is None else ema.module, descriptor)


def load_checkpoint(run_dir: Path, net: nn.Module, ema: AveragedModel | None = None) -> ResumeState:
    """Load the last usable checkpoint of ``run_dir`` into ``net`` (and its weight average into
    ``ema``, train.ema); return what the loop resumes from. A damaged ``last.state.pt`` is
    named in a :class:`CheckpointRecoveryWarning` (and ``ResumeState.recovery``) and
    ``previous.state.pt`` used; :class:`CheckpointError` when neither is usable."""
    weights, _ = checkpoint_paths(run_dir)
    state_path, state, recovery = _choose_state(Path(run_dir))
    if recovery is not None:
        warnings.warn(recovery, CheckpointRecoveryWarning, stacklevel=2)
    if "model" in state:
        load_state(net, state["model"], state_path)
    else:  # an older run: weights in the safetensors file only
        weights_step = read_descriptor(weights).training.get("step") if weights.is_file() else None
        if weights_step != state["step"]:
            raise RestorekitError(
                f"{run_dir}: weights (step {weights_step}) and resume state (step "
                f"{state['step']}) disagree, the last save was interrupted; delete "
                "checkpoints/last.* to restart"
            )
        loaded, _ = load_model_file(weights)
        load_state(net, loaded.state_dict(), weights)
    note = None
    if ema is not None and "ema" in state:
        load_state(ema, state["ema"], state_path)
    elif ema is not None:
        ema.update_parameters(net)  # a copy of the resumed weights: the average starts here
        note = (
            f"train.ema is set but the checkpoint (step {state['step']}) holds no weight "
            "average: the average starts from the resumed weights"
        )
    elif "ema" in state:
        note = (
            f"train.ema is off but the checkpoint (step {state['step']}) holds a weight average: "
            "it is dropped; validation and saved models now use the raw weights"
        )
    torch.set_rng_state(state["torch_rng"])
    return ResumeState(
        state["epoch"],
        state["step"],
        state["best_psnr"],
        state["optimizer"],
        note,
        state.get("plan"),
        recovery,
        state_path,
        state.get("grad_scaler"),
    )
