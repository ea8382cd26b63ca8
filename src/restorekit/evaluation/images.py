"""The clean images of an evaluation, read and checked once (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from restorekit.errors import RestorekitError
from restorekit.io import read_image
from restorekit.io.checks import check_values
from restorekit.pixels import match_channels


@dataclass
class CleanImages:
    """The images evaluated (H x W x C, native dtype) and their paths; those left out with the
    reason (``keep_going``); the checks' warnings, each naming its file."""

    arrays: list[np.ndarray] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    left_out: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_clean_images(
    paths: list[Path], channels: int | None = None, keep_going: bool = False
) -> CleanImages:
    """Read and check (:func:`restorekit.io.checks.check_values`) each image; with ``channels``,
    grey images are replicated for an RGB model. A bad image raises its error, naming it, or
    with ``keep_going`` is left out; none readable is an error."""
    found, replicated = CleanImages(), 0
    for path in paths:
        try:
            array = read_image(path).array
            messages = check_values(array, path)
            if channels is not None:
                replicated += array.shape[2] == 1 and channels == 3
                array = match_channels(array, channels, path)
        except RestorekitError as error:
            if not keep_going:
                raise
            found.left_out.append((path, str(error)))
            continue
        found.warnings += messages
        found.arrays.append(array)
        found.paths.append(path)
    if replicated:
        found.warnings.append(f"{replicated} grey image(s) replicated to RGB for an RGB model")
    if not found.arrays:
        raise RestorekitError(f"no image could be evaluated ({len(found.left_out)} left out)")
    return found
