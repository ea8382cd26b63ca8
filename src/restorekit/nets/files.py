"""Model files: safetensors weights with a JSON descriptor in the file's metadata.

A restorekit model file is self-describing: ``load_model_file`` rebuilds the network from the
descriptor (:class:`restorekit.descriptor.ModelDescriptor`, in the file's metadata) without the
caller naming the architecture. Weights are read with safetensors only
(no unpickling); a legacy PyTorch state dict (.pt/.pth) is read with ``weights_only=True`` and
needs the descriptor from the caller.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from restorekit.descriptor import METADATA_KEY, ModelDescriptor, read_descriptor
from restorekit.errors import ModelLoadError
from restorekit.io import atomic_write
from restorekit.nets import build_net
from restorekit.nets.colour import NOT_CARRIED, adapt_colour
from restorekit.nets.storage import (
    MIN_INT8_VALUES,
    Storage,
    dequantize,
    is_scale,
    stored_tensors,
)


def save_model(
    path: str | Path,
    net: nn.Module,
    descriptor: ModelDescriptor,
    storage: Storage = "float32",
    int8_min_values: int = MIN_INT8_VALUES,
) -> None:
    """Write ``net``'s weights and ``descriptor`` to a safetensors file, atomically.

    ``storage`` (:mod:`restorekit.nets.storage`): ``float32`` as trained; ``float16`` (half
    the bytes) or ``int8`` (convolution weights in int8 with per-channel scales, about a
    quarter; weights of fewer than ``int8_min_values`` values stay float16) as the zoo stores
    its models. Loading reads every storage back into the network's
    own float32, so a storage never changes how the model runs, only its rounding.
    """
    tensors = stored_tensors(net, storage, int8_min_values)
    metadata = {METADATA_KEY: descriptor.model_dump_json()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
"""Tensor names of batch-norm statistics: stored with the weights, not learned parameters."""


def count_parameters(path: str | Path) -> int:
    """Number of learned parameters in a safetensors file (batch-norm statistics excluded),
    from the tensors' shapes alone."""
    with safe_open(str(path), framework="pt") as handle:
        return sum(
            math.prod(handle.get_slice(name).get_shape())
            for name in handle.keys()  # noqa: SIM118 - safe_open has no __iter__
            if not name.endswith(BUFFER_SUFFIXES) and not is_scale(name)
        )


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a model file or plain state dict, refused when any holds NaN or inf."""
    tensors = _read_tensor_file(path)
    damaged = {
        name: int((~torch.isfinite(t)).sum())
        for name, t in tensors.items()
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    }
    if damaged:
        named = ", ".join(f"{name} ({count})" for name, count in list(damaged.items())[:4])
        more = f" and {len(damaged) - 4} more" if len(damaged) > 4 else ""
        raise ModelLoadError(
            f"{path}: damaged weights: {len(damaged)} tensor(s) hold NaN or infinite values "
            f"({named}{more}): the file was corrupted, or saved from a training run that "
            "diverged. Nothing was run. Fix: use another copy (a run's "
            "checkpoints/best.safetensors, or the shipped model)"
        )
    return tensors


def _read_tensor_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dequantize(load_file(str(path)))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling refusal is reported the same way
        raise ModelLoadError(
            f"{path}: refused to load: not a plain state dict of tensors ({type(error).__name__}); "
            "restorekit never unpickles arbitrary objects"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path}: not a state dict (a mapping of names to tensors)")
    return state


def _mismatches(expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> list[str]:
    """Missing, unexpected and wrongly shaped tensors, each named; empty when they fit."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [
        f"{k} {tuple(tensors[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append("missing tensors: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected tensors: " + ", ".join(unexpected))
    if wrong:
        problems.append("wrong shapes: " + ", ".join(wrong))
    return problems


def load_state(net: nn.Module, tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """Load ``tensors`` into ``net`` strictly; a mismatch error names every offending tensor."""
    problems = _mismatches(net.state_dict(), tensors)
    if problems:
        raise ModelLoadError(
            f"{source}: weights do not fit the architecture; " + "; ".join(problems)
        )
    net.load_state_dict(tensors)  # copies into the network's float32 tensors: float16 is upcast


def load_state_except(
    net: nn.Module,
    tensors: dict[str, torch.Tensor],
    source: str | Path,
    skip_prefixes: str | tuple[str, ...] = ("upsample.",),
) -> list[str]:
    """Load every tensor but those whose names start with ``skip_prefixes``; return the names.

    For initialising a network from one that differs only in the skipped part, e.g. EDSR x3 or
    x4 from x2 weights: everything but the upsampler (``upsample.*``) is copied and the
    upsampler keeps its fresh initialisation. Skipped tensors are ignored on both sides; any
    other missing, unexpected or wrongly shaped tensor is an error naming it, as in
    ``load_state``.
    """
    prefixes = (skip_prefixes,) if isinstance(skip_prefixes, str) else tuple(skip_prefixes)

    def kept(names: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v for k, v in names.items() if not k.startswith(prefixes)}

    shared = kept(tensors)
    problems = _mismatches(kept(net.state_dict()), shared)
    if problems:
        raise ModelLoadError(
            f"{source}: weights do not fit the architecture (skipping "
            f"{', '.join(prefixes) or 'nothing'}); " + "; ".join(problems)
        )
    net.load_state_dict(shared, strict=False)
    return sorted(shared)


def init_from_model_file(
    net: nn.Module, arch: str, path: str | Path, channels: tuple[int, int] | None = None
) -> tuple[list[str], list[str], list[str]]:
    """Copy the weights of the restorekit model file ``path`` into ``net`` (built as ``arch``
    for ``channels`` = (in, out), when given), as the starting point of a training run; return
    the names loaded, the names left as initialised and, among the loaded, those adapted.

    The file must hold the same architecture. EDSR of another scale: every tensor but the
    upsampler's (``upsample.*``, see :func:`load_state_except`), as the paper starts x3 and x4
    from x2. Grey from RGB or RGB from grey: every tensor, those that read or write the image
    adapted (:mod:`restorekit.nets.colour`). Otherwise every tensor, strictly (a mismatch is an
    error naming the tensors).
    """
    path = Path(path)
    descriptor = read_descriptor(path)
    if descriptor.arch != arch:
        raise ModelLoadError(
            f"{path}: holds a {descriptor.arch!r} network; cannot initialise a {arch!r} from it"
        )
    source_channels = (descriptor.in_channels, descriptor.out_channels)
    if channels is not None and channels != source_channels:
        if arch in NOT_CARRIED:
            raise ModelLoadError(
                f"{path}: a {arch} network of {source_channels[0]} channels cannot start one of "
                f"{channels[0]}: {NOT_CARRIED[arch]}; train it without --init-from"
            )
        source, _ = load_model_file(path, descriptor)
        adapted = adapt_colour(
            source, source_channels, net, channels, descriptor.size_multiple, str(path)
        )
        return sorted(net.state_dict()), [], sorted(adapted)
    tensors = _read_tensors(path)
    if arch == "edsr" and descriptor.scale != getattr(net, "scale", descriptor.scale):
        loaded = load_state_except(net, tensors, path, ("upsample.",))
    else:
        load_state(net, tensors, path)
        loaded = sorted(tensors)
    return loaded, sorted(set(net.state_dict()) - set(loaded)), []


def load_model_file(
    path: str | Path, descriptor: ModelDescriptor | None = None
) -> tuple[nn.Module, ModelDescriptor]:
    """Rebuild the network of a model file and load its weights (CPU, eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    if descriptor is None:
        if path.suffix != ".safetensors":
            raise ModelLoadError(_not_a_model_file(path))
        descriptor = read_descriptor(path)
    net = build_net(descriptor.arch, **descriptor.arch_args)
    load_state(net, _read_tensors(path), path)
    return net.eval(), descriptor


def _not_a_model_file(path: Path) -> str:
    """Why ``path`` (not .safetensors) cannot be loaded as a model, and what to give instead."""
    if path.name.endswith(".state.pt") and path.parent.name == "checkpoints":
        run = path.parent.parent
        return (
            f"{path} is a restorekit run's resume point (continue training with `restorekit "
            f"train --resume {run}`), not a model file; give the run folder {run} (its "
            f"model.safetensors, or checkpoints/best.safetensors while it trains) as --model"
        )
    if path.suffix.lower() in (".pt", ".pth", ".ckpt", ".bin", ".tar"):
        return (
            f"{path} is a PyTorch checkpoint: it holds weights but not restorekit's descriptor "
            "(which network, its settings, what it was trained for), so it cannot be loaded "
            "as a model. The authors' published checkpoints (Neighbor2Neighbor, EDSR-PyTorch) "
            f"convert once: restorekit import {path} --arch ne2ne-unet|edsr-baseline|edsr "
            "-o model.safetensors, then --model model.safetensors. For a restorekit training "
            "run, give its run folder or the model.safetensors in it"
        )
    return (
        f"{path} is not a restorekit model file: give a .safetensors file written by restorekit "
        "(a run folder's model.safetensors), a run folder, an .onnx file or a shipped model "
        "name (`restorekit models`)"
    )
