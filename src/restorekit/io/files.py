"""Writing files so that a crash or an interrupt never leaves half a file behind; file digests;
removing the temporary files a killed process left behind."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path

PROCESS_STARTED = time.time()
"""When this module was imported: after this process started, before it wrote any file.
Temporary files older than this were left by another, earlier process."""

_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}\.tmp")
"""The names :func:`temporary_path` gives: ``.NAME.XXXXXXXX.tmp`` (8 lowercase hex digits)."""


def temporary_path(path: str | Path) -> Path:
    """A fresh hidden temporary path beside ``path``: ``.NAME.XXXXXXXX.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a hidden temporary path beside ``path``, flush it to disk, then
    rename it over ``path``. Parent folders are created; the temporary file never outlives us
    (unless the process is killed: :func:`remove_orphan_temporaries` cleans those up)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        write(tmp)
        fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def fsync_file(path: str | Path) -> None:
    """Flush a written file's bytes to disk."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def remove_orphan_temporaries(folder: str | Path, before: float | None = None) -> list[Path]:
    """Delete the temporary files that :func:`atomic_write` leaves in ``folder`` when its process
    is killed; return their paths.

    Only regular files (not links, not folders) named exactly ``.NAME.XXXXXXXX.tmp`` and last
    modified before ``before`` (default: the start of this process, :data:`PROCESS_STARTED`) are
    removed, so a write in progress in this process is never touched; nothing else is, and a
    file that cannot be removed is left. Not recursive; a missing folder holds none.
    """
    cutoff = PROCESS_STARTED if before is None else before
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not _TEMPORARY.fullmatch(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
