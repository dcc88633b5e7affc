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
simply waits, well inside ZeroMQ's handshake interval.

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
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from jkctl.errors import JkctlError, TunnelError

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
    backoff_max: float = 8.0
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


class _Counters:
    """The live, mutable counters behind :class:`TunnelStats` (cheap on the data path)."""

    __slots__ = ("active", "bytes_from_pod", "bytes_to_pod", "failed", "failure_streak", "opened")

    def __init__(self) -> None:
        self.opened = self.failed = self.active = self.failure_streak = 0
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
        self._retry_at = 0.0
        self._created_directory = False
        self._idle = asyncio.Event()
        self._idle.set()

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
        )

    async def wait_idle(self) -> None:
        """Return once no connection is being forwarded."""
        await self._idle.wait()

    # -- serving -----------------------------------------------------------------------

    async def _accept(self, port: int, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            connection, _ = await loop.sock_accept(listener)
            self._start(self._serve(port, connection))

    async def _serve(self, port: int, connection: socket.socket) -> None:
        """One local connection: wait out any back-off, open a websocket, pump until one ends."""
        try:
            reader, writer = await asyncio.open_unix_connection(
                sock=connection, limit=self._settings.read_size
            )
        except OSError:
            connection.close()  # the local peer is already gone
            return
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(writer.close)
            try:
                await self._wait_for_backoff()
                async with asyncio.timeout(self._settings.open_timeout):
                    forward = await stack.enter_async_context(
                        PortForward(self._kube, self.pod, [port], namespace=self.namespace)
                    )
            except (JkctlError, TimeoutError) as exc:
                self._failed(port, exc)
                return
            self._counters.opened += 1
            self._activity(+1)
            stack.callback(self._activity, -1)
            try:
                received = await self._pump(forward.stream(port), reader, writer)
            except JkctlError as exc:
                self._failed(port, exc)
                return
            if received is False:
                # The pod side hung up before saying anything (a ZeroMQ peer
                # greets first): a failure, so that an API server that accepts
                # and drops does not get a tight loop of reconnects.
                self._failed(port, TunnelError("the port-forward closed before any data came"))

    async def _pump(
        self, remote: PortStream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool | None:
        """Both directions at once; when either ends, the other is cancelled.

        Returns None when the local side ended first, else whether the pod
        sent anything before it ended.
        """
        received = [False]
        to_pod = asyncio.create_task(self._to_pod(reader, remote))
        from_pod = asyncio.create_task(self._from_pod(remote, writer, received))
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

    async def _to_pod(self, reader: asyncio.StreamReader, remote: PortStream) -> None:
        size = self._settings.read_size
        counters = self._counters
        with contextlib.suppress(ConnectionError):  # the local side went away: the end
            while data := await reader.read(size):
                counters.bytes_to_pod += len(data)
                await remote.write(data)

    async def _from_pod(
        self, remote: PortStream, writer: asyncio.StreamWriter, received: list[bool]
    ) -> None:
        counters = self._counters
        with contextlib.suppress(ConnectionError):  # the local side went away: the end
            while data := await remote.read():
                if not received[0]:
                    received[0] = True
                    counters.failure_streak = 0
                writer.write(data)
                counters.bytes_from_pod += len(data)
                await writer.drain()

    # -- back-off ----------------------------------------------------------------------

    async def _wait_for_backoff(self) -> None:
        delay = self._retry_at - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)

    def _failed(self, port: int, exc: BaseException) -> None:
        counters = self._counters
        counters.failed += 1
        counters.failure_streak += 1
        streak = counters.failure_streak
        settings = self._settings
        delay = min(settings.backoff_max, settings.backoff_initial * 2 ** (streak - 1))
        delay *= random.uniform(0.8, 1.2)
        self._retry_at = asyncio.get_running_loop().time() + delay
        message = exc.message if isinstance(exc, JkctlError) else str(exc) or type(exc).__name__
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

    def _start(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = self._group.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
