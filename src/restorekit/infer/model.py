"""A loaded model ready to apply to arrays: ``restorekit.load_model(name_or_path).denoise(img)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from restorekit.errors import ModelLoadError
from restorekit.infer.arrays import apply_to_image
from restorekit.infer.ensemble import self_ensemble
from restorekit.infer.tiling import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_OVERLAP,
    estimate_bytes_per_pixel,
    plan_tiles,
    predict_tiled,
)
from restorekit.nets.files import ModelDescriptor, load_model_file
from restorekit.zoo import resolve_model


class RestorationModel:
    """A network with its descriptor. Arrays in, arrays out, in the caller's dtype.

    Accepted arrays: see :mod:`restorekit.infer.arrays` (H x W or H x W x C, C in 1, 3, 4;
    uint8, uint16 or float; alpha passes through; grey/RGB adapted to the model).

    Size: an image (or batch) whose estimated working memory fits ``max_memory`` bytes runs
    whole, padded to the network's size multiple; a larger one runs in overlapping tiles blended
    without seams (:mod:`restorekit.infer.tiling`), the tile side chosen from ``max_memory``.
    ``tile`` overrides that choice: images whose padded sides fit in it run whole, others in
    tiles of that side. ``overlap`` (input pixels) and ``batch_size`` (tiles per forward pass)
    tune the tiling; all four may be changed on the instance at any time.
    """

    def __init__(
        self,
        net: nn.Module,
        descriptor: ModelDescriptor,
        device: str = "cpu",
        tile: int | None = None,
        max_memory: float = DEFAULT_MAX_MEMORY,
        overlap: int = DEFAULT_OVERLAP,
        batch_size: int = 1,
    ) -> None:
        self.descriptor = descriptor
        self.device = torch.device(device)
        self.channels_last = True
        self.tile = tile
        self.max_memory = max_memory
        self.overlap = overlap
        self.batch_size = batch_size
        self.bytes_per_pixel = estimate_bytes_per_pixel(net, descriptor.net_scale)
        self.net = net.to(self.device).eval()
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        """The network on an N x C x H x W float batch in the model's value range (CPU out).

        Output: N x out_channels x (s H) x (s W), float32, with s the network's own scale
        (``descriptor.net_scale``: 1 for a network that takes bicubic-upscaled input).
        """
        tile, batch_size = plan_tiles(
            batch.shape,
            self.descriptor.size_multiple,
            self.bytes_per_pixel,
            self.tile,
            self.max_memory,
            self.overlap,
            self.batch_size,
        )
        return predict_tiled(
            self.net,
            batch,
            self.descriptor.size_multiple,
            tile,
            self.overlap,
            self.descriptor.net_scale,
            batch_size,
            self.channels_last,
        )

    def denoise(self, image: np.ndarray) -> np.ndarray:
        """Denoised copy of ``image`` (see the class docstring for accepted arrays)."""
        self._require("denoise")

        def run(pixels: np.ndarray) -> np.ndarray:
            return self.run(torch.from_numpy(pixels)).numpy()

        return apply_to_image(run, image, self.descriptor.in_channels)

    def upscale(self, image: np.ndarray, ensemble: bool = False) -> np.ndarray:
        """``image`` upscaled ``descriptor.scale`` times (arrays as for :meth:`denoise`; alpha
        upscaled with bicubic ``imresize`` and clipped; float output not clipped).

        ``ensemble``: the x8 geometric self-ensemble (:mod:`restorekit.infer.ensemble`; 8 passes).
        A network with ``descriptor.upsample_input`` (RED-Net) gets the bicubic-upscaled image.
        """
        self._require("upscale")
        scale = self.descriptor.scale

        def net(pixels: np.ndarray) -> np.ndarray:
            return self.run(torch.from_numpy(pixels)).numpy()

        def run(pixels: np.ndarray) -> np.ndarray:
            if self.descriptor.upsample_input:
                from restorekit.degrade.resize import imresize

                size = (pixels.shape[2] * scale, pixels.shape[3] * scale)
                pixels = np.stack(
                    [imresize(p.transpose(1, 2, 0), output_shape=size) for p in pixels]
                ).transpose(0, 3, 1, 2)
                pixels = np.ascontiguousarray(pixels)
            return self_ensemble(net, pixels) if ensemble else net(pixels)

        return apply_to_image(run, image, self.descriptor.in_channels, scale)

    def _require(self, task: str) -> None:
        have = self.descriptor.task
        if have != task:
            what = f"upscales x{self.descriptor.scale}" if have == "upscale" else "denoises"
            raise ModelLoadError(
                f"this {self.descriptor.arch} model {what}: use {have}(), not {task}() "
                f"(restorekit {have})"
            )


def load_model(
    name_or_path: str | Path,
    device: str | None = None,
    tile: int | None = None,
    max_memory: float = DEFAULT_MAX_MEMORY,
    overlap: int = DEFAULT_OVERLAP,
) -> RestorationModel:
    """Load a shipped model by name, a model file, or a training run folder.

    ``device``: "cpu", "cuda", "cuda:1", ...; by default the GPU when there is one. ``tile``,
    ``max_memory`` (bytes) and ``overlap`` (pixels): see :class:`RestorationModel`.
    """
    net, descriptor = load_model_file(resolve_model(name_or_path))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return RestorationModel(net, descriptor, device, tile, max_memory, overlap)
