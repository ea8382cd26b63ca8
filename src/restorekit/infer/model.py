"""A loaded model ready to apply to arrays: ``restorekit.load_model(name_or_path).denoise(img)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from restorekit.errors import ImageFormatError
from restorekit.infer.predict import predict
from restorekit.nets.files import ModelDescriptor, load_model_file
from restorekit.zoo import resolve_model


class RestorationModel:
    """A network with its descriptor. Arrays in, arrays out, in the caller's dtype.

    Accepted arrays: H x W (grey) or H x W x C with C in {1, 3, 4} (RGBA: alpha passes through
    unchanged), dtype uint8 (0-255), uint16 (0-65535) or float (taken as [0, 1]; values outside are
    allowed and float output is not clipped). Grey images given to an RGB model are replicated to
    RGB and averaged back; RGB images given to a grey model are processed channel by channel.
    """

    def __init__(self, net: nn.Module, descriptor: ModelDescriptor, device: str = "cpu") -> None:
        self.descriptor = descriptor
        self.device = torch.device(device)
        self.channels_last = True
        self.net = net.to(self.device).eval()
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        """The network on an N x C x H x W float batch in the model's value range."""
        out = predict(
            self.net, batch.to(self.device), self.descriptor.size_multiple, self.channels_last
        )
        return out.float().cpu()

    def denoise(self, image: np.ndarray) -> np.ndarray:
        """Denoised copy of ``image`` (see the class docstring for accepted arrays)."""
        array = np.asarray(image)
        if array.ndim == 2:
            return self.denoise(array[..., None])[..., 0]
        if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
            raise ImageFormatError(
                f"expected an H x W or H x W x C image with C in 1, 3, 4; got shape {array.shape}"
            )
        if array.shape[2] == 4:
            return np.concatenate([self.denoise(array[..., :3]), array[..., 3:]], axis=2)
        pixels = _to_unit(array)  # C x H x W
        channels, model_channels = pixels.shape[0], self.descriptor.in_channels
        if channels == model_channels:
            out = self.run(pixels[None])[0]
        elif channels == 1 and model_channels == 3:
            out = self.run(pixels.expand(3, -1, -1)[None])[0].mean(0, keepdim=True)
        elif model_channels == 1:
            out = self.run(pixels[:, None])[:, 0]
        else:
            raise ImageFormatError(
                f"image has {channels} channels; this model takes {model_channels}"
            )
        return _from_unit(out, array.dtype)


def _to_unit(array: np.ndarray) -> torch.Tensor:
    if array.dtype == np.uint8:
        scaled = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        scaled = array.astype(np.float32) / 65535.0
    elif array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ImageFormatError("image contains NaN or infinite values; replace them first")
        scaled = array.astype(np.float32)
    else:
        raise ImageFormatError(f"unsupported image dtype {array.dtype}; use uint8, uint16 or float")
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 0, 1)))


def _from_unit(pixels: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    array = pixels.numpy().transpose(1, 2, 0)
    if dtype == np.uint8:
        return np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.clip(array * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    return array.astype(dtype)


def load_model(name_or_path: str | Path, device: str | None = None) -> RestorationModel:
    """Load a shipped model by name, a model file, or a training run folder.

    ``device``: "cpu", "cuda", "cuda:1", ...; by default the GPU when there is one.
    """
    net, descriptor = load_model_file(resolve_model(name_or_path))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return RestorationModel(net, descriptor, device)
