"""What a run reports: console/log-file lines, TensorBoard scalars and images, a progress bar.

Only rank 0 reports (set ``enabled=False`` elsewhere).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import torch
from tqdm import tqdm

LOSS_LINE = re.compile(r"iter\[(\d+)\], loss:([0-9.eE+-]+)")
"""A step line of the run's log (``train.log``): its step and loss."""


def read_loss_curve(log: Path) -> list[tuple[int, float]]:
    """(step, loss) of every step line a run has logged so far ([] before its log exists)."""
    if not Path(log).is_file():
        return []
    text = Path(log).read_text(encoding="utf-8", errors="replace")
    return [(int(m[1]), float(m[2])) for m in LOSS_LINE.finditer(text)]


class RunLogger:
    def __init__(
        self, run_dir: Path, total_steps: int | None, start_step: int, enabled: bool = True
    ):
        self.enabled = enabled
        self.file = open(run_dir / "train.log", "a") if enabled else None  # noqa: SIM115
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step or None)
        self.bar = tqdm(
            total=total_steps,
            initial=start_step,
            disable=not enabled or None,
            unit="step",
            dynamic_ncols=True,
            file=sys.stderr,
        )

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        tqdm.write(text, file=sys.stdout)
        assert self.file is not None
        self.file.write(text + "\n")
        self.file.flush()

    def scalars(self, step: int, values: dict[str, float], prefix: str) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def image(self, step: int, tag: str, pixels: torch.Tensor) -> None:
        """``pixels``: C x H x W float in [0, 1]."""
        if self.writer is not None:
            self.writer.add_image(tag, pixels.clamp(0, 1), step)

    def advance(self, loss: float | None = None) -> None:
        """One step done; ``loss`` (given at log lines only: reading it waits for a GPU) is
        shown beside the bar."""
        self.bar.update(1)
        if loss is not None:
            self.bar.set_postfix(loss=f"{loss:.5f}", refresh=False)

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()
        if self.file is not None:
            self.file.close()
