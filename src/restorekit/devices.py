"""Device names a user types: ``cpu``, ``cuda`` or ``cuda:N``; none means the GPU if any."""

from __future__ import annotations

import re

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
