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

Each socket is also *monitored* (``on_link``): a ZMTP handshake completed
means the channel reaches the kernel, a disconnect that it does not (the
process restarting, a tunnel dropped). ZeroMQ reconnects by itself; the
relay uses these facts to tell clients what a drop may have cost them and
to recover replies it may have lost. Monitor events cost nothing per
message.

What this module does not do: parse, sign or route messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import zmq
from zmq.utils.monitor import parse_monitor_message

from jkctl.backends.base import ConnectionInfo
from jkctl.errors import KernelError
from jkctl.kernels.keeper import LIVE

logger = logging.getLogger(__name__)

CLIENT_CHANNELS = ("shell", "control", "stdin")
READ_CHANNELS = ("shell", "control", "stdin", "iopub")
_BATCH = 64
_RECONNECT_MS = 10
_RECONNECT_MAX_MS = 1000

MessageCallback = Callable[[str, list[zmq.Frame]], None]
#: ``(channel, up)``: the channel's connection to the kernel was made (True) or lost.
LinkCallback = Callable[[str, bool], None]
_LINK_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED


class KernelSockets:
    def __init__(
        self,
        *,
        context: zmq.Context[zmq.Socket[bytes]],
        connection: ConnectionInfo,
        identity: bytes,
        on_message: MessageCallback,
        kernel_id: str,
        on_link: LinkCallback | None = None,
    ) -> None:
        self._context = context
        self._connection = connection
        self._identity = identity
        self._on_message = on_message
        self._on_link = on_link
        self._kernel_id = kernel_id
        self._sockets: dict[str, zmq.Socket[bytes]] = {}
        self._monitors: dict[str, zmq.Socket[bytes]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            for channel in READ_CHANNELS:
                if channel == "iopub":
                    sock = self._context.socket(zmq.SUB)
                    sock.setsockopt(zmq.SUBSCRIBE, b"")
                    # What a pod's output keeper waits for (jkctl.kernels.keeper);
                    # a kernel's own PUB ignores it.
                    sock.setsockopt(zmq.SUBSCRIBE, LIVE)
                else:
                    sock = self._context.socket(zmq.DEALER)
                    sock.setsockopt(zmq.ROUTING_ID, self._identity)
                    sock.setsockopt(zmq.SNDHWM, 0)
                self._sockets[channel] = sock
                sock.setsockopt(zmq.RCVHWM, 0)
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.RECONNECT_IVL, _RECONNECT_MS)
                sock.setsockopt(zmq.RECONNECT_IVL_MAX, _RECONNECT_MAX_MS)
                if self._on_link is not None:
                    monitor = sock.get_monitor_socket(_LINK_EVENTS)
                    self._monitors[channel] = monitor
                    self._loop.add_reader(monitor.fileno(), self._drain_monitor, channel)
                self._loop.add_reader(sock.fileno(), self._drain, channel)
                sock.connect(self._connection.endpoint(channel))
        except zmq.ZMQError as exc:
            self.close()
            raise KernelError(
                f"Cannot connect to kernel {self._kernel_id}: {exc}.",
                hint="The backend gave an endpoint ZeroMQ cannot use; see the daemon log.",
            ) from exc
        # A ZeroMQ socket's fd only signals edges, and an edge can come before the
        # reader is added (the monitor's first events do): read once to catch up.
        for channel in READ_CHANNELS:
            self._loop.call_soon(self._drain, channel)
            if channel in self._monitors:
                self._loop.call_soon(self._drain_monitor, channel)

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

    def resubscribe(self, old: bytes, new: bytes) -> None:
        """Swap one iopub subscription for another (an output keeper's resume topic).

        Unsubscribe first: a keeper stops sending on the one, then replays on the other.
        Kept by ZeroMQ and sent again on every reconnection."""
        sock = self._sockets.get("iopub")
        if sock is None or self._closed or old == new:
            return
        sock.setsockopt(zmq.UNSUBSCRIBE, old)
        sock.setsockopt(zmq.SUBSCRIBE, new)

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

    def _drain_monitor(self, channel: str) -> None:
        monitor = self._monitors.get(channel)
        if monitor is None or self._closed or self._on_link is None:
            return
        while True:
            try:
                frames = monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                logger.exception(
                    "kernel %s: reading the %s monitor failed", self._kernel_id, channel
                )
                return
            event = parse_monitor_message(frames)["event"]
            if event in (zmq.EVENT_HANDSHAKE_SUCCEEDED, zmq.EVENT_DISCONNECTED):
                try:
                    self._on_link(channel, event == zmq.EVENT_HANDSHAKE_SUCCEEDED)
                except Exception:
                    logger.exception(
                        "kernel %s: handling a %s link event failed", self._kernel_id, channel
                    )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for channel, sock in self._sockets.items():
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())  # harmless if never added
            if channel in self._monitors:
                sock.disable_monitor()
            sock.close(linger=0)
        for monitor in self._monitors.values():
            if self._loop is not None:
                self._loop.remove_reader(monitor.fileno())
            monitor.close(linger=0)
        self._sockets.clear()
        self._monitors.clear()
