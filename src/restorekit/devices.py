"""Devices: the names a user types (``cpu``, ``cuda`` or ``cuda:N``; none means the GPU if
any), and copies to a GPU that do not make the host wait for it.

A host-to-GPU copy from ordinary (pageable) memory waits until the GPU has finished what was
queued before it; inside a training step each such copy stalls the queue. :func:`to_device`
copies from page-locked memory without waiting, and :func:`constant_on` keeps one copy per
device of the small constant tables a step uses (index tables, window offsets).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable

import torch

from restorekit.errors import ConfigError

_FORMS = "cpu, cuda or cuda:N (N: the GPU's number, from 0)"


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The torch device ``name`` stands for, checked against this machine.

    ``None``: the first GPU when PyTorch sees one, else the CPU. A name of another form, a GPU
    on a machine (or a PyTorch build) without CUDA, or a GPU number beyond those present is a
    :class:`ConfigError` that says what is accepted and what there is.
    """
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    text = str(name).strip().lower()
    match = re.fullmatch(r"cpu|cuda(?::(\d+))?", text)
    if match is None:
        raise ConfigError(f"unknown device {str(name)!r}: use {_FORMS}")
    if text == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        why = "this PyTorch build has no CUDA" if torch.version.cuda is None else "none is visible"
        raise ConfigError(
            f"device {str(name)!r}: PyTorch {torch.__version__} sees no CUDA GPU ({why}); "
            "use cpu (or leave the device out: the GPU is taken when there is one)"
        )
    count = torch.cuda.device_count()
    if int(match.group(1) or 0) >= count:
        raise ConfigError(
            f"device {str(name)!r}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}"
        )
    return torch.device(text)


def bf16_is_native(device: torch.device) -> bool:
    """Whether bfloat16 runs at full speed on ``device``: a CUDA GPU with bf16 (Ampere and
    later), or a CPU whose oneDNN has native bf16 (AVX512-BF16 or AMX). Elsewhere bf16 is
    emulated and slower than fp32 (an AVX2 CPU trains EDSR several times slower in bf16)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def fastest_training_precision(device: torch.device) -> str:
    """``bf16`` where it is native on ``device`` (:func:`bf16_is_native`), else ``fp32``: the
    precision of the trainings that pick it for the user (the web app, napari)."""
    return "bf16" if bf16_is_native(device) else "fp32"


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device``; from the host to a GPU through page-locked memory, without
    making the host wait (PyTorch's caching host allocator keeps the pinned block until the
    copy is done, so the host tensor may go at once)."""
    if device.type != "cuda" or tensor.device.type != "cpu":
        return tensor.to(device)
    if not tensor.is_pinned():
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


_CONSTANTS: dict[tuple[Hashable, torch.device], torch.Tensor] = {}


def constant_on(
    device: torch.device, key: Hashable, make: Callable[[], torch.Tensor]
) -> torch.Tensor:
    """``make()`` on ``device``, made and copied once per (``key``, device); callers must not
    modify it in place. ``key`` names what ``make`` computes, with its arguments."""
    cached = _CONSTANTS.get((key, device))
    if cached is None:
        cached = _CONSTANTS[(key, device)] = make().to(device)
    return cached
