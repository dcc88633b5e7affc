"""What the relay hands around: a kernel's message, encoded once per wire protocol,
and a websocket client it is delivered to (through the client's outbox).

What this module does not do: route messages (:mod:`jkctl.kernels.relay`) or
encode them (:mod:`jkctl.kernels.wire`).
"""

from __future__ import annotations

import json
from typing import Any, cast

from jkctl.kernels import wire
from jkctl.kernels.outbox import SHEDDABLE, Frame, Outbox


class KernelMessage:
    """A message from the kernel (or the daemon), as JSON parts plus buffers."""

    __slots__ = ("_legacy", "_v1", "channel", "msg_id", "msg_type", "parts")

    def __init__(
        self, channel: str, parts: list[wire.Buffer], *, msg_id: str, msg_type: str
    ) -> None:
        self.channel = channel
        self.parts = parts
        self.msg_id = msg_id
        self.msg_type = msg_type
        self._legacy: Frame | None = None
        self._v1: Frame | None = None

    @property
    def parent(self) -> bytes:
        return bytes(self.parts[1])

    def content(self) -> Any:
        """The content, parsed (only for the daemon's own small messages and status)."""
        return json.loads(bytes(self.parts[3]))

    def session(self) -> str | None:
        """The sending process's session id (each kernel process has its own)."""
        try:
            header = json.loads(bytes(self.parts[0]))
        except ValueError:
            return None
        session = header.get("session") if isinstance(header, dict) else None
        return session if isinstance(session, str) else None

    def parent_header(self) -> wire.MessageHeader:
        """The parent header, parsed; ``{}`` when it is not a JSON object."""
        parsed = json.loads(bytes(self.parts[1]))
        return cast(wire.MessageHeader, parsed) if isinstance(parsed, dict) else {}

    def frame(self, protocol: wire.Protocol) -> Frame:
        """This message for one wire protocol, encoded once and shared by all its clients."""
        if protocol is wire.Protocol.V1:
            if self._v1 is None:
                self._v1 = Frame(wire.encode_v1(self.channel.encode(), self.parts), binary=True)
            return self._v1
        if self._legacy is None:
            data, binary = wire.encode_legacy(
                self.channel.encode(), self.parts, msg_id=self.msg_id, msg_type=self.msg_type
            )
            self._legacy = Frame(data, binary=binary)
        return self._legacy


class Client:
    """One websocket connection to a kernel."""

    def __init__(self, *, protocol: wire.Protocol, outbox: Outbox, session_id: str) -> None:
        self.protocol = protocol
        self.outbox = outbox
        self.session_id = session_id
        self.pending: set[str] = set()

    def deliver(self, message: KernelMessage) -> None:
        sheddable = message.channel == "iopub" and message.msg_type in SHEDDABLE
        self.outbox.put(message.frame(self.protocol), sheddable=sheddable, parent=message.parent)
