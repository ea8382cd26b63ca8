"""Patches cut on the training device (restorekit.data.device) equal the CPU loader's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from restorekit.data import EpochSampler, PatchDataset
from restorekit.data.device import DevicePatches

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _images(dtype, channels, sizes, seed=0):
    rng = np.random.default_rng(seed)
    top = {np.uint8: 256, np.uint16: 65536}.get(dtype)
    return [
        rng.integers(0, top, (h, w, channels)).astype(dtype)
        if top
        else rng.normal(0.5, 0.3, (h, w, channels)).astype(np.float32)
        for h, w in sizes
    ]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("augment", [True, False])
def test_device_batches_equal_the_cpu_loader(dtype, augment):
    sizes = [(70, 90), (40, 33), (100, 64)]  # one smaller than the patch: reflect-padded
    images = _images(dtype, 3, sizes)
    partners = _images(dtype, 3, sizes, seed=1)
    dataset = PatchDataset(images, 48, augment, partners)
    sampler = EpochSampler(len(images), 8, seed=3, epoch=2, start=5)
    expected = list(DataLoader(dataset, 4, sampler=sampler, drop_last=True))
    got = list(DevicePatches(dataset, DEVICE).batches(sampler, 4))
    assert len(got) == len(expected) == (3 * 8 - 5) // 4
    for mine, theirs in zip(got, expected, strict=True):
        assert torch.equal(mine["seed"], theirs["seed"])
        for key in ("image", "partner"):
            assert mine[key].device.type == torch.device(DEVICE).type
            torch.testing.assert_close(mine[key].cpu(), theirs[key], rtol=0, atol=1e-7)


def test_every_flip_and_rotation_matches_numpy():
    from restorekit import dihedral
    from restorekit.data.device import _dihedral_sources

    image = np.arange(5 * 5).reshape(5, 5, 1)
    for op in range(8):
        rows, cols = _dihedral_sources(torch.tensor([0]), torch.tensor([0]), torch.tensor([op]), 5)
        got = image[rows[0].numpy(), cols[0].numpy()]
        np.testing.assert_array_equal(got, dihedral.transform(image, op, (0, 1)))


def test_training_with_patches_cut_on_the_device_equals_the_loader(photo_folder, tmp_path):
    """Same patches, same steps: the two data paths train the same weights (here on the CPU,
    where data.on_device is forced; on a GPU it is the default)."""
    from conftest import tiny_config
    from safetensors.torch import load_file

    from restorekit.engine import train

    finals = {}
    for on_device in ("true", "false"):
        cfg = tiny_config(photo_folder, **{"data.on_device": on_device, "model.arch": "unet-n2n"})
        result = train(cfg, tmp_path / on_device, max_steps=3)
        finals[on_device] = load_file(str(result.model_path))
    assert "held on cpu" in (tmp_path / "true" / "train.log").read_text()
    for name, tensor in finals["true"].items():
        assert torch.equal(tensor, finals["false"][name]), name


def test_on_device_refuses_data_it_cannot_cut():
    """Only image folders cut patches on the device: the config of another data kind refuses
    data.on_device before anything runs."""
    from restorekit.configs import load_config
    from restorekit.errors import ConfigError

    for preset in ("edsr-baseline-x2", "n2v-2d"):
        with pytest.raises(ConfigError, match="data.on_device applies to images data"):
            load_config(preset, ["data.on_device=true"])
