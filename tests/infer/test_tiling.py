"""Tiled inference: tiles blended without seams give the whole-image result."""

import numpy as np
import pytest
import torch
from torch import nn

from restorekit.errors import ConfigError
from restorekit.infer import predict as predict_module
from restorekit.infer.model import RestorationModel
from restorekit.infer.predict import predict, predict_tiled
from restorekit.infer.tiling import (
    DEFAULT_OVERLAP,
    choose_tile,
    pad_to_multiple,
    plan_tiles,
    tile_origins,
    tiled_apply,
)
from restorekit.nets import build_net
from restorekit.nets.files import ModelDescriptor
from restorekit.units import parse_bytes


def toy_net(seed: int = 0, scale: int = 1) -> nn.Module:
    """Two 3x3 convolutions (context 2 pixels); with ``scale`` a pixel shuffle at the end."""
    torch.manual_seed(seed)
    out = 3 * scale * scale
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, out, 3, padding=1)]
    if scale > 1:
        layers.append(nn.PixelShuffle(scale))
    return nn.Sequential(*layers).eval()


def unet() -> nn.Module:
    torch.manual_seed(0)
    return build_net("unet-n2n", features=8).eval()


def images(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_unet_tiled_equals_whole_image_at_the_default_overlap():
    # The U-Net's output feels a tile edge up to 127 pixels inside it; the default overlap
    # (352) discards 3/8 of it (132 pixels) on each side, so tiles match the whole image.
    net, x = unet(), images(1, 3, 448, 416)
    whole = predict(net, x, 32)
    tiled = predict_tiled(net, x, 32, tile=384, overlap=DEFAULT_OVERLAP)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 1e-4  # measured: 1.7e-6


def test_toy_net_tiled_equals_whole_image_for_odd_sizes():
    net = toy_net()
    for height, width in [(150, 203), (1, 1), (1, 77), (45, 1), (64, 64), (65, 129)]:
        x = images(2, 3, height, width, seed=height)
        whole = predict(net, x, 8)
        tiled = predict_tiled(net, x, 8, tile=32, overlap=16)
        assert tiled.shape == (2, 3, height, width)
        assert (tiled - whole).abs().max() < 1e-6, (height, width)


def test_images_smaller_than_the_tile_run_whole_and_equal_predict_exactly():
    net = unet()
    for height, width in [(1, 1), (37, 53), (96, 128)]:
        x = images(1, 3, height, width)
        out = predict_tiled(net, x, 32, tile=128)
        assert torch.equal(out, predict(net, x, 32))


def test_scale_two_with_a_pixel_shuffle_net():
    net, x = toy_net(scale=2), images(1, 3, 75, 58)
    with torch.no_grad():
        whole = net(torch.from_numpy(pad_to_multiple(x.numpy(), 8)))[..., :150, :116]
    tiled = predict_tiled(net, x, 8, tile=32, overlap=16, scale=2)
    assert tiled.shape == (1, 3, 150, 116)
    assert (tiled - whole).abs().max() < 1e-6


def test_batch_size_does_not_change_results():
    net, x = toy_net(), images(3, 3, 70, 90)
    results = [predict_tiled(net, x, 8, 32, 16, batch_size=b) for b in (1, 4, 50)]
    for other in results[1:]:
        assert (other - results[0]).abs().max() < 1e-6


def test_three_spatial_axes_tile_too():
    def box_filter(batch: np.ndarray) -> np.ndarray:  # 3x3x3 mean, zeros outside: context 1
        padded = np.pad(batch, [(0, 0), (0, 0), (1, 1), (1, 1), (1, 1)])
        depth, height, width = batch.shape[2:]
        return sum(
            padded[:, :, i : i + depth, j : j + height, k : k + width]
            for i in range(3)
            for j in range(3)
            for k in range(3)
        ) / np.float32(27)

    volume = np.random.default_rng(0).random((1, 2, 21, 30, 17), dtype=np.float32)
    tiled = tiled_apply(box_filter, volume, 4, tile=12, overlap=8, spatial_dims=3)
    whole = box_filter(pad_to_multiple(volume, 4, spatial_dims=3))[:, :, :21, :30, :17]
    np.testing.assert_allclose(tiled, whole, atol=1e-6)


def test_numpy_padding_equals_the_torch_padding():
    for height, width in [(1, 1), (1, 5), (3, 2), (37, 53), (64, 64)]:
        x = images(1, 2, height, width)
        expected = predict_module.pad_to_multiple(x, 32).numpy()
        assert np.array_equal(pad_to_multiple(x.numpy(), 32), expected), (height, width)


def test_tiles_are_aligned_and_cover_the_image_with_the_overlap():
    for length in (96, 160, 224, 1000 // 32 * 32):
        origins = tile_origins(length, 96, 64, 32)
        assert origins[0] == 0 and origins[-1] == length - 96
        assert all(o % 32 == 0 for o in origins)
        assert all(b - a <= 96 - 64 for a, b in zip(origins, origins[1:], strict=False))


def test_tile_size_follows_the_memory_budget():
    bytes_per_pixel = 1000.0
    tile = choose_tile(2 * 1024**3, bytes_per_pixel, 32)
    assert tile % 32 == 0 and tile**2 * bytes_per_pixel <= 2 * 1024**3
    assert choose_tile(8 * 1024**3, bytes_per_pixel, 32) > tile
    assert choose_tile(2 * 1024**3, bytes_per_pixel, 32, batch_size=4) < tile
    with pytest.raises(ConfigError, match="max-memory"):
        choose_tile(10 * 1024**2, bytes_per_pixel, 32)
    # Whole when the batch fits the budget, else tiles; an explicit tile wins.
    assert plan_tiles((2, 3, 100, 200), 32, 1000.0) == (224, 2)
    assert plan_tiles((1, 3, 1000, 1000), 32, 1000.0, max_memory=500**2 * 1000) == (480, 1)
    assert plan_tiles((1, 3, 1000, 1000), 32, 1000.0, tile=500) == (480, 1)
    assert plan_tiles((1, 3, 100, 100), 32, 1000.0, tile=500) == (128, 1)


def test_restoration_model_tiles_large_images_automatically():
    net = unet()
    descriptor = ModelDescriptor(arch="unet-n2n", arch_args={"features": 8}, size_multiple=32)
    model = RestorationModel(net, descriptor)
    seen = []
    model.net.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape)))
    x = images(1, 3, 448, 416)
    whole = model.run(x)  # 448 x 416 fits the default 2 GiB budget: one pass
    assert seen == [(1, 3, 448, 416)]
    model.max_memory = 1.1 * 400 * 400 * model.bytes_per_pixel  # tiles of 384 (and I/O)
    tiled = model.run(x)
    assert set(seen[1:]) == {(1, 3, 384, 384)} and len(seen) == 7
    assert (tiled - whole).abs().max() < 1e-4
    model.tile = 64  # explicit tile, smaller than the overlap
    with pytest.raises(ConfigError, match="overlap"):
        model.run(x)


def test_memory_sizes_parse():
    assert parse_bytes("2GB") == parse_bytes("2 GiB") == 2 * 1024**3
    assert parse_bytes("512m") == 512 * 1024**2 and parse_bytes("1000") == 1000
    for bad in ("lots", "-1G", "0"):
        with pytest.raises(ConfigError, match="2GB"):
            parse_bytes(bad)


def test_progress_counts_every_tile_batch():
    calls = []
    x = images(1, 3, 64, 96).numpy()
    tiled_apply(lambda b: b, x, 8, 32, 8, batch_size=2, progress=lambda d, t: calls.append((d, t)))
    total = calls[-1][1]
    assert total > 4 and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted({d for d, _ in calls})  # increasing, no repeats


def test_a_tile_barely_above_the_overlap_is_refused_with_the_count():
    """--tile 100 with a 96-pixel overlap would make thousands of tiles (the EDSR x2 case of
    issue 13): refused, naming the count and a tile that works."""
    x = np.zeros((1, 3, 400, 600), np.float32)
    with pytest.raises(ConfigError, match=r"into \d+ tiles, \d+ times the work .* --tile 384"):
        tiled_apply(lambda b: b, x, 1, 100, 96)
    assert tiled_apply(lambda b: b, x, 1, 384, 96).shape == x.shape  # 4x the overlap: fine


def test_a_tile_not_above_the_overlap_names_the_smallest_that_works():
    """--tile 8 with a 32-pixel size multiple and a 352-pixel overlap: the message says what
    the 8 became and which tile works, not only the rounded figures."""
    x = np.zeros((1, 3, 400, 600), np.float32)
    with pytest.raises(ConfigError, match=r"tile 32 \(8 rounded to a multiple of 32\).*--tile 384"):
        tiled_apply(lambda b: b, x, 32, 8, 352)
