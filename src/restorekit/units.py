"""Quantities a user types: durations (``90s``, ``7m``, ``2h``, ``1h30m`` or plain seconds) and
memory sizes (``2GB``, ``512MiB``).

Torch-free; shared by the configs and the command line.
"""

from __future__ import annotations

import math
import re

from restorekit.errors import ConfigError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smh]?)")
_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | float | int) -> float:
    """Seconds in ``value``: a number (seconds) or a text such as ``90s``, ``7m``, ``2h``,
    ``1h30m``. Raises ``ValueError`` naming the accepted forms for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower().replace(" ", "")
        parts = _DURATION.findall(text)
        if (
            not text
            or "".join(n + u for n, u in parts) != text
            or (len(parts) > 1 and any(not u for _, u in parts))
        ):
            raise ValueError(
                f"not a duration: {value!r}; write seconds (90), or 90s, 7m, 2h, 1h30m"
            )
        seconds = sum(float(n) * _SECONDS[u] for n, u in parts)
    if not seconds > 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """``seconds`` as :func:`parse_duration` reads it, to the second: ``45s``, ``7m05s``,
    ``1h23m`` (minutes, past an hour)."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_bytes(n: float) -> str:
    """``n`` bytes for messages: "1.5 GiB", "300 MiB"."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def parse_bytes(text: str) -> int:
    """ "2GB", "512MiB", "1.5G", "1000000" -> bytes (K, M, G, T in powers of 1024)."""
    cleaned = text.strip().upper().replace("IB", "").replace("B", "")
    factor = 1
    for suffix, power in (("K", 1), ("M", 2), ("G", 3), ("T", 4)):
        if cleaned.endswith(suffix):
            cleaned, factor = cleaned[:-1], 1024**power
            break
    try:
        value = float(cleaned) * factor
    except ValueError:
        value = -1
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"memory size {text!r} not understood; write e.g. 2GB, 512MB or 1.5G")
    return int(value)
