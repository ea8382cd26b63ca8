"""What the file commands share: their outputs planned before any work (never over inputs,
each other or existing files: :mod:`restorekit.io.outputs`), progress bars, the batch run and
its last line."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from restorekit.io.batch import BatchResult
    from restorekit.io.outputs import OutputPlan, PlannedOutput


def largest_input(plan: OutputPlan) -> int | None:
    """The pixel count of the largest input (from the files' headers), for ``auto``."""
    from restorekit.io.images import image_pixels

    sizes = [image_pixels(item.source) for item in plan.outputs]
    return max((n for n in sizes if n is not None), default=None)


def tile_progress_bar() -> Callable[[int, int], None]:
    """A second progress bar, shown while an image is processed in several tiles."""
    from tqdm import tqdm

    bar: list[tqdm] = []

    def update(done: int, total: int) -> None:
        if total <= 1:
            return
        if not bar:
            bar.append(tqdm(total=total, desc="  tiles", unit="tile", position=1, leave=False))
        bar[0].update(done - bar[0].n)
        if done >= total:
            bar.pop().close()

    return update


def plan_outputs_in(
    inputs: list[Path],
    out: Path,
    out_format: str | None,
    overwrite: bool,
    skip_existing: bool,
) -> OutputPlan:
    """Every input's output file in ``out``, checked before any work (see
    :mod:`restorekit.io.outputs`)."""
    from restorekit.io.outputs import plan_outputs

    return plan_outputs(
        inputs, out, extension=out_format, overwrite=overwrite, skip_existing=skip_existing
    )


def start_writing(plan: OutputPlan) -> None:
    """Say what the plan skips or replaces; remove the temporary files an interrupted run left
    in the output folder."""
    from restorekit.io.files import remove_orphan_temporaries

    for line in plan.notes():
        click.echo(line)
    removed = remove_orphan_temporaries(plan.folder)
    if removed:
        click.echo(
            f"removed {len(removed)} temporary file(s) left in {plan.folder} by an interrupted run"
        )


def run_plan(
    plan: OutputPlan,
    step: Callable[[PlannedOutput], None],
    keep_going: bool,
    items: Iterable[PlannedOutput] | None = None,
) -> BatchResult:
    """``step`` on every planned output (:func:`restorekit.io.batch.run_batch`); a failure is
    printed as it happens."""
    from restorekit.io.batch import run_batch

    def report(path: Path, reason: str) -> None:
        click.echo(f"failed: {path}: {reason}", err=True)

    return run_batch(
        plan.outputs if items is None else items,
        len(plan.outputs),
        lambda item: item.source,
        step,
        keep_going,
        report,
    )


def finish_batch(result: BatchResult, what: str) -> None:
    """The batch's last line; the error that stopped it, or exit code 1 when files failed."""
    if result.ok:
        click.echo(f"{result.done} {what}")
        return
    if result.error is not None:
        if result.total > 1:
            click.echo(result.summary(), err=True)
        raise result.error
    click.echo(result.summary(), err=True)
    raise click.exceptions.Exit(1)


def skipped_note(plan: OutputPlan) -> str:
    return f"; {len(plan.skipped)} skipped (output exists)" if plan.skipped else ""
