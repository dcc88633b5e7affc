"""A kernel websocket client for tests and benchmarks, speaking both wire protocols.

It frames messages with Jupyter Server's own reference functions
(``serialize_msg_to_ws_v1``, ``serialize_binary_message`` and their inverses),
so what the daemon sends and accepts is checked against the implementation
JupyterLab talks to, not against jkctl's own code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from jupyter_client.session import Session
from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    serialize_binary_message,
    serialize_msg_to_ws_v1,
)

V1 = "v1.kernel.websocket.jupyter.org"


@dataclass
class Message:
    channel: str
    header: dict[str, Any]
    parent_header: dict[str, Any]
    content: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    buffers: list[bytes] = field(default_factory=list)

    @property
    def msg_type(self) -> str:
        return str(self.header["msg_type"])

    @property
    def parent_id(self) -> str | None:
        return self.parent_header.get("msg_id")


@dataclass
class ExecuteResult:
    reply: Message
    iopub: list[Message]

    @property
    def stdout(self) -> str:
        return "".join(
            m.content["text"]
            for m in self.iopub
            if m.msg_type == "stream" and m.content["name"] == "stdout"
        )

    @property
    def stderr(self) -> str:
        return "".join(
            m.content["text"]
            for m in self.iopub
            if m.msg_type == "stream" and m.content["name"] == "stderr"
        )


class KernelClient:
    """One websocket to a kernel: send requests, read messages in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, *, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol
        # Websocket clients do not sign (the daemon does); a key only silences a warning.
        self.session = Session(key=b"websocket-clients-do-not-sign", username="test")
        self.pending: list[Message] = []

    @classmethod
    async def connect(
        cls,
        http: aiohttp.ClientSession,
        base_url: str,
        kernel_id: str,
        *,
        token: str,
        protocol: str = "legacy",
    ) -> KernelClient:
        url = f"{base_url.replace('http', 'ws', 1)}/api/kernels/{kernel_id}/channels"
        ws = await http.ws_connect(
            url,
            params={"session_id": Session(key=b"unused").session},
            headers={"Authorization": f"token {token}"},
            protocols=(V1,) if protocol == "v1" else (),
            max_msg_size=0,
        )
        if protocol == "v1":
            assert ws.protocol == V1, f"daemon chose {ws.protocol!r}"
        else:
            assert ws.protocol is None
        return cls(ws, protocol=protocol)

    async def close(self) -> None:
        await self.ws.close()

    async def send(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any],
        *,
        buffers: Sequence[bytes] = (),
        parent: dict[str, Any] | None = None,
    ) -> str:
        msg = self.session.msg(msg_type, content, parent=parent or {})
        msg["buffers"] = list(buffers)
        if self.protocol == "v1":
            parts = [
                self.session.pack(msg["header"]),
                self.session.pack(msg["parent_header"]),
                self.session.pack(msg["metadata"]),
                self.session.pack(msg["content"]),
                *buffers,
            ]
            await self.ws.send_bytes(serialize_msg_to_ws_v1(parts, channel))
        else:
            msg["channel"] = channel
            if buffers:
                await self.ws.send_bytes(serialize_binary_message(msg))
            else:
                await self.ws.send_str(json.dumps(msg, default=str))
        return str(msg["header"]["msg_id"])

    async def receive(self) -> Message:
        if self.pending:
            return self.pending.pop(0)
        raw = await self.ws.receive()
        if raw.type is aiohttp.WSMsgType.TEXT:
            data = json.loads(raw.data)
            return Message(
                channel=data["channel"],
                header=data["header"],
                parent_header=data["parent_header"],
                content=data["content"],
                metadata=data["metadata"],
                buffers=[],
            )
        if raw.type is aiohttp.WSMsgType.BINARY:
            if self.protocol == "v1":
                channel, parts = deserialize_msg_from_ws_v1(raw.data)
                return Message(
                    channel=channel,
                    header=json.loads(parts[0]),
                    parent_header=json.loads(parts[1]),
                    metadata=json.loads(parts[2]),
                    content=json.loads(parts[3]),
                    buffers=[bytes(b) for b in parts[4:]],
                )
            data = deserialize_binary_message(raw.data)
            return Message(
                channel=data["channel"],
                header=data["header"],
                parent_header=data["parent_header"],
                content=data["content"],
                metadata=data["metadata"],
                buffers=[bytes(b) for b in data["buffers"]],
            )
        raise ConnectionError(f"websocket ended: {raw.type.name} {raw.data!r} {raw.extra!r}")

    async def receive_until(self, predicate: Any) -> list[Message]:
        """Messages up to and including the first that matches."""
        seen = []
        while True:
            msg = await self.receive()
            seen.append(msg)
            if predicate(msg):
                return seen

    async def execute(self, code: str, *, allow_stdin: bool = False) -> ExecuteResult:
        """Run code; return its execute_reply and its iopub messages up to status idle."""
        msg_id = await self.send(
            "shell",
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": allow_stdin,
                "stop_on_error": True,
            },
        )
        return await self.collect(msg_id)

    async def collect(self, msg_id: str) -> ExecuteResult:
        reply: Message | None = None
        iopub: list[Message] = []
        idle = False
        while reply is None or not idle:
            msg = await self.receive()
            if msg.parent_id != msg_id:
                continue
            if msg.channel == "shell":
                reply = msg
            elif msg.channel == "iopub":
                iopub.append(msg)
                if msg.msg_type == "status" and msg.content["execution_state"] == "idle":
                    idle = True
        assert reply is not None
        return ExecuteResult(reply=reply, iopub=iopub)
