"""Training patches cut on the training device itself, a whole batch at a time.

For a GPU the CPU loader's work (one crop, flip and float conversion per sample, then a copy
to the device) is replaced by images resident on the device (as decoded: uint8, uint16, or the
float32 of ``data.noise_once``), packed once into one zero-padded tensor, and one gather that
cuts, flips and rotates every patch of a batch, then the conversion to [0, 1] floats. Only the
crop positions are drawn on the host, by the very function the CPU path uses
(:func:`restorekit.data.patches.draw_crop` from each sample's seed), so a batch is the same
patches as :class:`restorekit.data.patches.PatchDataset` gives (tested), with any batch split,
number of processes or resume.

Memory: the images padded to the largest height and width, e.g. 200 BSD200 images (481 x 481 x
3 uint8) take 139 MB.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from restorekit.data.patches import PatchDataset, draw_crop
from restorekit.devices import to_device
from restorekit.randomness import derive_seed

_SCALE = {torch.uint8: 255.0, torch.int32: 65535.0}  # uint16 images are held as int32


class DevicePatches:
    """The images of a :class:`PatchDataset` on ``device``; :meth:`batches` cuts the patches of
    the sampler's keys, ``batch_size`` at a time, as the loader's dicts (``image`` and
    ``partner``: N x C x P x P float32 in [0, 1] on the device; ``seed``: N int64 on the host)."""

    def __init__(self, dataset: PatchDataset, device: torch.device | str) -> None:
        self.dataset, self.device = dataset, torch.device(device)
        self.sizes = [dataset._pad(a).shape[:2] for a in dataset.images]
        self.images = self._pack(dataset.images)
        self.partners = self._pack(dataset.partners) if dataset.partners is not None else None

    def _pack(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """N x H x W x C on the device: each (reflect-padded to the patch, as the CPU path)
        image at the top left, zeros beyond it (never cut: crops stay inside each image)."""
        padded = [self.dataset._pad(a) for a in arrays]
        height = max(a.shape[0] for a in padded)
        width = max(a.shape[1] for a in padded)
        first = padded[0]
        dtype = np.int32 if first.dtype == np.uint16 else first.dtype
        pack = np.zeros((len(padded), height, width, first.shape[2]), dtype)
        for i, a in enumerate(padded):
            pack[i, : a.shape[0], : a.shape[1]] = a
        return torch.from_numpy(pack).to(self.device)

    def batches(self, keys: Iterable[tuple[int, int]], batch_size: int) -> Iterator[dict]:
        """The sampler's keys in batches of ``batch_size`` (a last, shorter batch is dropped,
        as the loader's ``drop_last``)."""
        chunk: list[tuple[int, int]] = []
        for key in keys:
            chunk.append(key)
            if len(chunk) == batch_size:
                yield self.cut(chunk)
                chunk = []

    def cut(self, keys: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        """The patches of ``keys`` (``(image_index, sample_seed)``, as :class:`EpochSampler`
        yields them)."""
        size, augment = self.dataset.patch_size, self.dataset.augment
        rows = []
        for index, seed in keys:
            height, width = self.sizes[index]
            rows.append(
                (index, *draw_crop(np.random.default_rng(seed), height, width, size, augment))
            )
        index, top, left, op = to_device(torch.tensor(rows, dtype=torch.int64).T, self.device)
        source_row, source_col = _dihedral_sources(top, left, op, size)
        sample = {
            "image": self._gather(self.images, index, source_row, source_col),
            "seed": torch.tensor([derive_seed(seed, 1) for _, seed in keys]),
        }
        if self.partners is not None:
            sample["partner"] = self._gather(self.partners, index, source_row, source_col)
        return sample

    @staticmethod
    def _gather(
        pack: torch.Tensor, index: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
    ) -> torch.Tensor:
        patches = pack[index[:, None, None], rows, cols]  # N x P x P x C
        scale = _SCALE.get(pack.dtype)
        patches = patches.float() / scale if scale else patches.float()
        return patches.permute(0, 3, 1, 2).contiguous()


def _dihedral_sources(
    top: torch.Tensor, left: torch.Tensor, op: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image rows and columns (N x P x P) of each output pixel of a patch cut at (top, left)
    and transformed as :func:`restorekit.dihedral.transform` does: a left-right flip
    when ``op & 4``, then ``op & 3`` quarter turns counter-clockwise (``np.rot90``)."""
    i = torch.arange(size, device=top.device).view(1, size, 1).expand(len(op), size, size)
    j = torch.arange(size, device=top.device).view(1, 1, size).expand(len(op), size, size)
    last = size - 1
    turns = (op & 3).view(-1, 1, 1)
    # np.rot90 k times: out[i, j] = in[j, last - i] (k=1), in[last - i, last - j] (k=2),
    # in[last - j, i] (k=3)
    row = torch.where(
        turns == 0, i, torch.where(turns == 1, j, torch.where(turns == 2, last - i, last - j))
    )
    col = torch.where(
        turns == 0, j, torch.where(turns == 1, last - i, torch.where(turns == 2, last - j, i))
    )
    col = torch.where((op & 4).view(-1, 1, 1) > 0, last - col, col)  # the flip came first
    return top.view(-1, 1, 1) + row, left.view(-1, 1, 1) + col
