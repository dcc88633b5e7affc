"""One ZeroMQ connection set to a kernel: shell, control and stdin DEALERs, an iopub SUB.

The daemon keeps exactly one set per kernel, shared by all of that kernel's
websocket clients (the relay multiplexes them). Messages are read in a
callback registered on each socket's file descriptor with the event loop, and
handed to ``on_message`` synchronously: no task switch between ZeroMQ and the
clients' outboxes, which is what keeps the relay's latency near the floor.

ZeroMQ's descriptor is edge-triggered: a readable event means "look at the
socket", and a send can consume that event. So the reader drains until the
socket says ``Again`` (in bounded batches, yielding to the loop between them
so one chatty kernel cannot starve the others), and every send checks for
messages that arrived meanwhile.

Settings that matter:

- iopub subscribes to everything with ``RCVHWM 0``: ZeroMQ's default
  high-water mark of 1000 messages drops iopub messages without a word.
- shell and stdin share one routing id: a kernel sends ``input_request`` on
  stdin to the identity that sent the ``execute_request`` on shell.
- a short reconnect interval, since a starting kernel binds a moment after
  we connect and ZeroMQ's 100 ms default would be start-up latency.

Frames are received without copying (``copy=False``): the relay copies the
small JSON parts it parses and passes large content and buffers on as views.

What this module does not do: parse, sign or route messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import zmq

from jkctl.backends.base import ConnectionInfo
from jkctl.errors import KernelError

logger = logging.getLogger(__name__)

CLIENT_CHANNELS = ("shell", "control", "stdin")
READ_CHANNELS = ("shell", "control", "stdin", "iopub")
_BATCH = 64
_RECONNECT_MS = 10
_RECONNECT_MAX_MS = 1000

MessageCallback = Callable[[str, list[zmq.Frame]], None]


class KernelSockets:
    def __init__(
        self,
        *,
        context: zmq.Context[zmq.Socket[bytes]],
        connection: ConnectionInfo,
        identity: bytes,
        on_message: MessageCallback,
        kernel_id: str,
    ) -> None:
        self._context = context
        self._connection = connection
        self._identity = identity
        self._on_message = on_message
        self._kernel_id = kernel_id
        self._sockets: dict[str, zmq.Socket[bytes]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            for channel in READ_CHANNELS:
                if channel == "iopub":
                    sock = self._context.socket(zmq.SUB)
                    sock.setsockopt(zmq.SUBSCRIBE, b"")
                else:
                    sock = self._context.socket(zmq.DEALER)
                    sock.setsockopt(zmq.ROUTING_ID, self._identity)
                    sock.setsockopt(zmq.SNDHWM, 0)
                sock.setsockopt(zmq.RCVHWM, 0)
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.RECONNECT_IVL, _RECONNECT_MS)
                sock.setsockopt(zmq.RECONNECT_IVL_MAX, _RECONNECT_MAX_MS)
                sock.connect(self._connection.endpoint(channel))
                self._sockets[channel] = sock
                self._loop.add_reader(sock.fileno(), self._drain, channel)
        except zmq.ZMQError as exc:
            self.close()
            raise KernelError(
                f"Cannot connect to kernel {self._kernel_id}: {exc}.",
                hint="The backend gave an endpoint ZeroMQ cannot use; see the daemon log.",
            ) from exc
        for channel in READ_CHANNELS:
            self._loop.call_soon(self._drain, channel)

    def send(self, channel: str, frames: Sequence[bytes | memoryview]) -> None:
        """Queue a message for the kernel; never blocks (send high-water mark 0)."""
        sock = self._sockets.get(channel)
        if sock is None or self._closed:
            raise KernelError(
                f"The connection to kernel {self._kernel_id} is closed.",
                hint="The kernel is restarting or was shut down; try again in a moment.",
            )
        try:
            sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
            pending = int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN
        except zmq.ZMQError as exc:
            raise KernelError(
                f"Sending to kernel {self._kernel_id} failed: {exc}.",
                hint="See the daemon log.",
            ) from exc
        if pending and self._loop is not None:
            self._loop.call_soon(self._drain, channel)

    def _drain(self, channel: str) -> None:
        sock = self._sockets.get(channel)
        if sock is None or self._closed:
            return
        for _ in range(_BATCH):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            except zmq.ZMQError:
                logger.exception("kernel %s: reading %s failed", self._kernel_id, channel)
                return
            try:
                self._on_message(channel, frames)
            except Exception:
                logger.exception(
                    "kernel %s: relaying a %s message failed", self._kernel_id, channel
                )
        # More may be waiting: continue after the loop has served everyone else.
        assert self._loop is not None
        self._loop.call_soon(self._drain, channel)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sock in self._sockets.values():
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close(linger=0)
        self._sockets.clear()
