"""A loaded model ready to apply to arrays: ``restorekit.load_model(name_or_path).denoise(img)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from numpy.typing import DTypeLike
from torch import nn

from restorekit.data.stacks import Normalization, unit_scale
from restorekit.errors import ImageFormatError, ModelLoadError
from restorekit.infer.arrays import apply_to_image
from restorekit.infer.ensemble import self_ensemble
from restorekit.infer.tiling import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_OVERLAP,
    estimate_bytes_per_pixel,
    plan_tiles,
    predict_tiled,
)
from restorekit.io.axes import from_canonical, to_canonical
from restorekit.io.stacks import check_finite
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
        self.channels_last = descriptor.arch_args.get("dims", 2) == 2  # no 5D channels_last
        record = getattr(descriptor, "normalization", None)
        self.normalization = Normalization.from_record(record) if record else None
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
        Volumes: N x C x D x H x W. A model trained with per-channel normalisation
        (``descriptor.normalization``) normalises the input and undoes it on the output here.
        """
        if self.normalization is not None:
            batch = torch.from_numpy(self.normalization.apply(batch.numpy().swapaxes(0, 1)))
            batch = batch.transpose(0, 1).contiguous()
        tile, batch_size = plan_tiles(
            batch.shape,
            self.descriptor.size_multiple,
            self.bytes_per_pixel,
            self.tile,
            self.max_memory,
            self.overlap,
            self.batch_size,
        )
        out = predict_tiled(
            self.net,
            batch,
            self.descriptor.size_multiple,
            tile,
            self.overlap,
            self.descriptor.net_scale,
            batch_size,
            self.channels_last,
        )
        if self.normalization is not None:
            out = torch.from_numpy(self.normalization.undo(out.numpy().swapaxes(0, 1)))
            out = out.transpose(0, 1).contiguous()
        return out

    def denoise(self, image: np.ndarray, ensemble: bool = False) -> np.ndarray:
        """Denoised copy of ``image`` (see the class docstring for accepted arrays);
        ``ensemble``: the mean over the 8 flips/rotations (test-time augmentation, 8 passes)."""
        self._require("denoise")

        def net(pixels: np.ndarray) -> np.ndarray:
            return self.run(torch.from_numpy(np.ascontiguousarray(pixels))).numpy()

        def run(pixels: np.ndarray) -> np.ndarray:
            return self_ensemble(net, pixels) if ensemble else net(pixels)

        return apply_to_image(run, image, self.descriptor.in_channels)

    def denoise_stack(
        self, array: np.ndarray, axes: str, ensemble: bool = False, dtype: DTypeLike = None
    ) -> np.ndarray:
        """Denoised copy of a stack or volume laid out as ``axes`` (e.g. ``SZYX``, ``YXC``;
        :mod:`restorekit.io.axes`), one S slice at a time, in tiles when large.

        Values: uint8 / uint16 scaled to [0, 1] for the network and back (rounded, clipped),
        float as is. ``dtype`` (default: the input's) sets the output type; float output of
        integer input keeps the input's value scale (e.g. 0-65535). ``ensemble``: the mean over
        the 8 flips/rotations in the YX plane (8 passes).
        """
        self._require("denoise")
        canonical = to_canonical(np.asanyarray(array), axes)
        check_finite(canonical, "stack")
        if canonical.shape[1] != self.descriptor.in_channels:
            raise ImageFormatError(
                f"the stack has {canonical.shape[1]} channel(s) (axes {axes}); this model takes "
                f"{self.descriptor.in_channels}"
            )
        dims = self.descriptor.arch_args.get("dims", 2)
        if canonical.ndim - 2 != dims:
            raise ImageFormatError(
                f"this model is {dims}D: give axes "
                + (
                    "with Z (e.g. ZYX, SZYX)"
                    if dims == 3
                    else "without Z (e.g. YX, SYX); a Z stack is denoised slice by slice with S"
                )
            )
        unit = unit_scale(canonical.dtype)

        def net(pixels: np.ndarray) -> np.ndarray:
            return self.run(torch.from_numpy(np.ascontiguousarray(pixels))).numpy()

        out = np.empty(canonical.shape, np.float32)
        for s in range(canonical.shape[0]):
            pixels = np.asarray(canonical[s : s + 1], dtype=np.float32) / np.float32(unit)
            out[s : s + 1] = self_ensemble(net, pixels) if ensemble else net(pixels)
        out_dtype = np.dtype(dtype or canonical.dtype)
        if out_dtype.kind == "f":
            result = (out * unit).astype(out_dtype)
        else:
            top = unit_scale(out_dtype)
            result = np.clip(out * top + 0.5, 0, top).astype(out_dtype)
        return from_canonical(result, axes, np.shape(array))

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
