"""Start a network for grey images from one trained on RGB, or the other way round.

A grey image is an RGB image whose three channels are equal, so the weights of one carry over
exactly to the other:

- **grey from RGB**: the grey network computes what the RGB network computes on the grey image
  replicated to three channels, averaged over its three output channels. The weights that read
  the image sum their three colour columns into one; the weights (and biases) that write the
  result average their three rows into one.
- **RGB from grey**: on an RGB image with three equal channels the RGB network gives the grey
  network's result in each channel. Each colour column of the weights that read the image is a
  third of the grey column; the rows that write the result are repeated.

The networks must be the same architecture with only the channel counts differing. The
tensors that read the image are found by shape: their input dimension differs by as many
columns as the channel counts do, and the image's columns are taken to be the last ones (the
image itself, or the image concatenated after the features as in this package's U-Nets);
transposed convolutions (weights laid out in x out x kernel) are read the other way round. The
result is then checked, before anything is loaded, by running both networks on a random image:
a network that wires its input otherwise is refused, never silently adapted. EDSR is refused
up front: it subtracts a fixed mean per colour channel (:data:`NOT_CARRIED`).

This is a starting point for training (``restorekit train ... --init-from``), not a finished
model: a network trained on RGB noise, independent per channel, sees a grey image's noise as
the same in all three channels.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from restorekit.errors import ModelLoadError

ADAPTABLE = ((3, 1), (1, 3))
"""The (source, target) channel counts that carry over exactly."""
CHECK_TOLERANCE = 1e-4
"""Largest difference allowed between the adapted network and the source, relative to the
larger of 1 and the source's largest output (fp32, [0, 1] input)."""
NOT_CARRIED = {
    "edsr": "EDSR subtracts a fixed mean per colour channel (DIV2K's RGB mean) before its first "
    "layer, which no weights of another channel count reproduce",
}
"""Architectures whose weights cannot carry over between grey and RGB, and why."""


def adapt_colour(
    source: nn.Module,
    source_channels: tuple[int, int],
    target: nn.Module,
    target_channels: tuple[int, int],
    size_multiple: int,
    label: str,
) -> list[str]:
    """Load ``source``'s weights into ``target`` across a change of (in, out) channels and check
    the result; return the names of the tensors that were adapted (the others are copied).

    ``label`` names the source in errors; ``size_multiple`` is the network's input multiple.
    ``target`` is left untouched when the weights do not carry over (a ModelLoadError says why).
    """
    pairs = list(zip(source_channels, target_channels, strict=True))
    if any(src != tgt and (src, tgt) not in ADAPTABLE for src, tgt in pairs):
        raise ModelLoadError(
            f"{label}: a network of {source_channels[0]} -> {source_channels[1]} channels cannot "
            f"start one of {target_channels[0]} -> {target_channels[1]}: only grey (1) and RGB "
            "(3) carry over to each other"
        )
    (src_in, tgt_in), (src_out, tgt_out) = pairs
    weights, expected_state = source.state_dict(), target.state_dict()
    extra = sorted(set(weights) - set(expected_state))
    if extra:
        raise ModelLoadError(f"{label}: has tensors the new network lacks ({', '.join(extra)})")
    transposed = {
        f"{name}.weight"
        for name, module in target.named_modules()
        if isinstance(module, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d)
    }
    adapted_state, adapted = {}, []
    for name, expected in expected_state.items():
        tensor = weights.get(name)
        if tensor is None:
            raise ModelLoadError(f"{label}: has no tensor {name}; not the same architecture")
        if tensor.shape != expected.shape:
            flip = name in transposed  # in x out x kernel: the image dimensions swap places
            shape = tuple(expected.transpose(0, 1).shape if flip else expected.shape)
            tensor = _adapt(
                tensor.transpose(0, 1) if flip else tensor,
                shape,
                (src_in, tgt_in),
                (src_out, tgt_out),
            )
            if tensor is not None and flip:
                tensor = tensor.transpose(0, 1).contiguous()
            if tensor is None:
                raise ModelLoadError(
                    f"{label}: {name} is {tuple(weights[name].shape)}, the new network's "
                    f"{tuple(expected.shape)}: more differs than the colour channels"
                )
            adapted.append(name)
        adapted_state[name] = tensor
    # checked on CPU float32 copies before the target is touched: the target may already sit
    # on a GPU, whose TF32 convolutions differ from the CPU's float32 by more than the tolerance
    source_cpu, candidate = (copy.deepcopy(n).to("cpu", torch.float32) for n in (source, target))
    candidate.load_state_dict(adapted_state)
    _check(source_cpu, candidate, (src_in, tgt_in), (src_out, tgt_out), size_multiple, label)
    target.load_state_dict(adapted_state)
    return adapted


def _adapt(
    tensor: torch.Tensor,
    shape: tuple[int, ...],
    inputs: tuple[int, int],
    outputs: tuple[int, int],
) -> torch.Tensor | None:
    """``tensor`` reshaped to ``shape`` by the rules of the module docstring, or None."""
    (src_in, tgt_in), (src_out, tgt_out) = inputs, outputs
    if tensor.shape[0] != shape[0]:
        if (tensor.shape[0], shape[0]) != (src_out, tgt_out):
            return None
        tensor = tensor.mean(0, keepdim=True) if tgt_out == 1 else tensor.repeat_interleave(3, 0)
    if tensor.shape[1:] == shape[1:]:
        return tensor
    if len(shape) < 2 or tensor.shape[2:] != shape[2:]:
        return None
    if tensor.shape[1] - shape[1] != src_in - tgt_in or tensor.shape[1] < src_in:
        return None
    features, image = tensor[:, : tensor.shape[1] - src_in], tensor[:, tensor.shape[1] - src_in :]
    image = image.sum(1, keepdim=True) if tgt_in == 1 else (image / 3).repeat_interleave(3, 1)
    return torch.cat([features, image], dim=1)


@torch.no_grad()
def _check(
    source: nn.Module,
    target: nn.Module,
    inputs: tuple[int, int],
    outputs: tuple[int, int],
    size_multiple: int,
    label: str,
) -> None:
    """Refuse the adaptation unless ``target`` computes what the module docstring says (both
    networks are the caller's CPU float32 copies)."""
    first_weight = next(p for p in target.parameters() if p.ndim >= 3)
    side = max(size_multiple, 16) * 2
    grey = torch.rand(
        1, 1, *([side] * (first_weight.ndim - 2)), generator=torch.Generator().manual_seed(0)
    )
    source.eval(), target.eval()  # copies: the caller's networks keep their modes
    # each network sees the grey image replicated to its input channels; the source's result is
    # then averaged (3 -> 1) or repeated (1 -> 3) to the target's output channels
    expected = source(grey.expand(-1, inputs[0], *grey.shape[2:]))
    if outputs == (3, 1):
        expected = expected.mean(1, keepdim=True)
    elif outputs == (1, 3):
        expected = expected.expand(-1, 3, *expected.shape[2:])
    got = target(grey.expand(-1, inputs[1], *grey.shape[2:]))
    difference = (got - expected).abs().max().item()
    if difference > CHECK_TOLERANCE * max(1.0, expected.abs().max().item()):
        raise ModelLoadError(
            f"{label}: its weights do not carry over from {inputs[0]} to {inputs[1]} channels "
            f"for this network (the adapted network differs by {difference:.2g} on a test "
            "image): train it from scratch instead of --init-from"
        )
