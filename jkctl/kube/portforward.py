"""Port-forwarding to a pod over the API server's `pods/portforward` websocket.

The protocol (`v4.channel.k8s.io`, as the kubelet serves it; see
`pkg/kubelet/cri/streaming/portforward/websocket.go`) multiplexes channels
over binary websocket messages, each starting with its channel byte:

- the ports are query parameters (`?ports=8888&ports=9999`); for the port at
  index i, channel 2i carries data both ways and channel 2i+1 carries error
  text from the server;
- the server's first message on every channel is `[channel, port & 0xff,
  port >> 8]` — the port, little-endian — before anything else;
- the client sends `[2i] + data`; it never writes an error channel;
- any text on an error channel means that port failed ("error forwarding
  port 8888 to pod …: connection refused"); the kubelet dials each port as
  the websocket opens and closes the websocket when every port is done.
  v4 has no per-port close: a port's TCP connection lives as long as the
  websocket, so one websocket per connection is the unit to reopen.

The framing is pure functions and a small :class:`Demux` state machine, unit
tested without a server. :class:`PortForward` runs it over one websocket for
one or more ports, one :class:`PortStream` (read/write/close) per port. With
one port the stream reads the websocket directly, with no task or queue in
between, because that is the tunnel's latency path; with several, a reader
task owned by the PortForward hands frames to bounded per-port queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Self

from jkctl.errors import KubeError, PortNotListening, TunnelError

from .client import KubeClient
from .resources import PODS
from .websocket import KubeWebSocket

PROTOCOL = "v4.channel.k8s.io"


def data_channel(index: int) -> int:
    return 2 * index


def error_channel(index: int) -> int:
    return 2 * index + 1


def encode(channel: int, data: bytes) -> bytes:
    """A client message: the channel byte, then the payload."""
    return bytes((channel,)) + data


def port_header(channel: int, port: int) -> bytes:
    """The server's first message on a channel (what fakes and kubesim send)."""
    return bytes((channel,)) + struct.pack("<H", port)


@dataclass(frozen=True, slots=True)
class Data:
    index: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Failure:
    index: int
    message: str


class ProtocolError(ValueError):
    """The server's messages do not follow v4.channel.k8s.io."""


class Demux:
    """Sorts server messages into per-port data and failures, checking port headers."""

    def __init__(self, ports: Sequence[int]) -> None:
        self._ports = tuple(ports)
        self._headed = [False] * (2 * len(self._ports))

    def feed(self, message: bytes) -> Data | Failure | None:
        """What one message means; None for a port header (or an empty payload)."""
        if not message:
            raise ProtocolError("an empty message has no channel")
        channel = message[0]
        if channel >= len(self._headed):
            raise ProtocolError(f"channel {channel} is not one of the {len(self._ports)} ports'")
        index = channel // 2
        payload = message[1:]
        if not self._headed[channel]:
            if len(payload) < 2:
                raise ProtocolError(f"channel {channel} opened without its port header")
            (port,) = struct.unpack_from("<H", payload)
            if port != self._ports[index]:
                raise ProtocolError(
                    f"channel {channel} announced port {port}, not {self._ports[index]}"
                )
            self._headed[channel] = True
            payload = payload[2:]
        if not payload:
            return None
        if channel % 2:
            return Failure(index, payload.decode("utf-8", "replace"))
        return Data(index, payload)


class _End:
    """Wakes a reader of a per-port queue: the websocket has ended (see PortForward._ended)."""


_END = _End()


class PortForward:
    """One `pods/portforward` websocket carrying one TCP connection to each of ``ports``."""

    def __init__(
        self,
        kube: KubeClient,
        pod: str,
        ports: Sequence[int],
        *,
        namespace: str | None = None,
        queued_messages: int = 16,
    ) -> None:
        if not ports or len(set(ports)) != len(ports):
            raise ValueError("ports must be distinct, and at least one")
        self._kube = kube
        self.pod = pod
        self.ports = tuple(ports)
        self.namespace = namespace or kube.namespace
        self._demux = Demux(self.ports)
        self._stack = AsyncExitStack()
        self._ws: KubeWebSocket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._queues = [asyncio.Queue[Data | Failure | _End](queued_messages) for _ in self.ports]
        self._streams = [PortStream(self, index, port) for index, port in enumerate(self.ports)]
        #: Why the websocket ended, if not cleanly; set once it has.
        self._ended: TunnelError | None = None
        self._eof = False
        self._reader_done = False

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            self._ws = await stack.enter_async_context(
                self._kube.websocket(
                    PODS,
                    self.pod,
                    namespace=self.namespace,
                    subresource="portforward",
                    params=[("ports", str(port)) for port in self.ports],
                    protocols=(PROTOCOL,),
                )
            )
            if len(self.ports) > 1:
                self._reader = asyncio.create_task(self._read_all(self._ws))
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if self._reader is not None:
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader
        finally:
            await self._stack.aclose()

    def stream(self, port: int) -> PortStream:
        return self._streams[self.ports.index(port)]

    # -- used by PortStream ------------------------------------------------------------

    async def _receive(self, index: int) -> bytes:
        """The next data for port ``index``; b"" when the websocket has ended."""
        if self._reader is None:
            return await self._receive_direct()
        queue = self._queues[index]
        if queue.empty() and self._reader_done:
            return self._end()
        item = await queue.get()
        if isinstance(item, Data):
            return item.data
        if isinstance(item, Failure):
            raise self._failure(item)
        return self._end()

    async def _receive_direct(self) -> bytes:
        ws = self._open_ws()
        while not self._eof:
            if self._ended is not None:
                raise self._ended
            event = self._interpret(await self._next_message(ws))
            if isinstance(event, Data):
                return event.data
            if isinstance(event, Failure):
                self._ended = self._failure(event)
                raise self._ended
        return b""

    async def _send(self, index: int, data: bytes) -> None:
        try:
            await self._open_ws().send(encode(data_channel(index), data))
        except KubeError as exc:
            raise self._cut(index, exc) from exc

    async def _close(self) -> None:
        if all(stream.closed for stream in self._streams):
            await self._open_ws().close()

    # -- internals ---------------------------------------------------------------------

    async def _read_all(self, ws: KubeWebSocket) -> None:
        """The multi-port reader: hand each message to its port's queue (waiting if full)."""
        try:
            while not self._eof:
                event = self._interpret(await self._next_message(ws))
                if event is not None and not self._streams[event.index].closed:
                    await self._queues[event.index].put(event)
        except TunnelError:
            pass  # kept in self._ended for the readers
        finally:
            self._reader_done = True
            # Wake blocked readers; a full queue's reader finds the end once it drains.
            for queue in self._queues:
                if not queue.full():
                    queue.put_nowait(_END)

    async def _next_message(self, ws: KubeWebSocket) -> bytes | None:
        try:
            return await ws.receive()
        except KubeError as exc:
            self._ended = self._cut(None, exc)
            raise self._ended from exc

    def _interpret(self, message: bytes | None) -> Data | Failure | None:
        if message is None:
            self._eof = True
            return None
        try:
            return self._demux.feed(message)
        except ProtocolError as exc:
            self._ended = TunnelError(
                f'the port-forward to pod "{self.pod}" broke the {PROTOCOL} protocol: {exc}',
                hint="please report it with the --debug output; a proxy may be rewriting "
                "websocket messages",
            )
            raise self._ended from exc

    def _end(self) -> bytes:
        if self._ended is not None:
            raise self._ended
        return b""

    def _open_ws(self) -> KubeWebSocket:
        if self._ws is None:
            raise RuntimeError("PortForward is used outside `async with`")
        return self._ws

    def _failure(self, failure: Failure) -> TunnelError:
        port = self.ports[failure.index]
        refused = "connection refused" in failure.message.lower()
        error_type = PortNotListening if refused else TunnelError
        return error_type(
            f'Kubernetes could not forward port {port} of pod "{self.pod}"'
            + (": nothing in the pod listens on it" if refused else ""),
            hint=f"check that the pod is running and listening on port {port} "
            f"(kubectl logs {self.pod} -n {self.namespace})",
            context=failure.message,
        )

    def _cut(self, index: int | None, exc: KubeError) -> TunnelError:
        which = f"port {self.ports[index]} of " if index is not None else ""
        return TunnelError(
            f'the port-forward to {which}pod "{self.pod}" was cut',
            hint="open it again; if it keeps dropping, check the network and the pod",
            context=exc.message,
        )


class PortStream:
    """One forwarded port: bytes in, bytes out, like a TCP connection to the pod."""

    def __init__(self, forward: PortForward, index: int, port: int) -> None:
        self._forward = forward
        self._index = index
        self.port = port
        self.closed = False

    async def read(self) -> bytes:
        """The next bytes from the pod (as large as they came); b"" at the end.

        One reader per stream at a time, as with a socket.
        """
        if self.closed:
            return b""
        return await self._forward._receive(self._index)

    async def write(self, data: bytes) -> None:
        if self.closed:
            raise RuntimeError("write to a closed PortStream")
        if data:
            await self._forward._send(self._index, data)

    async def close(self) -> None:
        """Stop using this port; the websocket closes when every port has."""
        if not self.closed:
            self.closed = True
            await self._forward._close()
