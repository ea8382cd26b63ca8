"""Batches that finish: apply a step to every planned file, stop at the first bad one or (keep
going) report it and go on, and sum up "N of M done, K failed: a.png (reason), ..."."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from restorekit.errors import RestorekitError

Item = TypeVar("Item")


@dataclass
class BatchResult:
    """How a batch went: ``total`` files planned, ``done`` finished, ``failed`` (file, reason);
    without keep-going, ``stopped_at`` and ``error``: the file that stopped it and its error."""

    total: int
    done: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    stopped_at: Path | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        """Every file done."""
        return self.error is None and not self.failed

    def summary(self) -> str:
        """One line: ``N of M done, K failed: a.png (reason), ...`` (or where it stopped)."""
        if self.stopped_at is not None:
            return (
                f"stopped at {self.stopped_at}: {self.done} of {self.total} done before it "
                "(--keep-going skips bad files and goes on)"
            )
        line = f"{self.done} of {self.total} done"
        if self.failed:
            listed = ", ".join(f"{path} ({reason})" for path, reason in self.failed)
            line += f", {len(self.failed)} failed: {listed}"
        return line


def _reason(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def run_batch(
    items: Iterable[Item],
    total: int,
    source: Callable[[Item], Path],
    step: Callable[[Item], None],
    keep_going: bool,
    on_failure: Callable[[Path, str], None] | None = None,
) -> BatchResult:
    """``step`` applied to each of ``items`` (``source``: its input file). A
    :class:`RestorekitError` (bad file, bad values) or ``OSError`` fails that item: with
    ``keep_going`` it is recorded (``on_failure`` told) and the batch goes on; without, the
    batch stops there and the result holds the file and the error (for the caller to print the
    summary and raise it)."""
    result = BatchResult(total)
    for item in items:
        try:
            step(item)
        except (RestorekitError, OSError) as error:
            if not keep_going:
                result.stopped_at, result.error = source(item), error
                return result
            result.failed.append((source(item), _reason(error)))
            if on_failure is not None:
                on_failure(source(item), _reason(error))
            continue
        result.done += 1
    return result
