"""A pod's ports as local Unix sockets, each connection tunnelled through pods/portforward.

ZeroMQ in the daemon connects to ``ipc://DIR/PORT``; every connection it
makes is accepted here and given its own port-forward websocket to that
port of the pod (v4 carries one TCP connection per port per websocket, so
this is the natural unit). Bytes are pumped both ways with backpressure:
a pump awaits the other side's drain before reading more, so nothing is
buffered beyond the sockets' and websocket's own bounded buffers.

When either side ends, the other is closed. That is the whole reconnect
story: ZeroMQ reconnects by itself, and the next connection gets a fresh
websocket. So that a failing API server does not turn ZeroMQ's quick
reconnects into a tight loop, consecutive failures push the next attempt
back (exponential, capped, jittered) before it dials; the local connection
simply waits, well inside ZeroMQ's handshake interval. After a failure only
one connection at a time dials (as when probing, below), and only failures
of connections that dialed after the last one count towards the back-off:
a kernel's four connections failing together in one outage are one failure,
not four, so the tunnel is back soon after the API server is (a gentle
factor, 1.5, keeps the overshoot small: what a drop costs is output lost).

A pod that *refuses* a port is different: the API server and kubelet
answered, and the process behind the port is starting (a kernel booting or
restarting in place). The tunnel then *probes*: one connection at a time
dials, after a short delay that grows slowly (``refused_initial`` up to
``refused_max``), and the first byte from the pod ends probing, so every
waiting connection dials at once. That keeps the time from "the kernel
listens" to "the daemon talks to it" to a few tens of milliseconds without
a storm of websockets while it boots.

A tunnel can be *paused* (:meth:`Tunnel.pause`): connections are accepted
and held, nothing is dialed, until :meth:`Tunnel.resume` (the Kubernetes
backend opens the tunnel when a pod is created and resumes it once the pod
runs). While a connection waits, what it sends is kept for the pod, and a
connection that ends meanwhile is dropped without dialing.
:meth:`Tunnel.retarget` points later connections at another pod, and
:meth:`Tunnel.close_connections` ends the current ones.

The sockets live in a 0700 directory so that other local users cannot
reach the kernel. :class:`Tunnel` owns its tasks (``async with``) and
removes its sockets on exit. Counters (:class:`TunnelStats`) are kept for
diagnostics. Not here: choosing the directory, and ZeroMQ itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import stat
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from jkctl.errors import JkctlError, PortNotListening, TunnelError

from .client import KubeClient
from .portforward import PortForward, PortStream

logger = logging.getLogger(__name__)

#: sun_path is 108 bytes on Linux (104 on macOS), including the final NUL.
_MAX_SOCKET_PATH = 103


@dataclass(frozen=True, kw_only=True)
class TunnelSettings:
    #: Largest local read forwarded as one websocket message.
    read_size: int = 256 * 1024
    #: Delay before dialing after the first failure, doubling per failure up to max.
    backoff_initial: float = 0.25
    backoff_factor: float = 1.5
    backoff_max: float = 8.0
    #: After the pod refused a port: the delay before the next probe, growing to max.
    refused_initial: float = 0.02
    refused_max: float = 0.2
    #: Opening one port-forward websocket (on top of the client's request timeout).
    open_timeout: float = 30.0


@dataclass(frozen=True, kw_only=True)
class TunnelStats:
    """What the tunnel has done so far (a snapshot)."""

    opened: int = 0
    failed: int = 0
    active: int = 0
    bytes_to_pod: int = 0
    bytes_from_pod: int = 0
    #: Failures since the last stream that worked: what sets the back-off.
    failure_streak: int = 0
    #: Of the failures, those where the pod refused the port (nothing listened yet).
    refused: int = 0
    #: Connections held for their turn to dial (paused, backing off, or probing).
    waiting: int = 0
    #: Connections that ended while they waited, never dialed.
    dropped: int = 0


class _Counters:
    """The live, mutable counters behind :class:`TunnelStats` (cheap on the data path)."""

    __slots__ = (
        "active",
        "bytes_from_pod",
        "bytes_to_pod",
        "dropped",
        "failed",
        "failure_streak",
        "opened",
        "refused",
        "waiting",
    )

    def __init__(self) -> None:
        self.opened = self.failed = self.active = self.failure_streak = self.refused = 0
        self.waiting = self.dropped = 0
        self.bytes_to_pod = self.bytes_from_pod = 0


class Tunnel:
    """``async with Tunnel(kube, pod=..., ports=[...], directory=...) as tunnel:``."""

    def __init__(
        self,
        kube: KubeClient,
        *,
        pod: str,
        ports: Sequence[int],
        directory: Path,
        namespace: str | None = None,
        settings: TunnelSettings | None = None,
        paused: bool = False,
    ) -> None:
        self._kube = kube
        self.pod = pod
        self.ports = tuple(ports)
        self.directory = directory
        self.namespace = namespace or kube.namespace
        self._settings = settings or TunnelSettings()
        self._counters = _Counters()
        self._listeners: dict[int, socket.socket] = {}
        self._group = asyncio.TaskGroup()
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections: set[asyncio.Task[None]] = set()
        self._retry_at = 0.0
        #: When the last failure was recorded (loop time): older dials do not add to it.
        self._failed_at = float("-inf")
        self._created_directory = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._change = asyncio.Event()
        self._resumed = asyncio.Event()
        if not paused:
            self._resumed.set()
        # Probing: while the pod refuses the port, one connection at a time dials.
        self._probing = False
        self._probe_busy = False
        self._probe_done = asyncio.Event()
        self._probe_done.set()
        self._refused_streak = 0

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            self._prepare_directory()
            for port in self.ports:
                self._listeners[port] = self._listen(self.path(port))
        except BaseException:
            self._remove_sockets()
            raise
        # The group's tasks belong to the task that entered the tunnel: a bug
        # in one of them cancels it, rather than vanishing.
        await self._group.__aenter__()
        for port, listener in self._listeners.items():
            self._start(self._accept(port, listener))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        try:
            await self._group.__aexit__(None, None, None)
        finally:
            self._remove_sockets()

    def path(self, port: int) -> Path:
        """The Unix socket standing for the pod's ``port``."""
        if port not in self.ports:
            raise KeyError(port)
        return self.directory / str(port)

    def address(self, port: int) -> str:
        """The ZeroMQ endpoint for the pod's ``port``: `ipc:///…/PORT`."""
        return f"ipc://{self.path(port)}"

    @property
    def stats(self) -> TunnelStats:
        counters = self._counters
        return TunnelStats(
            opened=counters.opened,
            failed=counters.failed,
            active=counters.active,
            bytes_to_pod=counters.bytes_to_pod,
            bytes_from_pod=counters.bytes_from_pod,
            failure_streak=counters.failure_streak,
            refused=counters.refused,
            waiting=counters.waiting,
            dropped=counters.dropped,
        )

    async def wait_stats(self, predicate: Callable[[TunnelStats], bool]) -> TunnelStats:
        """Until the counters satisfy ``predicate`` (checked whenever a connection changes)."""
        while not predicate(stats := self.stats):
            await self._change.wait()
        return stats

    async def wait_idle(self) -> None:
        """Return once no connection is being forwarded."""
        await self._idle.wait()

    # -- control -----------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    def pause(self) -> None:
        """Hold new connections (accepted, not dialed) until :meth:`resume`."""
        self._resumed.clear()

    def resume(self, *, probe: bool = True) -> None:
        """Dial again, forgetting past failures; ``probe`` starts with one connection
        at a time (the process behind the port may still be starting)."""
        self._retry_at = 0.0
        self._counters.failure_streak = 0
        self._refused_streak = 0
        self._probing = probe
        self._resumed.set()

    def retarget(self, pod: str) -> None:
        """Forward later connections to ``pod`` (current ones stay where they are)."""
        self.pod = pod

    def close_connections(self) -> None:
        """End every local connection, forwarded or waiting; the listeners stay."""
        for task in list(self._connections):
            task.cancel()

    # -- serving -----------------------------------------------------------------------

    async def _accept(self, port: int, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            connection, _ = await loop.sock_accept(listener)
            task = self._start(self._serve(port, connection))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def _serve(self, port: int, connection: socket.socket) -> None:
        """One local connection: wait for its turn, open a websocket, pump until one ends."""
        try:
            reader, writer = await asyncio.open_unix_connection(
                sock=connection, limit=self._settings.read_size
            )
        except OSError:
            connection.close()  # the local peer is already gone
            return
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(writer.close)
            turn = await self._wait_turn(reader)
            if turn is None:
                return  # the local side left while it waited
            early, probe = turn
            if probe is not None:
                stack.callback(probe.release)
            dialed_at = asyncio.get_running_loop().time()
            try:
                async with asyncio.timeout(self._settings.open_timeout):
                    forward = await stack.enter_async_context(
                        PortForward(self._kube, self.pod, [port], namespace=self.namespace)
                    )
            except (JkctlError, TimeoutError) as exc:
                self._failed(port, exc, dialed_at)
                return
            self._counters.opened += 1
            self._activity(+1)
            stack.callback(self._activity, -1)
            try:
                received = await self._pump(forward.stream(port), reader, writer, early, probe)
            except JkctlError as exc:
                self._failed(port, exc, dialed_at)
                return
            if received is False:
                # The pod side hung up before saying anything (a ZeroMQ peer
                # greets first): a failure, so that an API server that accepts
                # and drops does not get a tight loop of reconnects.
                self._failed(
                    port, TunnelError("the port-forward closed before any data came"), dialed_at
                )

    async def _pump(
        self,
        remote: PortStream,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        early: bytes,
        probe: _ProbeSlot | None,
    ) -> bool | None:
        """Both directions at once; when either ends, the other is cancelled.

        ``early`` is what the local side sent while it waited for its turn.
        Returns None when the local side ended first, else whether the pod
        sent anything before it ended.
        """
        received = [False]
        to_pod = asyncio.create_task(self._to_pod(reader, remote, early))
        from_pod = asyncio.create_task(self._from_pod(remote, writer, received, probe))
        try:
            done, _ = await asyncio.wait({to_pod, from_pod}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (to_pod, from_pod):
                task.cancel()
            results = await asyncio.gather(to_pod, from_pod, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return received[0] if from_pod in done else None

    async def _to_pod(self, reader: asyncio.StreamReader, remote: PortStream, early: bytes) -> None:
        size = self._settings.read_size
        counters = self._counters
        if early:
            counters.bytes_to_pod += len(early)
            await remote.write(early)
        with contextlib.suppress(ConnectionError):  # the local side went away: the end
            while data := await reader.read(size):
                counters.bytes_to_pod += len(data)
                await remote.write(data)

    async def _from_pod(
        self,
        remote: PortStream,
        writer: asyncio.StreamWriter,
        received: list[bool],
        probe: _ProbeSlot | None,
    ) -> None:
        counters = self._counters
        with contextlib.suppress(ConnectionError):  # the local side went away: the end
            while data := await remote.read():
                writer.write(data)
                counters.bytes_from_pod += len(data)
                if not received[0]:
                    received[0] = True
                    self._answered(probe)
                await writer.drain()

    # -- whose turn it is to dial --------------------------------------------------------

    async def _wait_turn(
        self, reader: asyncio.StreamReader
    ) -> tuple[bytes, _ProbeSlot | None] | None:
        """Until this connection may dial: (what it sent meanwhile, its probe slot if it
        probes); None if it ended while it waited."""
        now = asyncio.get_running_loop().time()
        if self._resumed.is_set() and not self._probing and self._retry_at <= now:
            return b"", None  # the common case: dial now
        turn = asyncio.ensure_future(self._turn())
        self._count("waiting", +1)
        try:
            early = await self._read_while(reader, turn)
        finally:
            self._count("waiting", -1)
            if not turn.done():
                turn.cancel()
                await asyncio.wait([turn])
        if early is None:
            if not turn.cancelled() and (slot := turn.result()) is not None:
                slot.release()
            self._count("dropped", +1)
            return None
        return early, turn.result()

    async def _read_while(
        self, reader: asyncio.StreamReader, turn: asyncio.Future[_ProbeSlot | None]
    ) -> bytes | None:
        """What the local side sends until ``turn`` is done; None if it ends first."""
        buffered = bytearray()
        read: asyncio.Future[bytes] | None = None
        try:
            while not turn.done():
                if read is None and len(buffered) < self._settings.read_size:
                    read = asyncio.ensure_future(reader.read(self._settings.read_size))
                waiting: set[asyncio.Future[Any]] = {turn} if read is None else {turn, read}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if read is not None and read.done():
                    try:
                        data = read.result()
                    except ConnectionError:
                        data = b""
                    read = None
                    if not data:
                        return None
                    buffered += data
        finally:
            if read is not None and not read.done():
                read.cancel()
                await asyncio.wait([read])
        return bytes(buffered)

    async def _turn(self) -> _ProbeSlot | None:
        """Wait out a pause, the back-off, and another connection's probe; a slot if
        this connection is to probe."""
        loop = asyncio.get_running_loop()
        while True:
            await self._resumed.wait()
            delay = self._retry_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            if not self._probing:
                return None
            if not self._probe_busy:
                self._probe_busy = True
                self._probe_done.clear()
                return _ProbeSlot(self)
            await self._probe_done.wait()

    def _probe_ended(self) -> None:
        self._probe_busy = False
        self._probe_done.set()

    def _answered(self, probe: _ProbeSlot | None) -> None:
        """The pod sent data: whatever listens is up; everyone may dial."""
        self._counters.failure_streak = 0
        self._refused_streak = 0
        self._probing = False
        if probe is not None:
            probe.release()
        self._changed()

    # -- back-off ----------------------------------------------------------------------

    def _failed(self, port: int, exc: BaseException, dialed_at: float) -> None:
        counters = self._counters
        counters.failed += 1
        loop = asyncio.get_running_loop()
        refused = isinstance(exc, PortNotListening)
        if not refused and dialed_at < self._failed_at:
            # It dialed before the last failure was known (a burst of reconnects):
            # the same failure, already counted and waited for.
            self._changed()
            return
        self._failed_at = loop.time()
        counters.failure_streak += 1
        self._changed()
        settings = self._settings
        message = exc.message if isinstance(exc, JkctlError) else str(exc) or type(exc).__name__
        if refused:
            # The process behind the port is starting: probe again soon, one at a time.
            counters.refused += 1
            self._refused_streak += 1
            self._probing = True
            delay = min(
                settings.refused_max, settings.refused_initial * 1.5 ** (self._refused_streak - 1)
            )
            self._retry_at = loop.time() + delay
            logger.debug(
                "port %d of pod %s is not listening yet (%d in a row); probing again in %.0f ms",
                port,
                self.pod,
                self._refused_streak,
                delay * 1000,
            )
            return
        streak = counters.failure_streak
        delay = settings.backoff_initial * settings.backoff_factor ** (streak - 1)
        delay = min(settings.backoff_max, delay) * random.uniform(0.8, 1.2)
        self._retry_at = loop.time() + delay
        self._probing = True  # one connection at a time dials until one works
        logger.warning(
            "tunnel to port %d of pod %s failed (%d in a row, next try in %.1f s): %s",
            port,
            self.pod,
            streak,
            delay,
            message,
        )

    def _activity(self, delta: int) -> None:
        self._counters.active += delta
        if self._counters.active:
            self._idle.clear()
        else:
            self._idle.set()
        self._changed()

    def _count(self, counter: str, delta: int) -> None:
        setattr(self._counters, counter, getattr(self._counters, counter) + delta)
        self._changed()

    def _changed(self) -> None:
        """Wake :meth:`wait_stats` (per connection event, never per byte)."""
        self._change.set()
        self._change = asyncio.Event()

    def _start(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._group.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- the socket directory ----------------------------------------------------------

    def _prepare_directory(self) -> None:
        """Create (or tighten) the directory to 0700, and refuse one owned by someone else."""
        try:
            self.directory.mkdir(mode=0o700, parents=True)
            self._created_directory = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise self._directory_error(exc) from exc
        info = self.directory.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise TunnelError(
                f"the tunnel directory {self.directory} is not a directory owned by you",
                hint="remove it, or point jkctl's state directory elsewhere",
            )
        if stat.S_IMODE(info.st_mode) != 0o700:
            self.directory.chmod(0o700)

    def _listen(self, path: Path) -> socket.socket:
        if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
            raise TunnelError(
                f"the tunnel socket path {path} is too long for a Unix socket",
                hint="set JKCTL_STATE_DIR to a shorter directory",
            )
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # a socket left by a daemon that died
            listener.bind(str(path))
            path.chmod(0o600)
            listener.listen(16)
            listener.setblocking(False)
        except OSError as exc:
            listener.close()
            raise self._directory_error(exc) from exc
        return listener

    def _remove_sockets(self) -> None:
        for port, listener in self._listeners.items():
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.path(port).unlink()
        self._listeners.clear()
        if self._created_directory:
            with contextlib.suppress(OSError):
                self.directory.rmdir()

    def _directory_error(self, exc: OSError) -> TunnelError:
        return TunnelError(
            f"cannot create the tunnel sockets in {self.directory}: {exc.strerror or exc}",
            hint="check that jkctl's state directory is writable (or set JKCTL_STATE_DIR)",
        )


class _ProbeSlot:
    """The right to probe the pod, held by one connection until it hears from the pod or
    ends; releasing it twice is harmless."""

    __slots__ = ("_released", "_tunnel")

    def __init__(self, tunnel: Tunnel) -> None:
        self._tunnel = tunnel
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._tunnel._probe_ended()
