import numpy as np
import pytest
import torch
from skimage import data

from restorekit.blind_spots import box_side
from restorekit.configs import load_config
from restorekit.data.kinds.images import add_noise_once
from restorekit.degrade import parse_noise
from restorekit.engine import train
from restorekit.errors import ConfigError
from restorekit.infer.model import load_model
from restorekit.io import write_image
from restorekit.methods import METHODS, Noise2Void, Progress
from restorekit.methods.n2v_masking import (
    BlindSpotMasker,
    draw_neighbour_offsets,
    offset_weights,
)
from restorekit.metrics import psnr
from restorekit.nets import build_net
from restorekit.randomness import SampleRandom


def _box_counts(mask, side):
    """Blind spots per box, N x C x boxes (2D mask N x C x H x W)."""
    n, c, h, w = mask.shape
    rows = torch.arange(h).view(h, 1) // side
    cols = torch.arange(w).view(1, w) // side
    boxes_w = -(-w // side)
    box = (rows * boxes_w + cols).flatten()
    flat = mask.reshape(n * c, -1).float()
    counts = torch.zeros(n * c, int(box.max()) + 1).index_add_(1, box, flat)
    return counts.view(n, c, -1)


def _pixel_code(n, c, h, w):
    """Distinct values per pixel, encoding (channel, row, column)."""
    code = torch.arange(c * h * w, dtype=torch.float32).view(1, c, h, w)
    return code.expand(n, c, h, w).clone()


def _chi_square(counts, expected):
    return float(((counts - expected) ** 2 / expected).sum())


def test_box_side_follows_the_masked_fraction():
    assert box_side(0.00198, 2) == 22  # the paper's BSD68 set-up
    assert box_side(0.00198, 3) == 8
    with pytest.raises(ConfigError, match="every pixel"):
        box_side(0.5, 2)


@pytest.mark.parametrize("size", [64, 66, 88])  # cut-short edge boxes (64, 66) and exact (88)
def test_exactly_one_blind_spot_in_every_box(size):
    masker = BlindSpotMasker(masked_fraction=0.00198)
    _, mask = masker(torch.rand(6, 1, size, size), SampleRandom.from_seed(0, 6))
    counts = _box_counts(mask, 22)
    assert counts.shape[-1] == (-(-size // 22)) ** 2
    assert torch.all(counts == 1)


def test_blind_spots_are_uniform_inside_their_box():
    masker = BlindSpotMasker(masked_fraction=1 / 16)  # 4 x 4 boxes
    _, mask = masker(torch.rand(64, 1, 32, 32), SampleRandom.from_seed(1, 64))
    rows, cols = torch.nonzero(mask[:, 0], as_tuple=True)[1:]
    cells = torch.bincount((rows % 4) * 4 + cols % 4, minlength=16).float()
    assert cells.sum() == 64 * 64
    assert _chi_square(cells, cells.mean()) < 45  # 15 degrees of freedom: p < 1e-4


def test_shared_masks_cover_every_channel_and_independent_ones_differ():
    image = torch.rand(3, 3, 64, 64)
    _, shared = BlindSpotMasker()(image, SampleRandom.from_seed(2, 3))
    assert torch.equal(shared[:, 0], shared[:, 1]) and torch.equal(shared[:, 0], shared[:, 2])
    _, own = BlindSpotMasker(channels="independent")(image, SampleRandom.from_seed(2, 3))
    assert torch.all(_box_counts(own, 22) == 1)
    assert not torch.equal(own[:, 0], own[:, 1])


def test_a_samples_masks_do_not_depend_on_its_batch():
    seeds = [11, 22, 33]
    image = torch.rand(3, 1, 64, 64)
    masker = BlindSpotMasker(manipulator="uniform_withoutCP", struct_mask=[[1, 1, 1]])
    together = masker(image, SampleRandom(seeds))
    alone = masker(image[1:2], SampleRandom(seeds[1:2]))
    assert torch.equal(together[0][1:2], alone[0]) and torch.equal(together[1][1:2], alone[1])


def _offset_counts(manipulator, centre, size=32, n=8, draws=3000, radius=2):
    centres = torch.tensor(centre).expand(n, 1, draws, 2)
    offsets = draw_neighbour_offsets(
        SampleRandom.from_seed(3, n), centres, (size, size), manipulator, radius
    )
    index = (offsets[..., 0] + radius) * (2 * radius + 1) + offsets[..., 1] + radius
    return torch.bincount(index.flatten(), minlength=(2 * radius + 1) ** 2).float()


@pytest.mark.parametrize("manipulator", ["uniform_withCP", "uniform_withoutCP"])
def test_replacement_offsets_are_uniform_over_the_window(manipulator):
    counts = _offset_counts(manipulator, [10, 10])
    centre = len(counts) // 2
    if manipulator == "uniform_withoutCP":
        assert counts[centre] == 0
        counts = torch.cat([counts[:centre], counts[centre + 1 :]])
    assert torch.all(counts > 0)
    # 23 or 24 degrees of freedom: chi-square < 60 has p < 1e-4; one offset drawn twice as often
    # (a redraw-on-centre shortcut) would give about 1000 here.
    assert _chi_square(counts, counts.mean()) < 60


def test_border_offsets_stay_inside_and_are_uniform():
    counts = _offset_counts("uniform_withoutCP", [0, 1]).view(5, 5)
    assert counts[:2].sum() == 0 and counts[:, 0].sum() == 0  # outside the patch: never
    assert counts[2, 2] == 0  # the centre: never
    allowed = counts[2:, 1:].flatten()
    allowed = allowed[allowed > 0]
    assert len(allowed) == 11  # 3 rows x 4 columns inside, minus the centre
    assert _chi_square(allowed, allowed.mean()) < 35  # 10 degrees of freedom: p < 1e-4


def test_normal_offsets_follow_the_gaussian_weights():
    counts = _offset_counts("normal_withoutCP", [10, 10], draws=6000)
    weights = offset_weights("normal_withoutCP", 2, 2)
    assert counts[12] == 0
    expected = (weights / weights.sum() * counts.sum()).float()
    keep = expected > 0
    assert _chi_square(counts[keep], expected[keep]) < 60


@pytest.mark.parametrize("manipulator", ["uniform_withCP", "uniform_withoutCP", "normal_withoutCP"])
def test_replacements_come_from_the_window(manipulator):
    n, c, h, w = 4, 2, 44, 44
    image = _pixel_code(n, c, h, w)
    rng = SampleRandom.from_seed(4, n)
    out, mask = BlindSpotMasker(manipulator=manipulator, radius=2)(image, rng)
    assert torch.equal(out[~mask], image[~mask])
    _, channel, row, col = torch.nonzero(mask, as_tuple=True)
    value = out[mask].long()
    assert torch.equal(value // (h * w), channel)  # the same channel
    d_row, d_col = (value % (h * w)) // w - row, value % w - col
    assert d_row.abs().max() <= 2 and d_col.abs().max() <= 2
    if manipulator != "uniform_withCP":
        assert torch.all((d_row != 0) | (d_col != 0))
    # channel-shared: every channel takes the same neighbour
    offset = (d_row * w + d_col).view(n, c, -1)
    assert torch.equal(offset[:, 0], offset[:, 1])


@pytest.mark.parametrize("manipulator", ["mean", "median"])
def test_mean_and_median_exclude_the_centre(manipulator):
    n, h, w, radius = 3, 30, 30, 2
    image = torch.rand(n, 1, h, w)
    out, mask = BlindSpotMasker(masked_fraction=1 / 100, manipulator=manipulator, radius=radius)(
        image, SampleRandom.from_seed(5, n)
    )
    for i, _, r, c in torch.nonzero(mask).tolist():
        window = image[
            i, 0, max(r - radius, 0) : r + radius + 1, max(c - radius, 0) : c + radius + 1
        ]
        centre = (min(r, radius), min(c, radius))
        keep = torch.ones_like(window, dtype=torch.bool)
        keep[centre] = False
        values = window[keep]
        expected = values.mean() if manipulator == "mean" else values.median()
        torch.testing.assert_close(out[i, 0, r, c], expected)
    assert torch.equal(out[~mask], image[~mask])


@pytest.mark.parametrize(
    ("struct_mask", "shape"),
    [
        ([1, 1, 1, 1, 1], (3, 2, 48, 48)),  # 1D: along the width
        ([[0, 1, 0], [1, 1, 1], [0, 1, 0]], (3, 1, 48, 48)),
        (
            [[[0, 0, 0], [0, 1, 0], [0, 0, 0]], [[0, 0, 0], [0, 1, 0], [0, 0, 0]], [[0] * 3] * 3],
            (2, 1, 16, 16, 16),
        ),
    ],
)
def test_struct_mask_blanks_exactly_its_neighbours(struct_mask, shape):
    image = torch.rand(*shape)
    masker = BlindSpotMasker(
        masked_fraction=0.01, manipulator="uniform_withoutCP", struct_mask=struct_mask
    )
    out, mask = masker(image, SampleRandom.from_seed(6, shape[0]))
    array = np.array(struct_mask)
    array = array.reshape((1,) * (len(shape) - 2 - array.ndim) + array.shape)
    centre = np.array(array.shape) // 2
    neighbours = [tuple(o) for o in np.argwhere(array == 1) - centre if any(o)]
    expected = mask.clone()
    spatial = shape[2:]
    for spot in torch.nonzero(mask).tolist():
        for offset in neighbours:
            where = [p + o for p, o in zip(spot[2:], offset, strict=True)]
            if all(0 <= p < s for p, s in zip(where, spatial, strict=True)):
                expected[tuple(spot[:2] + where)] = True
    assert torch.equal(out != image, expected)  # blind spots and their neighbours, nothing else
    blanked = expected & ~mask
    low = image.flatten(2).amin(2)[..., None].expand(-1, -1, image[0, 0].numel())
    high = image.flatten(2).amax(2)[..., None].expand_as(low)
    assert torch.all(out.flatten(2)[blanked.flatten(2)] >= low[blanked.flatten(2)])
    assert torch.all(out.flatten(2)[blanked.flatten(2)] <= high[blanked.flatten(2)])


def test_3d_masking_keeps_shapes_and_boxes():
    image = torch.rand(2, 2, 16, 32, 32)
    for manipulator in ("uniform_withCP", "median"):
        out, mask = BlindSpotMasker(manipulator=manipulator)(image, SampleRandom.from_seed(7, 2))
        assert out.shape == mask.shape == image.shape and mask.dtype == torch.bool
        assert mask.sum() == 2 * 2 * (2 * 4 * 4)  # boxes of side 8: 2 x 4 x 4 per channel
        assert torch.equal(mask[:, 0], mask[:, 1])


def test_invalid_struct_masks_and_manipulators_are_refused():
    with pytest.raises(ConfigError, match="odd sizes"):
        BlindSpotMasker(struct_mask=[[1, 1, 1, 1]])
    with pytest.raises(ConfigError, match="0 or 1"):
        BlindSpotMasker(struct_mask=[1, 2, 1])
    with pytest.raises(ConfigError, match="manipulator"):
        BlindSpotMasker(manipulator="identity")
    with pytest.raises(ConfigError, match="method.struct_mask: .*odd sizes"):
        load_config("n2v-bsd68", ["method.struct_mask=[[1, 1]]"])
    with pytest.raises(ConfigError, match="masked_fraction"):
        load_config("n2v-bsd68", ["method.masked_fraction=0.5"])
    with pytest.raises(ConfigError, match="channels_last"):
        load_config("n2v-bsd68", ["model.dims=3"])  # 5D tensors have no channels_last layout


def test_loss_is_computed_on_the_blind_spots_only():
    method = Noise2Void(masked_fraction=0.01)
    batch = method.make_batch(
        {"image": torch.rand(2, 1, 32, 32)}, parse_noise("gauss25"), SampleRandom.from_seed(8, 2)
    )
    prediction = torch.nn.Parameter(torch.zeros(2, 1, 32, 32))
    out = method.loss(lambda x: prediction, batch, Progress(1, 1, 1), None)
    out.total.backward()
    assert torch.all(prediction.grad[~batch.mask] == 0)
    assert torch.all(prediction.grad[batch.mask] != 0)
    expected = torch.mean((batch.target[batch.mask]) ** 2)
    torch.testing.assert_close(out.total, expected)
    assert batch.clean is not None and not torch.equal(batch.target, batch.clean)


def test_noise2void_is_registered_and_its_presets_validate():
    assert METHODS["n2v"] is Noise2Void
    cfg = load_config("n2v-bsd68")
    assert (cfg.method.manipulator, cfg.method.radius, cfg.method.masked_fraction) == (
        "uniform_withCP",
        2,
        0.00198,
    )
    assert (cfg.model.features, cfg.model.depth, cfg.model.kernel_size) == (96, 2, 3)
    assert cfg.model.batch_norm and cfg.model.residual and cfg.optim.lr == 4e-4
    assert 400 * cfg.data.repeat // cfg.train.batch_size == 400  # Train400: 400 steps per epoch
    n2v2 = load_config("n2v2-bsd68")
    assert n2v2.method.manipulator == "median"
    assert n2v2.model.blurpool and not n2v2.model.skip_top


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"batch_norm": False, "residual": True},
        {"blurpool": True, "skip_top": False, "convs_per_level": 3},
        {"depth": 3, "kernel_size": 5, "in_channels": 3, "out_channels": 2},
    ],
)
@pytest.mark.parametrize("dims", [2, 3])
def test_unet_csbdeep_keeps_the_spatial_shape(dims, options):
    net = build_net("unet-csbdeep", features=4, dims=dims, **options)
    multiple = net.size_multiple
    assert multiple == 2 ** options.get("depth", 2)
    spatial = (2 * multiple,) * dims
    x = torch.rand(2, options.get("in_channels", 1), *spatial)
    assert net(x).shape == (2, options.get("out_channels", 1), *spatial)


def test_unet_csbdeep_residual_and_size_checks():
    net = build_net("unet-csbdeep", features=4, residual=True, batch_norm=False)
    torch.nn.init.zeros_(net.head.weight)
    torch.nn.init.zeros_(net.head.bias)
    x = torch.rand(1, 1, 16, 16)
    assert torch.equal(net(x), x)  # residual: output = input + head
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.rand(1, 1, 18, 16))
    with pytest.raises(ConfigError, match="in_channels == out_channels"):
        build_net("unet-csbdeep", residual=True, in_channels=3, out_channels=1)
    no_skip = build_net("unet-csbdeep", features=4, skip_top=False)
    assert no_skip.decoder[-1][0][0].in_channels == 4  # upsampled features only, no skip
    assert build_net("unet-csbdeep", features=4).decoder[-1][0][0].in_channels == 8


def test_max_blur_pool_halves_and_smooths():
    net = build_net("unet-csbdeep", features=4, blurpool=True)
    pool = net.down[0]
    x = torch.zeros(1, 4, 8, 8)
    x[..., 3, 3] = 1.0
    y = pool(x)
    assert y.shape == (1, 4, 4, 4)
    assert 0 < y.max() < 1 and (y > 0).sum() > 1  # a spike is spread, not kept whole
    constant = torch.full((1, 4, 8, 8), 0.3)
    torch.testing.assert_close(pool(constant), torch.full((1, 4, 4, 4), 0.3))


def test_short_training_run_denoises_a_grey_photograph(tmp_path):
    camera = data.camera()  # 512 x 512 grey uint8
    folder = tmp_path / "train"
    for i, (top, left) in enumerate([(0, 0), (0, 256), (256, 0), (256, 256)]):
        write_image(folder / f"camera{i}.png", camera[top : top + 256, left : left + 256])
    cfg = load_config(
        "n2v-bsd68",
        [
            f"data.train=['{folder}']",
            "model.features=8",
            "model.depth=2",
            "model.batch_norm=false",  # batch 8: more stable without (BN: +3.2 to +4.1 dB)
            "method.masked_fraction=0.05",  # more blind spots per patch: a stronger signal
            "data.noise_once=true",  # one fixed noisy copy per image, as the BSD68 protocol
            "data.repeat=8",
            "train.batch_size=8",
            "train.epochs=50",
            "optim.lr=2e-3",
            "optim.milestones=[0.9]",
            "train.log_every=50",
            "train.checkpoint_every=1000",
        ],
    )
    result = train(cfg, tmp_path / "run")
    assert result.steps == 200
    clean = camera[128:384, 128:384].astype(np.float32)[..., None] / 255
    noisy = parse_noise("gauss25").sample_numpy(clean, np.random.default_rng(0))
    denoised = load_model(result.model_path).denoise(noisy)
    before = psnr(np.clip(noisy, 0, 1), clean)
    after = psnr(np.clip(denoised, 0, 1), clean)
    assert after > before + 3, (before, after)  # measured: 20.7 -> 25.6-25.7 dB over 3 seeds


def test_noise_once_makes_one_fixed_noisy_copy_per_image(tmp_path):
    clean = [np.full((64, 48, 1), 128, np.uint8), np.full((32, 32, 1), 0.25, np.float32)]
    noise = parse_noise("gauss25")
    first, again = add_noise_once(clean, noise, seed=3), add_noise_once(clean, noise, seed=3)
    assert [a.dtype for a in first] == [np.float32, np.float32]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))  # fixed
    assert not np.array_equal(first[0], add_noise_once(clean, noise, seed=4)[0])
    residual = first[0] - 128 / 255
    assert abs(residual.std() - 25 / 255) < 0.1 * 25 / 255 and abs(residual.mean()) < 0.01
    assert first[1].shape == (32, 32, 1) and first[1].min() < 0  # unclipped, as drawn


def test_noise_once_needs_noise_and_a_noisy_only_method(tmp_path):
    with pytest.raises(ConfigError, match="noise_once"):
        load_config("n2c-gauss25", ["data.noise_once=true"])
    with pytest.raises(ConfigError, match="noise_once"):
        load_config("n2v-bsd68", ["data.noise_once=true", "noise=null"])
