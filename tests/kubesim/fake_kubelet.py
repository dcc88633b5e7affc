"""A stand-in kubelet for testing the API server's streams without running pods.

Every pod "listens" on every port through one local echo server: bytes sent
come back; a connection that receives `close\\n` is closed by the pod side.
Port 1 refuses, with the kind of message a CRI sends. Logs are three lines
per container (`<container> line N`), or with `follow` a line per `emit()`
call until the stream is closed. Fault commands are recorded, not acted on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from tests.kubesim.kubelet_protocol import PortForwardError
from tests.kubesim.store import Store

REFUSING_PORT = 1


class FakeKubelet:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.open_connections = 0
        self._server: asyncio.Server | None = None
        self._followers: set[asyncio.Queue[bytes | None]] = set()
        self._started = asyncio.Event()
        self.changed = asyncio.Condition()  # notified when connections or log followers change

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def run(self) -> None:
        self._server = await asyncio.start_server(self._echo, "127.0.0.1", 0)
        self._started.set()
        async with self._server:
            await self._server.serve_forever()

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        await self._notify()
        try:
            while line := await reader.readline():
                if line == b"close\n":
                    break
                writer.write(line)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.open_connections -= 1
            writer.close()
            await self._notify()

    async def open_port(
        self, namespace: str, pod: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if port == REFUSING_PORT:
            raise PortForwardError(
                f"failed to connect to localhost:{port} inside namespace of pod {namespace}/{pod}: "
                f"dial tcp 127.0.0.1:{port}: connect: connection refused"
            )
        await self._started.wait()
        assert self._server is not None
        address = self._server.sockets[0].getsockname()
        return await asyncio.open_connection(address[0], address[1])

    async def log_stream(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None,
        follow: bool,
        tail_lines: int | None,
        previous: bool,
        timestamps: bool,
    ) -> AsyncIterator[bytes]:
        self.calls.append(
            ("log_stream", (namespace, pod, container, follow, tail_lines, previous, timestamps))
        )
        lines = [f"{container} line {n}\n".encode() for n in (1, 2, 3)]
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines else []
        for line in lines:
            yield line
        if not follow:
            return
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._followers.add(queue)
        await self._notify()
        try:
            while (line := await queue.get()) is not None:
                yield line
        finally:
            self._followers.discard(queue)
            await self._notify()

    def emit(self, line: bytes) -> None:
        """Append a line to every followed log."""
        for queue in self._followers:
            queue.put_nowait(line)

    @property
    def followers(self) -> int:
        return len(self._followers)

    async def kill_container(self, namespace: str, pod: str, container: str | None = None) -> None:
        self.calls.append(("kill_container", (namespace, pod, container)))

    async def lose_pod(self, namespace: str, pod: str) -> None:
        self.calls.append(("lose_pod", (namespace, pod)))

    def set_node_ready(self, node: str, ready: bool) -> None:
        self.calls.append(("set_node_ready", (node, ready)))

    def fail_images(self, *images: str) -> None:
        self.calls.append(("fail_images", images))

    def set_pull_delay(self, seconds: float) -> None:
        self.calls.append(("set_pull_delay", (seconds,)))

    async def shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
