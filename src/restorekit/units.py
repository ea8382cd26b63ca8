"""Quantities a user types: durations (``90s``, ``7m``, ``2h``, ``1h30m`` or plain seconds).

Torch-free; shared by the configs and the command line.
"""

from __future__ import annotations

import re

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
