"""A level-free "something changed" signal for many waiters, on one event loop.

Waiters call `await changed.wait()` and are woken by the next `notify()`; a
notify with nobody waiting is not remembered. The kubelet uses it where a
condition depends on state that many tasks read: a node's image cache, the
Secrets and ConfigMaps a pod is waiting for, a log file being followed.
Callers re-check their condition after waking, so spurious wake-ups are fine.
"""

from __future__ import annotations

import asyncio


class Broadcast:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def listen(self) -> asyncio.Event:
        """The event the next notify() sets: take it before checking the condition."""
        return self._event

    async def wait(self) -> None:
        await self._event.wait()
