"""Training patches from TIFF stacks and volumes (Noise2Void's data path).

Arrays are canonical S x C x (Z) x Y x X (:mod:`restorekit.io.axes`), usually memory-mapped:
a patch reads only its own pages, so a data set larger than memory trains without being loaded.
One data-set item is one S slice; each draw crops a random C x (patch_depth) x patch_size x
patch_size patch, flips / rotates it in the YX plane and normalises it per channel.

Values: integers are first scaled to [0, 1] (uint8 / 255, uint16 / 65535; float as stored), as
for 2D images, then normalised with ``(x - offset) / scale`` per channel
(:class:`Normalization`), the statistics computed on the training data and stored with the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from restorekit import dihedral
from restorekit.errors import ConfigError, ImageFormatError, ImageReadError
from restorekit.io.stacks import STACK_EXTENSIONS, read_stack
from restorekit.io.zarr_stacks import is_zarr
from restorekit.normalization import Normalization
from restorekit.pixels import to_unit
from restorekit.randomness import derive_seed

PERCENTILES = (1.0, 99.8)
STATS_BUDGET = 1 << 22
"""Values per channel used for the statistics: beyond this, they come from random patches."""


def list_stacks(sources: list[Path]) -> list[Path]:
    """Stacks given directly (TIFF files, zarr stores) or found (sorted, not recursively) in
    folders: TIFF files and zarr stores."""
    files: list[Path] = []
    for source in sources:
        if is_zarr(source):
            files.append(source)
        elif source.is_dir():
            found = sorted(
                p for p in source.iterdir() if p.suffix.lower() in STACK_EXTENSIONS or is_zarr(p)
            )
            if not found:
                raise ImageReadError(
                    f"{source}: no stacks (TIFF .tif/.tiff, zarr stores) in this folder"
                )
            files += found
        elif source.is_file():
            files.append(source)
        else:
            raise ImageReadError(f"{source}: no such file or folder")
    return files


def self_describing(sources: list[Path]) -> bool:
    """Whether any source (or a file in a source folder) is a stack that names its own axes: a
    zarr store or an OME-TIFF. Such inputs are denoised as stacks without ``--axes``."""
    from restorekit.io.stacks import read_ome_tiff

    def named(path: Path) -> bool:
        if is_zarr(path):
            return True
        return path.suffix.lower() in STACK_EXTENSIONS and read_ome_tiff(path) is not None

    return any(
        named(p) or (p.is_dir() and not is_zarr(p) and any(named(q) for q in p.iterdir()))
        for p in sources
    )


def load_stacks(sources: list[Path], axes: str | None, channels: int) -> list[np.ndarray]:
    """The stacks as canonical arrays (memory-mapped when possible); C must equal ``channels``."""
    paths = list_stacks(sources)
    stacks = [read_stack(path, axes) for path in paths]
    for path, stack in zip(paths, stacks, strict=True):
        if stack.shape[1] != channels:
            raise ImageFormatError(
                f"{path}: {stack.shape[1]} channel(s) (axes {axes}), the model takes {channels}: "
                "set model.in_channels / out_channels (trained jointly, or each channel on its "
                "own with model.independent_channels=true)"
            )
    return stacks


def split_slices(
    stacks: list[np.ndarray], val_fraction: float
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(training, validation) S slices as (stack, s) pairs: the last ``val_fraction`` held out."""
    slices = [(k, s) for k, stack in enumerate(stacks) for s in range(stack.shape[0])]
    if not val_fraction:
        return slices, []
    n_val = max(1, round(len(slices) * val_fraction))
    if n_val >= len(slices):
        raise ConfigError(
            f"data.val_fraction={val_fraction} holds out whole S slices but the data have "
            f"{len(slices)}; give more slices (axes with S) or set data.val_fraction=0"
        )
    return slices[:-n_val], slices[-n_val:]


def compute_normalization(
    stacks: list[np.ndarray],
    slices: list[tuple[int, int]],
    kind: str,
    patch_shape: tuple[int, ...],
    seed: int = 0,
) -> tuple[Normalization, dict]:
    """Per-channel statistics of the training slices (all values, or random ``patch_shape``
    patches up to :data:`STATS_BUDGET` values per channel) and the descriptor record."""
    channels = stacks[0].shape[1]
    total = sum(int(np.prod(stacks[k].shape[2:])) for k, _ in slices)
    if total <= STATS_BUDGET:
        parts = [_unit(stacks[k][s]) for k, s in slices]
    else:
        rng = np.random.default_rng(derive_seed(seed, 7))
        count = max(1, STATS_BUDGET // int(np.prod(patch_shape)))
        parts = [_random_patch(stacks, slices, patch_shape, rng) for _ in range(count)]
    values = np.concatenate([p.reshape(channels, -1) for p in parts], axis=1)
    del parts
    if kind == "meanstd":
        mean = values.mean(axis=1, dtype=np.float64)
        std = values.std(axis=1, dtype=np.float64)
        record = {"kind": kind, "mean": mean.tolist(), "std": std.tolist()}
        spread = std
    else:
        low, high = np.percentile(values, PERCENTILES, axis=1)
        record = {"kind": kind, "low": low.tolist(), "high": high.tolist()}
        record["percentiles"] = list(PERCENTILES)
        spread = high - low
    flat = [c for c in range(channels) if not spread[c] > 0]
    if flat:
        raise ImageFormatError(
            f"channel(s) {flat} of the training data are constant (zero "
            + ("std" if kind == "meanstd" else "percentile range")
            + f", value {values[flat[0], 0]:g}): nothing to denoise; remove them or set "
            "data.normalization=none"
        )
    return Normalization.from_record(record), record


def _unit(array: np.ndarray) -> np.ndarray:
    return to_unit(array)


def _random_patch(
    stacks: list[np.ndarray],
    slices: list[tuple[int, int]],
    patch_shape: tuple[int, ...],
    rng: np.random.Generator,
) -> np.ndarray:
    k, s = slices[int(rng.integers(len(slices)))]
    sizes = zip(stacks[k].shape[2:], patch_shape, strict=True)
    region = [slice(a, a + p) for a, p in ((int(rng.integers(0, n - p + 1)), p) for n, p in sizes)]
    index: tuple[int | slice, ...] = (s, slice(None), *region)
    return _unit(np.asarray(stacks[k][index]))


class StackPatchDataset(Dataset):
    """Random patches of S slices of canonical stacks; C x (Z) x Y x X float32 tensors.

    Keys are ``(slice_index, sample_seed)`` as for :class:`restorekit.data.PatchDataset`;
    ``stacks`` are kept as given (memory-mapped arrays stay memory-mapped).
    """

    def __init__(
        self,
        stacks: list[np.ndarray],
        slices: list[tuple[int, int]],
        patch_size: int,
        patch_depth: int | None,
        augment: bool,
        normalization: Normalization | None = None,
    ) -> None:
        self.stacks, self.slices, self.augment = stacks, slices, augment
        self.normalization = normalization
        dims = stacks[0].ndim - 2
        self.patch_shape: tuple[int, ...] = (patch_size, patch_size)
        if dims == 3:
            if patch_depth is None:
                raise ConfigError("stacks with a Z axis need a patch depth (data.patch_depth)")
            self.patch_shape = (patch_depth, *self.patch_shape)
        for k, stack in enumerate(stacks):
            small = any(
                length < p for length, p in zip(stack.shape[2:], self.patch_shape, strict=True)
            )
            if small:
                raise ConfigError(
                    f"stack {k} has spatial size {stack.shape[2:]}, smaller than the patch "
                    f"{self.patch_shape}; lower data.patch_size / data.patch_depth"
                )

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = key
        rng = np.random.default_rng(seed)
        k, s = self.slices[index]
        patch = _random_patch(self.stacks, [(k, s)], self.patch_shape, rng)
        op = int(rng.integers(0, 8)) if self.augment else 0
        patch = dihedral.transform(patch, op)
        if self.normalization is not None:
            patch = self.normalization.apply(patch)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(patch, dtype=np.float32)),
            "seed": torch.tensor(derive_seed(seed, 1)),
        }
