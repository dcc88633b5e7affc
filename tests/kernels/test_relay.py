"""Relay bookkeeping that no client can see directly."""

from __future__ import annotations

import json

import zmq
from jupyter_client.session import Session

from jkctl.kernels import wire
from jkctl.kernels.relay import Relay


class RecordingSockets:
    """Stands in for the kernel's ZeroMQ sockets: records what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[bytes]]] = []

    def send(self, channel: str, frames: list[bytes]) -> None:
        self.sent.append((channel, frames))

    def close(self) -> None:
        pass


def v1_frame(channel: str, msg_type: str, msg_id: str) -> bytes:
    header = {"msg_id": msg_id, "msg_type": msg_type, "session": "s", "username": "u"}
    parts = [json.dumps(header).encode(), b"{}", b"{}", b"{}"]
    return wire.encode_v1(channel.encode(), parts)


def test_only_requests_wait_for_replies() -> None:
    relay = Relay(
        kernel_id="k",
        context=zmq.Context.instance(),
        client_queue_limit=1 << 20,
        on_iopub=lambda message: None,
        on_client_message=lambda msg_type: None,
    )
    relay._session_or_none = Session(key=b"secret")
    sockets = RecordingSockets()
    relay._sockets = sockets  # type: ignore[assignment]
    client = relay.attach(wire.Protocol.V1)

    for index in range(100):  # a slider dragged across a widget: no replies come
        relay.from_client(client, v1_frame("shell", "comm_msg", f"comm-{index}"), binary=True)
    relay.from_client(client, v1_frame("shell", "execute_request", "exec-1"), binary=True)
    relay.from_client(client, v1_frame("stdin", "input_reply", "input-1"), binary=True)

    assert len(sockets.sent) == 102
    assert relay.pending_count == 1
    assert client.pending == {"exec-1"}
    relay.detach(client)
    assert relay.pending_count == 0
