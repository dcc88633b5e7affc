"""Durations as people write and read them: ``90``, ``45s``, ``30m``, ``2h``, ``1d``, ``1h30m``.

Settings (the culling timeouts) and flags (``jkctl kernels stop --idle 2h``)
take them; tables and log lines show them back (:func:`say_duration`).
Standard library only, so the CLI can use it without importing anything else.
"""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str | float | int) -> float:
    """Seconds in ``text``: a plain number of seconds, or parts like ``1h30m``.

    Raises ValueError saying what is accepted.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        cleaned = str(text).strip().lower().replace(" ", "")
        try:
            seconds = float(cleaned)
        except ValueError:
            parts = _PART.findall(cleaned)
            if not parts or "".join(n + u for n, u in parts) != cleaned:
                raise ValueError(
                    f"'{text}' is not a duration (write seconds, or e.g. 45s, 30m, 2h, 1d, 1h30m)"
                ) from None
            seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if seconds < 0:
        raise ValueError(f"'{text}' is negative; a duration is 0 or more")
    return seconds


def say_duration(seconds: float) -> str:
    """``3d 4h``, ``2h 5m``, ``4m 10s``, ``12s``: the two largest units."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
