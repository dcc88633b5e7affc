"""The control channel: fault and admin commands for a running kubesim, on a Unix socket.

It is not on the API port because the faults close that port. One JSON
object per line each way: `{"op": "refuse_api", "args": {"seconds": 2}}`
is answered by `{"ok": true, "result": null}` or `{"ok": false, "error":
"..."}`. Commands that last N seconds answer at once; the effect lasts
while the test observes it.

`ControlClient` is the blocking client the pytest fixture uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.kubesim.cluster import Cluster

logger = logging.getLogger(__name__)

_LIMIT = 1024 * 1024


def _commands(cluster: Cluster) -> dict[str, Callable[..., Any]]:
    """Control command name -> callable taking the command's arguments (sync or async)."""
    return {
        "ping": lambda: "pong",
        "create_user": lambda name, groups=(): cluster.create_user(name, groups),
        "create_namespace": cluster.create_namespace,
        "delete_namespace": cluster.delete_namespace,
        "close_portforwards": cluster.close_portforwards,
        "refuse_api": lambda seconds: cluster.refuse_api(float(seconds)),
        "wait_api_listening": lambda timeout: _within(float(timeout), cluster.wait_api_listening()),
        "delay_api": lambda seconds: cluster.delay_api(float(seconds)),
        "restart_api": cluster.restart_api,
        "kill_container": cluster.kill_container,
        "lose_pod": cluster.lose_pod,
        "set_node_ready": lambda node, ready: cluster.set_node_ready(node, bool(ready)),
        "fail_images": lambda images: cluster.fail_images(*images),
        "provide_image_paths": cluster.provide_image_paths,
        "set_pull_delay": lambda seconds: cluster.set_pull_delay(float(seconds)),
    }


async def _within(seconds: float, waiting: Awaitable[Any]) -> Any:
    async with asyncio.timeout(seconds):
        return await waiting


async def _dispatch(cluster: Cluster, op: str, args: dict[str, Any]) -> Any:
    command = _commands(cluster).get(op)
    if command is None:
        raise ValueError(f"unknown control command: {op}")
    result = command(**args)
    if inspect.isawaitable(result):
        result = await result
    return result


class ControlServer:
    def __init__(self, cluster: Cluster, path: Path) -> None:
        self._cluster = cluster
        self._path = path
        self._connections: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        self._path.unlink(missing_ok=True)
        server = await asyncio.start_unix_server(
            self._connection, path=str(self._path), limit=_LIMIT
        )
        self._path.chmod(0o600)
        try:
            yield
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            for task in list(self._connections):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await server.wait_closed()
            self._path.unlink(missing_ok=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)  # owned: cancelled and awaited when serving ends
        try:
            while line := await reader.readline():
                await self._answer(line, writer)
        except ConnectionError:
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _answer(self, line: bytes, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(line)
            result = await _dispatch(self._cluster, request["op"], request.get("args") or {})
            reply: dict[str, Any] = {"ok": True, "result": result}
        except Exception as exc:  # reported to the caller, who raises it
            logger.info("kubesim control: %r failed: %s", line[:200], exc)
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()


class ControlError(RuntimeError):
    """A control command failed inside kubesim."""


class ControlClient:
    """Blocking client: one connection per command, with a deadline."""

    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self.path = path
        self._timeout = timeout

    def call(self, op: str, **args: Any) -> Any:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self._timeout)
            sock.connect(str(self.path))
            sock.sendall(json.dumps({"op": op, "args": args}).encode() + b"\n")
            with sock.makefile("rb") as replies:
                line = replies.readline()
        if not line:
            raise ControlError(f"kubesim closed the control connection during {op}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise ControlError(reply["error"])
        return reply["result"]
