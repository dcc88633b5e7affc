"""One websocket client's outgoing queue: bounded by bytes, shedding output, never silently.

The kernel reader must never wait for a client. It puts each message into
every client's outbox and moves on; each client's writer drains its own
outbox at the speed its socket allows. A client that falls more than
``limit`` bytes behind loses *output* (stream, display data, results) until
it has caught up to half the limit; replies, status and comm messages are
always kept. Before the next message it does receive, the client gets a
``stream`` message on stderr saying how many messages and bytes it missed,
addressed to the cell they belonged to.

What this module does not do: encode messages (the relay hands over bytes)
or touch the websocket (the daemon's writer calls :meth:`Outbox.get`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: iopub message types that are output and may be shed for a slow client.
SHEDDABLE = frozenset(
    {"stream", "display_data", "update_display_data", "execute_result", "execute_input"}
)


@dataclass(frozen=True, slots=True)
class Frame:
    """One websocket frame to send."""

    data: bytes
    binary: bool


@dataclass(frozen=True, slots=True)
class Shed:
    """What a client missed: handed to the notice builder."""

    messages: int
    nbytes: int
    #: The parent header (raw JSON) of the last dropped message, to address the notice.
    parent: bytes


class Outbox:
    def __init__(self, *, limit: int, notice: Callable[[Shed], Frame], kernel_id: str = "") -> None:
        self._limit = limit
        self._notice = notice
        self._kernel_id = kernel_id
        self._frames: collections.deque[Frame] = collections.deque()
        self._size = 0
        self._ready = asyncio.Event()
        self._closed = False
        self._shedding = False
        self._dropped_messages = 0
        self._dropped_bytes = 0
        self._dropped_parent = b"{}"
        #: Totals for the whole connection, for logs and tests.
        self.total_dropped_messages = 0
        self.total_dropped_bytes = 0

    @property
    def queued_bytes(self) -> int:
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, frame: Frame, *, sheddable: bool = False, parent: bytes = b"{}") -> None:
        if self._closed:
            return
        size = len(frame.data)
        if sheddable:
            if self._shedding and self._size > self._limit // 2:
                self._drop(size, parent)
                return
            if self._size + size > self._limit:
                self._shedding = True
                self._drop(size, parent)
                return
            self._shedding = False
        if self._dropped_messages:
            self._append(
                self._notice(
                    Shed(
                        messages=self._dropped_messages,
                        nbytes=self._dropped_bytes,
                        parent=self._dropped_parent,
                    )
                )
            )
            self._dropped_messages = self._dropped_bytes = 0
        self._append(frame)

    def _append(self, frame: Frame) -> None:
        self._frames.append(frame)
        self._size += len(frame.data)
        self._ready.set()

    def _drop(self, size: int, parent: bytes) -> None:
        if not self._dropped_messages:
            logger.warning(
                "kernel %s: a client fell %d bytes behind; shedding its output until it catches up",
                self._kernel_id,
                self._size,
            )
        self._dropped_messages += 1
        self._dropped_bytes += size
        self._dropped_parent = parent
        self.total_dropped_messages += 1
        self.total_dropped_bytes += size

    def close(self) -> None:
        """No more frames will be put; the writer ends after sending what is queued."""
        self._closed = True
        self._ready.set()

    async def get(self) -> Frame | None:
        """The next frame, or None once closed and drained.

        Does not yield to the event loop when a frame is waiting, so a writer
        draining a backlog pays no task switch per frame.
        """
        while not self._frames:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        frame = self._frames.popleft()
        self._size -= len(frame.data)
        return frame
