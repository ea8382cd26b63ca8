"""The whole process's memory, for ``--max-memory`` on the command line and the web app.

The array API's ``max_memory`` bounds what tiled inference itself holds (the network's working
memory and the band of output rows being blended: :func:`restorekit.infer.tiling.plan_tiles`).
A command that reads a file, runs a model and writes the result is bounded as a whole instead:
:func:`working_budget` gives tiled inference what the limit leaves after what the process
already holds (the runtime, the model, the decoded input: its resident memory now) and what the
writer will hold (:func:`restorekit.io.streaming.held_bytes`).
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from restorekit.errors import ConfigError
from restorekit.units import format_bytes

DEFAULT_PROCESS_MEMORY = int(2.5 * 1024**3)
"""The command line's default ``--max-memory`` for a whole process (2.5 GiB)."""

MIN_WORKING_BUDGET = 64 * 1024**2
"""Below this the tiles would be too small to be worth running; the limit is refused."""


def resident_bytes() -> int:
    """This process's resident memory now (Linux: /proc/self/statm; elsewhere its peak so far,
    an overestimate)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak * 1024 if os.uname().sysname == "Linux" else peak
    return pages * os.sysconf("SC_PAGE_SIZE")


def working_budget(limit: float, held: float, what: str = "the image") -> float:
    """What tiled inference may use so that the process stays under ``limit`` bytes, given
    ``held`` bytes that will be held beside it; a limit too low is a :class:`ConfigError`."""
    in_use = resident_bytes()
    budget = limit - in_use - held
    if budget < MIN_WORKING_BUDGET:
        need = in_use + held + MIN_WORKING_BUDGET
        raise ConfigError(
            f"--max-memory {format_bytes(limit)} is too low for {what}: this process already "
            f"holds {format_bytes(in_use)} (the runtime, the model, the decoded input) and the "
            f"output needs {format_bytes(held)}; give at least {format_bytes(need)}"
        )
    return budget
