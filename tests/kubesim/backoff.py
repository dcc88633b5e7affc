"""The kubelet's back-off (client-go `flowcontrol.Backoff`), for crash loops and image pulls.

Per key, the delay starts at `base` and doubles on each failure up to `cap`;
an entry that has seen no failure for twice the cap starts over. The kubelet
uses base 10 s and cap 300 s for both container restarts and image pulls;
kubesim takes them from `KubeletConfig` so tests can shorten them. No jitter:
tests want to reason about the sequence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class _Entry:
    delay: float
    last_update: float


class Backoff:
    def __init__(self, *, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap
        self._entries: dict[object, _Entry] = {}

    def _expired(self, entry: _Entry, now: float) -> bool:
        return now - entry.last_update > 2 * self.cap

    def next(self, key: object, now: float | None = None) -> float:
        """Record a failure at `now`; returns the delay now in force."""
        now = time.monotonic() if now is None else now
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            entry = _Entry(self.base, now)
        else:
            entry = _Entry(min(entry.delay * 2, self.cap), now)
        self._entries[key] = entry
        return entry.delay

    def delay(self, key: object) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def remaining_since(self, key: object, event_time: float) -> float:
        """Seconds still to wait after an event at `event_time` (0: not in back-off).

        `IsInBackOffSince`: in back-off while less than the current delay has
        passed since the event (a container's finishedAt).
        """
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is None or self._expired(entry, now):
            return 0.0
        return max(0.0, entry.delay - (now - event_time))

    def remaining_since_update(self, key: object) -> float:
        """`IsInBackOffSinceUpdate`: in back-off while less than the delay has passed
        since the last failure (image pulls)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return self.remaining_since(key, entry.last_update)

    def forget(self, key: object) -> None:
        self._entries.pop(key, None)


def go_duration(seconds: float) -> str:
    """A duration as Go's `time.Duration.String()` prints it ("10s", "1m20s", "345ms")."""
    if seconds < 1:
        millis = round(seconds * 1000, 3)
        return "0s" if millis == 0 else f"{millis:g}ms"
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text
