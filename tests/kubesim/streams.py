"""The streaming pod subresources: `pods/log` and `pods/portforward`, served through the kubelet.

pods/log (GET): the API server checks the container name itself (400 "a
container name must be specified for pod p, choose one of: [a b]",
"container x is not valid for pod p"); an unscheduled pod has an empty log;
otherwise the kubelet's stream is relayed as chunked `text/plain`, to its
end or, with `follow`, until the client leaves.

pods/portforward (websocket, `v4.channel.k8s.io`, also plain and
`v4.base64.channel.k8s.io`), as the kubelet's websocket handler does it:
for the i-th `ports` value, channel 2i carries data and 2i+1 errors; the
first frame on each is the channel byte and the port, little-endian. Every
port's pod connection is opened at once; a failure goes as text on its
error channel and ends that port. Client frames on a data channel go to
that port's connection; pod bytes come back on it. A port ends when its
pod connection closes; when every port has ended, or the client goes away,
or the `close_all` fault fires, the websocket is closed and every pod
connection with it.

Not here: pods/exec and pods/attach (the kubelet interface has no exec).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from aiohttp import WSMsgType, web

from tests.kubesim.kubelet_protocol import PodStreams
from tests.kubesim.requestinfo import is_true
from tests.kubesim.status import ApiError, bad_request

logger = logging.getLogger(__name__)

PROTOCOLS = (
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
)
_CHUNK = 64 * 1024


def _container_for_logs(pod: dict[str, Any], container: str | None) -> str:
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    containers = [c.get("name") for c in spec.get("containers") or []]
    everything = [
        *(c.get("name") for c in spec.get("initContainers") or []),
        *containers,
        *(c.get("name") for c in spec.get("ephemeralContainers") or []),
    ]
    if not container:
        if len(containers) == 1:
            return str(containers[0])
        if not containers:
            raise bad_request(f"a container name must be specified for pod {name}")
        listed = "[" + " ".join(str(n) for n in everything) + "]"
        raise bad_request(
            f"a container name must be specified for pod {name}, choose one of: {listed}"
        )
    if container not in everything:
        raise bad_request(f"container {container} is not valid for pod {name}")
    return container


async def serve_log(
    request: web.Request, pod: dict[str, Any], kubelet: PodStreams | None
) -> web.StreamResponse:
    query = request.query
    container = _container_for_logs(pod, query.get("container"))
    tail: int | None = None
    if "tailLines" in query:
        try:
            tail = int(query["tailLines"])
        except ValueError:
            raise bad_request(f'invalid tailLines: "{query["tailLines"]}"') from None
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    if kubelet is None or not (pod.get("spec") or {}).get("nodeName"):
        await response.prepare(request)
        await response.write_eof()
        return response
    chunks = aiter(
        kubelet.log_stream(
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            container=container,
            follow=is_true(query.get("follow")),
            tail_lines=tail,
            previous=is_true(query.get("previous")),
            timestamps=is_true(query.get("timestamps")),
        )
    )
    try:
        first = await anext(chunks, None)  # an ApiError here is still an ordinary error response
        await response.prepare(request)
        try:
            if first:
                await response.write(first)
                async for chunk in chunks:
                    await response.write(chunk)
        except ApiError as exc:  # too late for a status: end the stream, as a kubelet does
            logger.info("kubesim: log stream of %s ended: %s", pod["metadata"]["name"], exc)
        await response.write_eof()
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()
    return response


class PortForwards:
    """The open port-forward sessions, so that a fault can close them all."""

    def __init__(self) -> None:
        self._stops: set[asyncio.Event] = set()
        self.changed = asyncio.Condition()  # notified whenever a session ends

    @contextlib.contextmanager
    def _session(self) -> Iterator[asyncio.Event]:
        stop = asyncio.Event()
        self._stops.add(stop)
        try:
            yield stop
        finally:
            self._stops.discard(stop)

    def close_all(self) -> int:
        for stop in self._stops:
            stop.set()
        return len(self._stops)

    @property
    def open(self) -> int:
        return len(self._stops)

    async def serve(
        self, request: web.Request, pod: dict[str, Any], kubelet: PodStreams | None
    ) -> web.StreamResponse:
        ports = parse_ports(request.query.getall("ports", []))
        ws = web.WebSocketResponse(protocols=PROTOCOLS)
        if not ws.can_prepare(request).ok:
            raise bad_request("Upgrade request required")
        await ws.prepare(request)
        try:
            with self._session() as stop:
                try:
                    await _Session(ws, kubelet, pod, ports).run(stop)
                finally:
                    await ws.close()
        finally:
            async with self.changed:
                self.changed.notify_all()
        return ws


def parse_ports(values: list[str]) -> list[int]:
    if not values:
        raise bad_request('query parameter "port" is required')
    ports = []
    for value in values:
        if not value:
            raise bad_request('query parameter "port" cannot be empty')
        for part in value.split(","):
            try:
                port = int(part)
            except ValueError:
                raise bad_request(f'unable to parse "{value}" as a port: invalid syntax') from None
            if not 0 < port < 65536:
                raise bad_request(f'port "{value}" must be > 0')
            ports.append(port)
    return ports


class _Session:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        kubelet: PodStreams | None,
        pod: dict[str, Any],
        ports: list[int],
    ) -> None:
        self._ws = ws
        self._kubelet = kubelet
        self._namespace = pod["metadata"]["namespace"]
        self._pod = pod["metadata"]["name"]
        self._ports = ports
        self._base64 = "base64" in (ws.ws_protocol or "")
        # Client bytes wait here until their port's connection is open, as the
        # kubelet's stream buffers them; nothing sent early is lost.
        self._inbound: list[asyncio.Queue[bytes]] = [asyncio.Queue() for _ in ports]
        self._ended: set[int] = set()
        self._send_lock = asyncio.Lock()

    async def _send(self, channel: int, data: bytes) -> None:
        async with self._send_lock:
            if self._base64:
                await self._ws.send_str(str(channel) + base64.b64encode(data).decode())
            else:
                await self._ws.send_bytes(bytes([channel]) + data)

    async def run(self, stop: asyncio.Event) -> None:
        for index, port in enumerate(self._ports):
            header = port.to_bytes(2, "little")
            await self._send(2 * index, header)
            await self._send(2 * index + 1, header)
        async with asyncio.TaskGroup() as group:
            forwards = [group.create_task(self._forward(i, p)) for i, p in enumerate(self._ports)]
            ends = [
                group.create_task(self._all_done(forwards)),
                group.create_task(self._from_client()),
                group.create_task(stop.wait()),
            ]
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
            for task in [*forwards, *ends]:
                task.cancel()

    @staticmethod
    async def _all_done(forwards: list[asyncio.Task[None]]) -> None:
        await asyncio.wait(forwards)

    async def _forward(self, index: int, port: int) -> None:
        try:
            if self._kubelet is None:
                raise ConnectionRefusedError("kubesim runs without a kubelet")
            reader, writer = await self._kubelet.open_port(self._namespace, self._pod, port)
        except (
            Exception
        ) as exc:  # any failure is reported on the error channel, as the kubelet does
            self._ended.add(index)
            with contextlib.suppress(ConnectionError):
                await self._send(2 * index + 1, str(exc).encode())
            return
        try:
            async with asyncio.TaskGroup() as group:
                to_pod = group.create_task(self._to_pod(index, writer))
                await self._from_pod(index, reader)
                to_pod.cancel()
        finally:
            self._ended.add(index)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _from_pod(self, index: int, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(_CHUNK):
                await self._send(2 * index, chunk)

    async def _to_pod(self, index: int, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                writer.write(await self._inbound[index].get())
                await writer.drain()

    async def _from_client(self) -> None:
        async for message in self._ws:
            if message.type == WSMsgType.BINARY and message.data:
                channel, payload = message.data[0], bytes(message.data[1:])
            elif message.type == WSMsgType.TEXT and message.data:
                channel, payload = int(message.data[0]), base64.b64decode(message.data[1:])
            else:
                continue
            index = channel // 2
            if (
                channel % 2 == 0
                and index < len(self._ports)
                and index not in self._ended
                and payload
            ):
                self._inbound[index].put_nowait(payload)
