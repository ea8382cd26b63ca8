"""How long a run trains: its plan (total steps and epochs), fixed up front or by a time budget.

Without ``train.time_budget`` the plan is ``train.epochs`` epochs of the data. With it, the run
first trains a short warm-up (until a tenth of the budget, at most 60 s, has passed and at least
:data:`MIN_TIMED_STEPS` steps after the first have been timed), then measures what the rest will
cost — seconds per step, a validation and a checkpoint (both run there, so the first validation
and checkpoint come at the end of the warm-up) — and fixes the largest number of steps whose
steps, validations, checkpoints and final save fit in what remains of the budget, less
:data:`MARGIN`. Everything that depends on the length of training — the learning-rate
milestones, the epoch count behind the Neighbor2Neighbor regulariser's ramp, the last
validation — follows that plan, so the schedule completes within the budget.

Machines are noisy (other work starts and stops), so the plan is measured again, with all the
timings so far, each time another tenth of the budget has passed, as long as the first
learning-rate milestone is still ahead (the learning rate is constant until then, so no step
already taken would have seen another rate); once it is within reach (:data:`FREEZE_AT` of the
way), the plan is final. Steps are timed apart from validations and checkpoints, over the
later half of the steps so far (the first ones still warm caches), stalls left out (a step
ten times slower than the median: the process was stopped or the machine slept; the budget has
paid for that time already, the steps to come will not repeat it); validations and checkpoints
are costed at the median of their timings (the first of each pays one-off costs and is left out
once there are others).

The plan is stored in every checkpoint after it is first fixed: a resumed run keeps it as final
(so its schedule continues exactly); a run killed before the plan was fixed measures again when
resumed. The budget counts from the start of ``train`` (data loading included).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

MARGIN = 0.03
"""Fraction of the budget kept free for what the measurement cannot foresee."""
MIN_TIMED_STEPS = 3
WARMUP_FRACTION, WARMUP_MAX_S = 0.1, 60.0
"""The warm-up lasts this fraction of the budget, at most this many seconds."""
REPLAN_FRACTION = 0.1
"""The plan is measured again each time this fraction of the budget has passed..."""
FREEZE_AT = 0.8
"""...until this fraction of the first milestone's step (no milestones: of the plan) is done."""
OPEN_ENDED = 10**12
STALL_FACTOR = 10.0
"""A timed step longer than this many times the median is a stall, not a step's cost."""


@dataclass(frozen=True)
class Plan:
    """The length of a run: ``total_steps`` optimizer steps over ``epochs`` epochs (the last may
    be partial)."""

    total_steps: int
    epochs: int

    @classmethod
    def from_epochs(cls, epochs: int, steps_per_epoch: int) -> Plan:
        return cls(epochs * steps_per_epoch, epochs)

    @classmethod
    def from_steps(cls, total_steps: int, steps_per_epoch: int) -> Plan:
        return cls(total_steps, max(1, math.ceil(total_steps / steps_per_epoch)))

    @classmethod
    def open_ended(cls, steps_per_epoch: int) -> Plan:
        """The plan of a time budget's warm-up: no end, so no milestone is passed and the
        regulariser's ramp stays at its start until the real plan is fixed."""
        return cls.from_steps(OPEN_ENDED, steps_per_epoch)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Costs:
    """What the rest of a run costs, measured during the warm-up (seconds)."""

    per_step: float
    validation: float
    checkpoint: float


class TimeBudget:
    """The clock of a run with ``train.time_budget``; see the module docstring."""

    def __init__(self, seconds: float, started: float | None = None) -> None:
        self.seconds = seconds
        self.started = time.monotonic() if started is None else started
        self._first_step: tuple[int, float] | None = None  # (step, time) after the first step
        self._excluded = 0.0  # seconds of validations and checkpoints since then
        self._marks: list[tuple[int, float]] = []  # (step, its end on the clock of steps alone)
        self._durations: dict[str, list[float]] = {}
        self._next_plan_at: float | None = None  # elapsed seconds; None: before the first plan

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @contextlib.contextmanager
    def excluded(self, kind: str) -> Iterator[None]:
        """Time spent inside is not step time: ``kind`` ("validation", "checkpoint") is costed
        apart, at :meth:`typical` of its recorded durations."""
        start = time.monotonic()
        try:
            yield
        finally:
            seconds = time.monotonic() - start
            self._durations.setdefault(kind, []).append(seconds)
            if self._first_step is not None:
                self._excluded += seconds

    def has_timed(self, kind: str) -> bool:
        return bool(self._durations.get(kind))

    def typical(self, kind: str) -> float:
        """The median recorded duration of ``kind``, the first left out once there are others
        (it pays one-off costs); 0 when never seen."""
        durations = self._durations.get(kind, [0.0])
        return statistics.median(durations[1:] or durations)

    def step_done(self, step: int) -> bool:
        """Record that ``step`` has finished; True when it is time to (re)plan: at the end of
        the warm-up, then every :data:`REPLAN_FRACTION` of the budget."""
        now = time.monotonic()
        if self._first_step is None:
            self._first_step = (step, now)  # the first step pays one-off costs: not timed
            return False
        self._marks.append((step, now - self._excluded))
        if self._next_plan_at is not None:
            return self.elapsed() >= self._next_plan_at
        timed = step - self._first_step[0]
        long_enough = self.elapsed() >= min(WARMUP_FRACTION * self.seconds, WARMUP_MAX_S)
        return timed >= MIN_TIMED_STEPS and long_enough

    def seconds_per_step(self, step: int) -> float:
        """Mean duration of the later half of the steps timed so far (the first ones still
        warm caches and allocators; validations and checkpoints left out), stalls left out: a
        step that took over :data:`STALL_FACTOR` times the median (the process stopped, the
        machine asleep) tells nothing of the steps to come, and the budget has already paid
        for it."""
        assert self._first_step is not None
        marks = [self._first_step, *self._marks]
        later = marks[len(marks) // 2 :]
        if len(later) < 2:
            first, start = self._first_step
            end = time.monotonic() - self._excluded
            return (end - start) / max(step - first, 1)
        durations = [
            (end - start) / (last - first)
            for (first, start), (last, end) in itertools.pairwise(later)
            if last > first
        ]
        if not durations:
            return 0.0
        usual = statistics.median(durations)
        return statistics.fmean(d for d in durations if d <= STALL_FACTOR * usual)

    def costs(self, step: int) -> Costs:
        """What a step, a validation and a checkpoint cost, from every timing so far."""
        return Costs(
            self.seconds_per_step(step), self.typical("validation"), self.typical("checkpoint")
        )

    def plan(
        self,
        step: int,
        costs: Costs,
        steps_per_epoch: int,
        val_every: int,
        checkpoint_every: int,
        validates: bool,
    ) -> Plan:
        """The longest plan from ``step`` on that fits the rest of the budget, at ``costs``.

        Counted per candidate length: its steps; the validations at the end of every
        ``val_every``-th epoch and at the last step (when ``validates``); the checkpoints every
        ``checkpoint_every`` steps and at every epoch end; the final save (one checkpoint's
        cost). At least ``step`` (then training ends at once). The next re-plan is due
        :data:`REPLAN_FRACTION` of the budget later.
        """
        self._next_plan_at = self.elapsed() + REPLAN_FRACTION * self.seconds
        available = self.seconds * (1 - MARGIN) - self.elapsed() - costs.checkpoint

        def cost(total: int) -> float:
            ends = range(step // steps_per_epoch + 1, total // steps_per_epoch + 1)
            last = math.ceil(total / steps_per_epoch)  # always validates, partial or not
            validations = sum(e % val_every == 0 or e == last for e in ends)
            validations += bool(total % steps_per_epoch)
            checkpoints = total // checkpoint_every - step // checkpoint_every + len(ends)
            return (
                (total - step) * costs.per_step
                + validations * costs.validation * validates
                + checkpoints * costs.checkpoint
            )

        low, high = step, step + max(0, int(available / costs.per_step))
        while low < high:  # the largest total whose cost fits
            middle = (low + high + 1) // 2
            low, high = (middle, high) if cost(middle) <= available else (low, middle - 1)
        return Plan.from_steps(max(low, step), steps_per_epoch)


def is_final(plan: Plan, step: int, milestones: list[float]) -> bool:
    """Whether ``plan`` may no longer change at ``step``: its first milestone (no milestones:
    its end) is :data:`FREEZE_AT` of the way done."""
    first = milestones[0] if milestones else 1.0
    return step >= FREEZE_AT * first * plan.total_steps
