"""The whole process's memory, for ``--max-memory`` on the command line and the web app.

The array API's ``max_memory`` bounds what tiled inference itself holds (the network's working
memory and the band of output rows being blended: :func:`restorekit.infer.tiling.plan_tiles`).
A command that reads a file, runs a model and writes the result is bounded as a whole instead:
:func:`working_budget` gives tiled inference what the limit leaves after what the process
already holds (the runtime, the model, the decoded input: its resident memory now) and what the
writer will hold (:func:`restorekit.io.streaming.held_bytes`).
"""

from __future__ import annotations

import ctypes
import os
import resource
from pathlib import Path
from typing import Any

from restorekit.errors import ConfigError
from restorekit.units import format_bytes

DEFAULT_PROCESS_MEMORY = int(2.5 * 1024**3)
"""The command line's default ``--max-memory`` for a whole process (2.5 GiB)."""

MIN_WORKING_BUDGET = 64 * 1024**2
"""Below this the tiles would be too small to be worth running; the limit is refused."""

STACK_SLACK = 0.6
"""The share of the working budget a stack's tiles are planned for: zarr decodes and encodes
chunks in its own threads, whose buffers come and go beside the tiles, and the allocator keeps
some freed blocks from tile to tile. Measured (1024 x 1024 float64 slices, zarr in and out, a
tiny U-Net, 450 MiB limit, 95 MiB left after the runtime): the resident memory crept up by 30
to 50 MiB over a slice's tiles; planned for 85 % the peak was 410 to 471 MiB from run to run.
Later, at 70 % with a 500 MiB limit (64 x 1024 x 1024 float64, the tests' case), while a
training run shared the machine, two or three runs of six went over it (two measured: 501.7 and
515.3 MiB): hence 60 %, under which three runs in a row stayed within it."""

MMAP_THRESHOLD = 4 * 1024**2
"""Allocations from this size up are mapped and unmapped on their own (see
:func:`bound_allocator`)."""


def bound_allocator() -> None:
    """Keep freed tensors from staying resident (glibc only; elsewhere nothing).

    glibc raises its mmap threshold to the largest block freed (up to 32 MiB), after which
    tile-sized tensors come from the heap, and it returns the heap's free top only beyond twice
    that: a run of tiles kept up to 64 MiB that it no longer used (measured: peak 518 MiB for a
    450 MiB limit). A fixed 4 MiB threshold maps each large tensor on its own and returns it
    when freed (peak 444 MiB; 13 % slower on that tiny model, whose tensors are small; the
    shipped models' tiles are larger than 32 MiB and were mapped already)."""
    mallopt = _glibc("mallopt")
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


_M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>


def release_freed_memory() -> None:
    """Hand the memory freed so far back to the system (glibc's ``malloc_trim``; nothing
    elsewhere), so that the next slice of a stack starts from what is really held."""
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)


def _glibc(name: str) -> Any:
    """glibc's function ``name``, or None (another C library, or none loadable)."""
    try:
        return getattr(ctypes.CDLL("libc.so.6"), name, None)
    except OSError:
        return None


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
    ``held`` bytes that will be held beside it; a limit too low is a :class:`ConfigError`.
    Bounds the allocator first (:func:`bound_allocator`)."""
    bound_allocator()
    release_freed_memory()
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
