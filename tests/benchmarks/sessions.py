"""One kernel as a benchmark client sees it: the floor, or a websocket through a server.

Two kinds of :class:`Session`, with the same three measurements:

- :class:`FloorSession`: ``jupyter_client`` talking ZeroMQ straight to a
  local kernel, in this process: the floor everything else is compared to;
- :class:`GatewaySession`: a websocket client (``tests.kernel_client``,
  which frames with Jupyter Server's own reference functions) through any
  server of :mod:`tests.benchmarks.servers`, in either wire protocol.

``round_trip`` is one ``execute_request`` of ``pass``: milliseconds to its
``execute_reply`` and to its ``status: idle``. ``stream_output`` runs a cell
printing ``total`` bytes in 64 KiB chunks, flushed one by one;
``display_output`` one ``display_data`` of ``total`` bytes. Both return a
:class:`Delivery` counting what arrived, so that a run can fail when any
byte or message is missing; stderr streams (a server saying it shed or
rate-limited output) are counted apart as notices.

Starting a kernel through a server (:meth:`GatewaySession.open`) is timed as
a notebook frontend lives it: ``POST /api/kernels``, the websocket, and the
first ``kernel_info_reply``.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from jupyter_client.manager import AsyncKernelManager

from tests.benchmarks.servers import BENCH_SPEC, Server
from tests.kernel_client import KernelClient, Message

CHUNK = 64 * 1024


def stream_cell(total: int) -> str:
    return (
        "import sys\n"
        f"_chunk = 'x' * {CHUNK - 1} + '\\n'\n"
        f"for _ in range({total // CHUNK}):\n"
        "    sys.stdout.write(_chunk)\n"
        "    sys.stdout.flush()\n"
    )


def display_cell(total: int) -> str:
    return (
        f"from IPython.display import display\ndisplay({{'text/plain': 'x' * {total}}}, raw=True)\n"
    )


@dataclass(frozen=True)
class Delivery:
    seconds: float
    nbytes: int
    messages: int
    #: stderr stream messages: a server saying it dropped or shed output.
    notices: int = 0
    notice_text: str = ""


class Session(Protocol):
    name: str

    async def round_trip(self) -> tuple[float, float]: ...

    async def stream_output(self, total: int) -> Delivery: ...

    async def display_output(self, total: int) -> Delivery: ...

    async def close(self) -> None: ...


class _Tally:
    """Counts one cell's output messages as they arrive."""

    def __init__(self) -> None:
        self.nbytes = self.messages = self.notices = 0
        self.notice_text = ""

    def add(self, msg_type: str, content: dict[str, Any]) -> None:
        if msg_type == "stream":
            if content.get("name") == "stderr":
                self.notices += 1
                self.notice_text = self.notice_text or str(content.get("text", ""))[:300]
            else:
                self.nbytes += len(content["text"])
                self.messages += 1
        elif msg_type == "display_data":
            self.nbytes += len(content["data"].get("text/plain", ""))
            self.messages += 1

    def delivery(self, seconds: float) -> Delivery:
        return Delivery(seconds, self.nbytes, self.messages, self.notices, self.notice_text)


class LeanClient(KernelClient):
    """The test client, reading v1 frames without copying their parts.

    Jupyter Server's reference ``deserialize_msg_from_ws_v1`` copies every
    part and ``json.loads`` then decodes bytes again; a browser slices
    without copying. Timing that extra work would charge the client's cost
    to the server: here a part is decoded straight from a view of the frame,
    as the legacy path decodes the text frame once.
    """

    async def receive(self) -> Message:
        if self.pending or self.protocol != "v1":
            return await super().receive()
        raw = await self.ws.receive()
        if raw.type is not aiohttp.WSMsgType.BINARY:
            raise ConnectionError(f"websocket ended: {raw.type.name} {raw.data!r}")
        view = memoryview(raw.data)
        (count,) = struct.unpack_from("<Q", view, 0)
        offsets = struct.unpack_from(f"<{count}Q", view, 8)
        parts = [view[offsets[i] : offsets[i + 1]] for i in range(count - 1)]
        channel = str(parts[0], "ascii")
        return Message(
            channel=channel,
            header=json.loads(str(parts[1], "utf-8")),
            parent_header=json.loads(str(parts[2], "utf-8")),
            metadata=json.loads(str(parts[3], "utf-8")),
            content=json.loads(str(parts[4], "utf-8")),
            buffers=[bytes(part) for part in parts[5:]],
        )


class _Cells:
    """The output cells every session runs, through its own ``_output``."""

    async def _output(self, code: str) -> Delivery:
        raise NotImplementedError

    async def stream_output(self, total: int) -> Delivery:
        return await self._output(stream_cell(total))

    async def display_output(self, total: int) -> Delivery:
        return await self._output(display_cell(total))


class FloorSession(_Cells):
    """jupyter_client straight to a kernel over ZeroMQ."""

    name = "floor (jupyter_client)"

    async def open(self) -> None:
        self.manager = AsyncKernelManager(kernel_name="python3")
        await self.manager.start_kernel()
        self.client = self.manager.client()
        self.client.start_channels()
        await self.client.wait_for_ready(timeout=60)

    async def round_trip(self) -> tuple[float, float]:
        started = time.perf_counter()
        msg_id = self.client.execute("pass")
        reply = await self.client.get_shell_msg()
        assert reply["parent_header"]["msg_id"] == msg_id
        reply_at = time.perf_counter()
        while True:
            msg = await self.client.get_iopub_msg()
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            ):
                break
        return (reply_at - started) * 1000, (time.perf_counter() - started) * 1000

    async def _output(self, code: str) -> Delivery:
        started = time.perf_counter()
        msg_id = self.client.execute(code)
        tally = _Tally()
        while True:
            msg = await self.client.get_iopub_msg()
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            tally.add(msg["msg_type"], msg["content"])
        await self.client.get_shell_msg()
        return tally.delivery(time.perf_counter() - started)

    async def close(self) -> None:
        self.client.stop_channels()
        await self.manager.shutdown_kernel(now=True)


class GatewaySession(_Cells):
    """A websocket client of one kernel started through a server's REST API."""

    def __init__(
        self,
        server: Server,
        http: aiohttp.ClientSession,
        *,
        protocol: str = "v1",
        spec: str = BENCH_SPEC,
        env: dict[str, str] | None = None,
    ) -> None:
        self.server = server
        self.http = http
        self.protocol = protocol
        self.spec = spec
        self.env = env or {}
        self.name = f"{server.name}, {protocol}"
        self.kernel_id = ""
        self.client: KernelClient | None = None
        #: Milliseconds from the POST to its answer, and to the first kernel_info_reply.
        self.started_at = 0.0
        self.post_ms = 0.0
        self.start_ms = 0.0

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.server.token}"}

    async def open(self) -> None:
        """Start a kernel as a frontend does; raises RuntimeError saying why it failed."""
        body: dict[str, Any] = {"name": self.spec}
        if self.env:
            body["env"] = self.env
        started = self.started_at = time.perf_counter()
        async with self.http.post(
            self.server.url + "/api/kernels",
            json=body,
            headers=self._headers,
        ) as response:
            model = await response.json()
            if response.status != 201:
                raise RuntimeError(f"POST /api/kernels: {response.status} {model}")
        self.post_ms = (time.perf_counter() - started) * 1000
        self.kernel_id = model["id"]
        self.client = await LeanClient.connect(
            self.http,
            self.server.url,
            self.kernel_id,
            token=self.server.token,
            protocol=self.protocol,
        )
        msg_id = await self.client.send("shell", "kernel_info_request", {})
        await self.client.receive_until(lambda m: m.channel == "shell" and m.parent_id == msg_id)
        self.start_ms = (time.perf_counter() - started) * 1000

    @property
    def _client(self) -> KernelClient:
        assert self.client is not None, "the session is not open"
        return self.client

    async def round_trip(self) -> tuple[float, float]:
        client = self._client
        started = time.perf_counter()
        msg_id = await client.send(
            "shell", "execute_request", {"code": "pass", "silent": False, "store_history": True}
        )
        reply_at = idle_at = 0.0
        while not (reply_at and idle_at):
            msg = await client.receive()
            if msg.parent_id != msg_id:
                continue
            if msg.channel == "shell":
                reply_at = time.perf_counter()
            elif msg.msg_type == "status" and msg.content["execution_state"] == "idle":
                idle_at = time.perf_counter()
        return (reply_at - started) * 1000, (max(reply_at, idle_at) - started) * 1000

    async def _output(self, code: str) -> Delivery:
        client = self._client
        started = time.perf_counter()
        msg_id = await client.send("shell", "execute_request", {"code": code, "silent": False})
        tally = _Tally()
        reply = idle = False
        while not (reply and idle):
            msg: Message = await client.receive()
            if msg.parent_id != msg_id:
                continue
            if msg.channel == "shell":
                reply = True
            elif msg.msg_type == "status":
                idle = idle or msg.content["execution_state"] == "idle"
            else:
                tally.add(msg.msg_type, msg.content)
        return tally.delivery(time.perf_counter() - started)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self.kernel_id:
            async with self.http.delete(
                f"{self.server.url}/api/kernels/{self.kernel_id}", headers=self._headers
            ) as response:
                await response.read()
            self.kernel_id = ""
