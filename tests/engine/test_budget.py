"""Time-budgeted training (train.time_budget / --time-budget): durations, the plan, the run."""

from __future__ import annotations

import re
import time

import pytest
from click.testing import CliRunner
from conftest import tiny_config

from restorekit.cli import main
from restorekit.configs import load_config
from restorekit.engine import TrainingInterrupted, learning_rate, train
from restorekit.engine.budget import MARGIN, Costs, Plan, TimeBudget
from restorekit.errors import ConfigError
from restorekit.units import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("7m", 420), ("2h", 7200), ("1h30m", 5400), ("45", 45), (60, 60), ("1.5m", 90)],
)
def test_durations_read_as_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7x", "m", "-1", "0", "h2", "5m3", "soon"])
def test_bad_durations_say_what_is_accepted(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_a_bad_budget_is_a_config_error_naming_the_field():
    assert load_config("ne2ne-gauss25", ["train.time_budget=7m"]).train.time_budget == 420
    with pytest.raises(ConfigError, match="time_budget"):
        load_config("ne2ne-gauss25", ["train.time_budget=soon"])


def _budget_at(seconds: float, elapsed: float) -> TimeBudget:
    return TimeBudget(seconds, started=time.monotonic() - elapsed)


def test_the_plan_is_the_longest_that_fits_the_rest_of_the_budget():
    budget = _budget_at(100, elapsed=10)
    costs = Costs(per_step=0.1, validation=2.0, checkpoint=0.5)
    plan = budget.plan(
        50, costs, steps_per_epoch=100, val_every=1, checkpoint_every=200, validates=True
    )
    available = 100 * (1 - MARGIN) - 10 - costs.checkpoint

    def cost(total: int) -> float:  # by hand: steps, validations, checkpoints
        epoch_ends = total // 100
        validations = epoch_ends + (total % 100 > 0)
        checkpoints = total // 200 + epoch_ends
        return (total - 50) * 0.1 + validations * 2.0 + checkpoints * 0.5

    # (the clock moves on while the test runs: a little slack)
    assert cost(plan.total_steps) <= available + 0.05 < cost(plan.total_steps + 10)
    assert plan.epochs == -(-plan.total_steps // 100)
    assert 700 < plan.total_steps < 850  # about (84.5 s - validations) / 0.1 s
    # no validation data: more steps fit
    more = budget.plan(50, costs, 100, 1, 200, validates=False)
    assert more.total_steps > plan.total_steps


def test_a_spent_budget_ends_the_run_where_it_stands():
    plan = _budget_at(10, elapsed=20).plan(7, Costs(0.1, 1.0, 0.1), 5, 1, 100, True)
    assert plan == Plan(7, 2)


def test_warm_up_waits_for_timed_steps_and_a_tenth_of_the_budget():
    budget = _budget_at(10, elapsed=0)
    assert not budget.step_done(1)  # the first step is never timed
    assert not any(budget.step_done(s) for s in (2, 3, 4))  # less than 1 s has passed
    time.sleep(1.0)
    assert budget.step_done(5) and budget.seconds_per_step(5) > 0.2


class _Clock:
    """A stand-in for the ``time`` module whose clock moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("step_seconds", "expected"),
    [
        ([0.1] * 30, 0.1),
        ([0.1] * 20 + [1200.0] + [0.1] * 9, 0.1),  # stopped for 20 min: a stall, not a cost
        ([0.1, 0.1, 0.1, 0.4] * 8, 0.175),  # every 4th step slower: a cost, in the mean
    ],
)
def test_the_step_cost_is_the_mean_of_later_steps_without_stalls(
    monkeypatch, step_seconds, expected
):
    from restorekit.engine import budget as budget_module

    clock = _Clock()
    monkeypatch.setattr(budget_module, "time", clock)
    budget = TimeBudget(7200)
    budget.step_done(1)
    for step, seconds in enumerate(step_seconds, start=2):
        clock.now += seconds
        budget.step_done(step)
    assert budget.seconds_per_step(len(step_seconds) + 1) == pytest.approx(expected)
    plan = budget.plan(len(step_seconds) + 1, budget.costs(31), 10_000, 1, 10_000, False)
    if step_seconds[20] > 1000:  # the rest of the budget, at the usual step's cost
        left = 7200 * (1 - MARGIN) - (clock.now - 1000)
        assert plan.total_steps == pytest.approx(31 + left / 0.1, abs=2)


def test_a_60_s_budget_ends_within_10_percent_with_its_schedule_completed(photo_folder, tmp_path):
    cfg = tiny_config(
        photo_folder,
        **{
            "data.val": f"'{photo_folder}'",
            "data.val_max_images": 2,
            "train.time_budget": "60s",
            "train.log_every": 50,
            "train.checkpoint_every": 100,
            "optim.milestones": "[0.5,0.75]",
        },
    )
    started = time.monotonic()
    result = train(cfg, tmp_path / "run")
    wall = time.monotonic() - started
    assert 54 <= wall <= 66, wall
    log = (tmp_path / "run" / "train.log").read_text()
    plans = re.findall(r"time budget 60 s: .* (\d+) steps in all \((\d+) epoch\(s\)\); (.*)", log)
    assert plans and plans[-1][2] == "schedule fixed", log
    total, epochs = int(plans[-1][0]), plans[-1][1]
    assert result.steps == total > 50  # the plan ran to its end: the schedule completed
    last_lr = float(re.findall(r"lr:([\d.e-]+)", log)[-1])
    assert last_lr == pytest.approx(learning_rate(cfg, total, total), rel=0.01)
    assert learning_rate(cfg, total, total) == cfg.optim.lr * cfg.optim.gamma**2
    assert f"validation epoch[{epochs}]" in log  # the last (partial) epoch validated


def test_a_resumed_budget_run_keeps_its_plan(photo_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(TimeBudget, "step_done", lambda self, step: step >= 3)
    monkeypatch.setattr(TimeBudget, "costs", lambda self, step: Costs(0.1, 0.1, 0.1))
    monkeypatch.setattr(TimeBudget, "plan", lambda self, step, *a, **k: Plan(13, 4))
    cfg = tiny_config(photo_folder, **{"train.time_budget": "30s", "train.checkpoint_every": 1})
    with pytest.raises(TrainingInterrupted):  # the run is stopped after the plan was fixed
        _stop_at(cfg, tmp_path / "run", 9)
    monkeypatch.setattr(TimeBudget, "plan", lambda *a, **k: pytest.fail("planned again"))
    result = train(cfg, tmp_path / "run", resume=True)
    log = (tmp_path / "run" / "train.log").read_text()
    assert result.steps == 13 and "resumed with the plan its time budget fixed: 13 steps" in log


def _stop_at(cfg, run_dir, step):
    """Train until ``step``, then deliver a stop request, as Ctrl-C would."""
    import signal

    from restorekit.engine import trainer

    original = trainer._step

    def step_then_stop(run, *args):
        result = original(run, *args)
        if run.step == step:
            signal.raise_signal(signal.SIGINT)
            return True, result[1]
        return result

    trainer_step = pytest.MonkeyPatch()
    trainer_step.setattr(trainer, "_step", step_then_stop)
    try:
        train(cfg, run_dir)
    finally:
        trainer_step.undo()


def test_the_command_line_takes_a_time_budget(photo_folder, tmp_path):
    args = ["train", "ne2ne-gauss25", "--data", str(photo_folder), "--out", str(tmp_path / "r")]
    args += ["--set", "model.features=8", "--set", "data.patch_size=64"]
    args += ["--set", "train.batch_size=2", "--time-budget", "8s"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "time budget 8 s:" in result.output and "schedule fixed" in result.output
    bad = CliRunner().invoke(main, [*args[:-1], "eight"])
    assert bad.exit_code != 0 and "not a duration: 'eight'" in bad.output
    assert "Traceback" not in bad.output
