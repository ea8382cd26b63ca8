import pytest
import torch

from restorekit.configs import load_config
from restorekit.errors import ConfigError
from restorekit.methods import Neighbor2Neighbor, Progress, build_method
from restorekit.methods.neighbor_sampler import NEIGHBOUR_PAIRS, draw_neighbour_pairs, subsample
from restorekit.randomness import SampleRandom


def _coordinates(n, h, w):
    """An image whose pixel values encode (row, column), the same in every channel."""
    rows = torch.arange(h).view(h, 1).expand(h, w)
    cols = torch.arange(w).view(1, w).expand(h, w)
    code = (rows * 1000 + cols).float()
    return code.expand(n, 3, h, w).clone()


def test_subimages_take_neighbouring_pixels_of_the_same_cell():
    n, h, w = 2, 16, 12
    image = _coordinates(n, h, w)
    pos1, pos2 = draw_neighbour_pairs(SampleRandom.from_seed(0, n), h, w)
    sub1, sub2 = subsample(image, pos1), subsample(image, pos2)
    assert sub1.shape == (n, 3, h // 2, w // 2)
    r1, c1 = sub1 // 1000, sub1 % 1000
    r2, c2 = sub2 // 1000, sub2 % 1000
    cell_r = torch.arange(h // 2).view(1, 1, -1, 1)
    cell_c = torch.arange(w // 2).view(1, 1, 1, -1)
    for r, c in ((r1, c1), (r2, c2)):  # both pixels lie in their 2x2 cell
        assert torch.equal(r // 2, cell_r.expand_as(r)) and torch.equal(c // 2, cell_c.expand_as(c))
    distance = (r1 - r2).abs() + (c1 - c2).abs()
    assert torch.all(distance == 1)  # horizontal or vertical neighbours, never diagonal or equal
    assert torch.equal(sub1[:, 0], sub1[:, 2])  # one draw shared by all channels


def test_all_eight_neighbour_pairs_are_drawn_uniformly():
    pos1, pos2 = draw_neighbour_pairs(SampleRandom.from_seed(1, 64), 64, 64)
    codes = (pos1 * 4 + pos2).flatten()
    counts = torch.bincount(codes, minlength=16).float()
    expected = {int(a * 4 + b) for a, b in NEIGHBOUR_PAIRS}
    assert {int(i) for i in torch.nonzero(counts).flatten()} == expected
    share = counts[sorted(expected)] / codes.numel()
    assert torch.all((share - 1 / 8).abs() < 0.01)


@pytest.mark.parametrize(
    ("ramp_start", "expected"), [(0.0, [0.02, 1.0, 2.0]), (1.0, [2.0, 2.0, 2.0])]
)
def test_regulariser_weight_ramps_with_epoch(ramp_start, expected):
    """The weight the loss applies: from near 0 (the authors' ramp) or, fine-tuning, at its end."""
    net = torch.nn.Conv2d(3, 3, 3, padding=1)
    method = Neighbor2Neighbor(lambda1=1.0, lambda2=1.0, increase_ratio=2.0, ramp_start=ramp_start)
    batch = method.make_batch({"image": torch.rand(2, 3, 8, 8)}, None, SampleRandom.from_seed(0, 2))
    outputs = [
        method.loss(net, batch, Progress(e, 100, 1), SampleRandom.from_seed(0, 2))
        for e in (1, 50, 100)
    ]
    assert [out.parts["reg_weight"] for out in outputs] == pytest.approx(expected)
    rec, reg = outputs[0].parts["loss_rec"], outputs[0].parts["loss_reg"]
    assert outputs[0].total.item() == pytest.approx((rec + expected[0] * reg).item(), rel=1e-5)


@pytest.mark.parametrize(
    ("ramp_start", "expected"), [(1.0, [2.0, 2.0, 2.0]), (0.5, [1.01, 1.5, 2.0])]
)
def test_a_fine_tuning_ramp_starts_where_it_is_told(ramp_start, expected):
    method = Neighbor2Neighbor(increase_ratio=2.0, ramp_start=ramp_start)
    weights = [method.regulariser_ramp(Progress(e, 100, 1)) for e in (1, 50, 100)]
    assert weights == pytest.approx(expected)


def test_the_ramp_start_is_a_config_field_within_zero_and_one():
    cfg = load_config("ne2ne-gauss5_50", overrides=["method.ramp_start=1"])
    assert build_method(cfg.method).regulariser_ramp(Progress(1, 40, 1)) == 2.0
    with pytest.raises(ConfigError, match="ramp_start"):
        load_config("ne2ne-gauss5_50", overrides=["method.ramp_start=1.5"])


def test_full_image_pass_builds_no_graph():
    calls = []

    class Spy(torch.nn.Conv2d):
        def forward(self, x):
            calls.append(torch.is_grad_enabled())
            return super().forward(x)

    method = Neighbor2Neighbor()
    batch = method.make_batch({"image": torch.rand(1, 3, 8, 8)}, None, SampleRandom.from_seed(0, 1))
    method.loss(Spy(3, 3, 3, padding=1), batch, Progress(1, 1, 1), SampleRandom.from_seed(0, 1))
    assert calls == [False, True]


def test_a_samples_draws_do_not_depend_on_its_batch():
    """Per-sample streams: sample k gets the same mask alone or inside a bigger batch."""
    seeds = [11, 22, 33]
    together = draw_neighbour_pairs(SampleRandom(seeds), 8, 8)[0]
    alone = draw_neighbour_pairs(SampleRandom(seeds[1:2]), 8, 8)[0]
    assert torch.equal(together[1:2], alone)
