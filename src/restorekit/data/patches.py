"""Random training patches drawn reproducibly, so that a resumed run sees the same data.

Every sample is a pure function of (seed, epoch, position): the sampler yields keys
``(image_index, sample_seed)``; the data set crops and augments from ``sample_seed`` alone. This
holds with any number of loader workers and makes mid-epoch resumption exact.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from restorekit import dihedral
from restorekit.io import array_to_float
from restorekit.randomness import derive_seed


class EpochSampler(Sampler[tuple[int, int]]):
    """Shuffled keys of one epoch, each image ``repeat`` times, from global position ``start``.

    In a distributed run each global batch of ``world_size x local_batch`` positions is split in
    rank order: rank ``r`` takes positions whose ``(position // local_batch) % world_size == r``,
    so the union of all ranks' batches is exactly the single-process batch.
    """

    def __init__(
        self,
        n_images: int,
        repeat: int,
        seed: int,
        epoch: int,
        start: int = 0,
        rank: int = 0,
        world_size: int = 1,
        local_batch: int = 1,
    ) -> None:
        self.n_images, self.repeat, self.seed, self.epoch = n_images, repeat, seed, epoch
        self.start, self.rank, self.world_size, self.local_batch = (
            start,
            rank,
            world_size,
            local_batch,
        )

    def _positions(self) -> range | list[int]:
        positions = range(self.start, self.n_images * self.repeat)
        if self.world_size == 1:
            return positions
        return [p for p in positions if (p // self.local_batch) % self.world_size == self.rank]

    def __len__(self) -> int:
        return len(self._positions())

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng(derive_seed(self.seed, self.epoch))
        order = rng.permutation(self.n_images * self.repeat) % self.n_images
        for position in self._positions():
            yield int(order[position]), derive_seed(self.seed, self.epoch, position)


def draw_crop(
    rng: np.random.Generator, height: int, width: int, size: int, augment: bool
) -> tuple[int, int, int]:
    """Top, left (of a ``size`` square in a ``height`` x ``width`` image) and augmentation op,
    drawn from ``rng`` in this order (op 0 when ``augment`` is off)."""
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    op = int(rng.integers(0, 8)) if augment else 0
    return top, left, op


class PatchDataset(Dataset):
    """Random ``patch_size`` crops of in-memory images, as C x H x W float32 tensors in [0, 1].

    ``partners`` (optional) are images aligned with ``images`` (Noise2Noise pairs): they get the
    same crop and augmentation. Images smaller than the patch are reflect-padded.
    """

    def __init__(
        self,
        images: list[np.ndarray],
        patch_size: int,
        augment: bool,
        partners: list[np.ndarray] | None = None,
    ) -> None:
        self.images, self.partners = images, partners
        self.patch_size, self.augment = patch_size, augment

    def __len__(self) -> int:
        return len(self.images)

    def _crop(self, array: np.ndarray, top: int, left: int, op: int) -> torch.Tensor:
        array = self._pad(array)[top : top + self.patch_size, left : left + self.patch_size]
        return torch.from_numpy(array_to_float(dihedral.transform(array, op, (0, 1))))

    def _pad(self, array: np.ndarray) -> np.ndarray:
        pad_h = max(0, self.patch_size - array.shape[0])
        pad_w = max(0, self.patch_size - array.shape[1])
        if pad_h or pad_w:
            array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
        return array

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = key
        rng = np.random.default_rng(seed)
        height, width = (max(s, self.patch_size) for s in self.images[index].shape[:2])
        top, left, op = draw_crop(rng, height, width, self.patch_size, self.augment)
        sample = {
            "image": self._crop(self.images[index], top, left, op),
            "seed": torch.tensor(derive_seed(seed, 1)),  # the sample's stream for noise and masks
        }
        if self.partners is not None:
            sample["partner"] = self._crop(self.partners[index], top, left, op)
        return sample
