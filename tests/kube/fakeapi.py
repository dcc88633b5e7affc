"""A small scriptable API server for jkctl.kube's tests (kubesim will do this for real).

:class:`FakeApi` is a real aiohttp server on 127.0.0.1 (optionally TLS, with
client certificates) whose routes a test sets: each answer is a handler, and
every request is recorded. It checks bearer tokens like an API server does
(401 Status when the token is not accepted) and can serve
`pods/portforward` over `v4.channel.k8s.io`, dialing 127.0.0.1 ports the
test names, the way a kubelet dials inside the pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import WSMsgType, web

from jkctl.kube.login import Credentials

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def status_response(code: int, reason: str, message: str, **details: Any) -> web.Response:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return web.json_response(body, status=code)


@dataclass
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes


@dataclass
class CountingLogin:
    """A Login whose n-th call returns ``make(n)``; counts calls."""

    make: Callable[[int], Credentials]
    calls: int = 0

    def credentials(self) -> Credentials:
        self.calls += 1
        return self.make(self.calls)


class FakeApi:
    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self.handlers: dict[tuple[str, str], Handler] = {}
        self.requests: list[Recorded] = []
        #: Accepted bearer tokens; None accepts anything (and no header at all).
        self.tokens: set[str] | None = None
        #: Pod port -> local port the "kubelet" dials for pods/portforward.
        self.pod_ports: dict[int, int] = {}
        self.portforwards: list[str] = []
        self.websockets: set[web.WebSocketResponse] = set()
        self._tls = tls
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # Cancel a handler when its client goes away, as a real API server
        # notices a dropped watch or log follower.
        self._runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=0.5, handler_cancellation=True
        )
        self.url = ""

    async def __aenter__(self) -> Self:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._tls)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"{'https' if self._tls else 'http'}://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop listening and drop every connection (the API server went away)."""
        for ws in list(self.websockets):
            await ws.close()
        await self._runner.cleanup()

    def credentials(self, token: str | None = "t0k3n", **overrides: Any) -> Credentials:
        fields: dict[str, Any] = {
            "server": self.url,
            "context": "fake",
            "cluster": "fake",
            "user": "alice",
            "namespace": "geo",
            "authorization": f"Bearer {token}" if token else None,
        }
        fields.update(overrides)
        return Credentials(**fields)

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.handlers[(method, path)] = handler

    def json(self, method: str, path: str, body: object, status: int = 200) -> None:
        async def answer(request: web.Request) -> web.Response:
            return web.json_response(body, status=status)

        self.on(method, path, answer)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            Recorded(
                method=request.method,
                path=request.path,
                query=list(request.query.items()),
                headers=dict(request.headers),
                body=await request.read(),
            )
        )
        if self.tokens is not None:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme != "Bearer" or token not in self.tokens:
                return status_response(401, "Unauthorized", "Unauthorized")
        handler = self.handlers.get((request.method, request.path))
        if handler is None and request.path.endswith("/portforward"):
            handler = self._portforward
        if handler is None:
            return status_response(404, "NotFound", f"the server could not find {request.path}")
        return await handler(request)

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        """`pods/portforward` as the kubelet serves it over v4.channel.k8s.io."""
        ports = [int(p) for value in request.query.getall("ports", []) for p in value.split(",")]
        ws = web.WebSocketResponse(protocols=["v4.channel.k8s.io"], max_msg_size=0)
        await ws.prepare(request)
        self.websockets.add(ws)
        self.portforwards.append(request.path)
        try:
            await _forward(ws, ports, self.pod_ports, pod=request.match_info["tail"])
        finally:
            self.websockets.discard(ws)
        return ws


async def _forward(
    ws: web.WebSocketResponse, ports: list[int], pod_ports: Mapping[int, int], *, pod: str
) -> None:
    writers: dict[int, asyncio.StreamWriter] = {}
    readers: dict[int, asyncio.StreamReader] = {}
    for index, port in enumerate(ports):
        header = struct.pack("<H", port)
        await ws.send_bytes(bytes([2 * index]) + header)
        await ws.send_bytes(bytes([2 * index + 1]) + header)
        try:
            readers[index], writers[index] = await asyncio.open_connection(
                "127.0.0.1", pod_ports.get(port, 1)
            )
        except OSError as exc:
            # The kubelet's wording (runtime dial error inside the pod's netns).
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            message = (
                f"error forwarding port {port} to pod {pod}, uid : failed to connect to "
                f"localhost:{port} inside namespace, IPv4: dial tcp4 127.0.0.1:{port}: "
                f"connect: {reason}"
            )
            await ws.send_bytes(bytes([2 * index + 1]) + message.encode())
    try:
        async with asyncio.TaskGroup() as group:
            for index, reader in readers.items():
                group.create_task(_pod_to_ws(ws, index, reader))
            group.create_task(_ws_to_pod(ws, writers))
    except* (ConnectionError, _Finished):
        pass
    finally:
        for writer in writers.values():
            writer.close()
        await ws.close()


class _Finished(Exception):
    """One side of the fake kubelet's forwarding ended."""


async def _pod_to_ws(ws: web.WebSocketResponse, index: int, reader: asyncio.StreamReader) -> None:
    while data := await reader.read(65536):
        await ws.send_bytes(bytes([2 * index]) + data)
    raise _Finished


async def _ws_to_pod(
    ws: web.WebSocketResponse, writers: Mapping[int, asyncio.StreamWriter]
) -> None:
    async for message in ws:
        if message.type is not WSMsgType.BINARY:
            break
        channel, data = message.data[0], message.data[1:]
        writer = writers.get(channel // 2)
        if writer is None or channel % 2:
            break
        writer.write(data)
        await writer.drain()
    raise _Finished


@dataclass
class EchoServer:
    """A TCP echo server on 127.0.0.1, standing in for a kernel's port in a pod."""

    port: int = 0
    connections: int = 0
    #: One item per connection that ended.
    ended: asyncio.Queue[None] = field(default_factory=asyncio.Queue)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._echo, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._server.wait_closed()

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            self.ended.put_nowait(None)


def watch_lines(*events: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(event).encode() + b"\n" for event in events)
