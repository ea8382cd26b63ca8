import pytest

from restorekit.configs import load_config, presets
from restorekit.engine import learning_rate
from restorekit.errors import ConfigError


def test_ne2ne_preset_has_the_papers_defaults():
    cfg = load_config("ne2ne-gauss25")
    assert cfg.method.name == "ne2ne"
    assert (cfg.method.lambda1, cfg.method.lambda2, cfg.method.increase_ratio) == (1.0, 1.0, 2.0)
    assert cfg.model.features == 48 and cfg.optim.lr == 3e-4 and cfg.optim.gamma == 0.5
    assert cfg.optim.milestones == [0.2, 0.4, 0.6, 0.8]
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.data.patch_size) == (100, 4, 256)
    assert cfg.noise == "gauss:25"


def test_all_presets_of_the_issue_ship_and_validate():
    expected = {
        "ne2ne-gauss25",
        "ne2ne-gauss5_50",
        "ne2ne-poisson30",
        "ne2ne-poisson5_50",
        "n2n-gauss25",
        "n2c-gauss25",
    }
    assert expected <= set(presets())
    noises = {name: load_config(name).noise for name in expected}
    assert noises["ne2ne-poisson5_50"] == "poisson:5-50"
    assert load_config("n2c-gauss25").method.name == "n2c"


def test_override_sets_nested_field_with_yaml_typing():
    cfg = load_config("ne2ne-gauss25", ["train.epochs=7"])
    assert cfg.train.epochs == 7
    cfg = load_config("ne2ne-gauss25", ["optim.milestones=[0.5]", "noise=poisson:30"])
    assert cfg.optim.milestones == [0.5] and cfg.noise == "poisson:30"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.epochs=0", "train.epochs: Input should be greater than or equal to 1"),
        ("optim.lr=-1", "optim.lr: Input should be greater than 0"),
        ("train.precision=fp8", "train.precision"),
        ("train.ema=1", "train.ema: Input should be less than 1"),
        ("train.ema=0", "train.ema: Input should be greater than 0"),
        ("train.epohcs=3", "train.epohcs: Extra inputs are not permitted"),
        ("noise=gauss:abc", "gauss:LOW-HIGH"),
        ("data.patch_size=96", "multiple of 64"),
        ("optim.milestones=[0.8, 0.2]", "increasing fractions"),
        ("method.name=n2v9", "method"),
        ("train.epochs", "KEY=VALUE"),
    ],
)
def test_invalid_values_name_the_field_and_range(override, expected):
    with pytest.raises(ConfigError) as info:
        load_config("ne2ne-gauss25", [override])
    assert expected in str(info.value)


def test_unknown_config_names_the_presets(tmp_path):
    with pytest.raises(ConfigError, match="ne2ne-gauss25"):
        load_config("no-such-preset")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_learning_rate_halves_at_20_40_60_80_percent():
    cfg = load_config("ne2ne-gauss25")
    rates = [learning_rate(cfg, step, 100) for step in (1, 20, 21, 41, 61, 81, 100)]
    assert rates == [3e-4, 3e-4, 1.5e-4, 7.5e-5, 3.75e-5, 1.875e-5, 1.875e-5]


def test_learning_rate_warms_up_linearly_then_follows_the_milestones():
    cfg = load_config("ne2ne-gauss25", ["optim.warmup_steps=4"])
    rates = [learning_rate(cfg, step, 100) for step in (1, 2, 4, 5, 21)]
    assert rates == pytest.approx([7.5e-5, 1.5e-4, 3e-4, 3e-4, 1.5e-4])
    with pytest.raises(ConfigError, match="warmup_steps"):
        load_config("ne2ne-gauss25", ["optim.warmup_steps=-1"])


def test_sections_without_a_kind_take_the_default_architecture_and_method():
    cfg = load_config({"model": {"features": 8}, "method": {"lambda2": 2.0}})
    assert cfg.model.arch == "unet-n2n" and cfg.model.features == 8
    assert cfg.method.name == "ne2ne" and cfg.method.lambda2 == 2.0


@pytest.mark.parametrize(
    ("typed", "said"),
    [("train.epoch", "train.epoch: Extra inputs .*; did you mean train.epochs\\?"),
     ("data.patchsize", "data.patchsize: .*; did you mean data.patch_size\\?"),
     ("noize", "noize: .*; did you mean noise\\?"),
     ("trian.epochs", "trian: .*; did you mean train\\?"),
     ("method.masked_fractio", "masked_fractio: .*; did you mean method.masked_fraction\\?")],
)  # fmt: skip
def test_a_misspelt_key_is_refused_with_the_field_meant(typed, said):
    preset = "n2v-bsd68" if typed.startswith("method.") else "ne2ne-gauss25"
    with pytest.raises(ConfigError, match=said):
        load_config(preset, [f"{typed}=10"])
    with pytest.raises(ConfigError) as unlike:  # nothing alike: no guess
        load_config(preset, ["optim.learning_rate=0.1"])
    assert "did you mean" not in str(unlike.value)


def test_presets_command_lists_what_each_trains_for_and_shows_one_in_full(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from restorekit.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n2v-2d").mkdir()  # a run folder named after its preset (train's default)
    table = CliRunner().invoke(main, ["presets"])
    assert table.exit_code == 0
    rows = {line.split()[0]: line for line in table.output.splitlines()[1:-1]}
    assert set(rows) == set(presets())
    assert rows["ne2ne-gauss5_50"].split()[1:] == ["ne2ne", "unet-ne2ne", "noise", "gauss:5-50"]
    assert rows["rednet-sr"].endswith("upscaling x2/x3/x4")
    full = CliRunner().invoke(main, ["presets", "n2v-bsd68"])
    assert full.exit_code == 0 and full.output.startswith("# Noise2Void, BSD68")
    assert "masked_fraction: 0.00198" in full.output
