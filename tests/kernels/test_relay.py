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


class KeeperSockets(RecordingSockets):
    def __init__(self) -> None:
        super().__init__()
        self.subscriptions: list[tuple[bytes, bytes]] = []

    def resubscribe(self, old: bytes, new: bytes) -> None:
        self.subscriptions.append((old, new))


def test_a_keepers_numbered_output_is_relayed_once_and_resumed_after_a_drop() -> None:
    seen: list[str] = []
    relay = Relay(
        kernel_id="k",
        context=zmq.Context.instance(),
        client_queue_limit=1 << 20,
        on_iopub=lambda message: seen.append(message.msg_id),
        on_client_message=lambda msg_type: None,
    )
    session = Session(key=b"secret")
    relay._session_or_none = session
    sockets = KeeperSockets()
    relay._sockets = sockets  # type: ignore[assignment]

    def numbered(n: int) -> list[zmq.Frame]:
        msg = session.msg("stream", {"name": "stdout", "text": str(n)})
        msg["header"]["msg_id"] = f"m{n}"
        parts = [session.pack(msg[k]) for k in ("header", "parent_header", "metadata")]
        parts.append(session.pack(msg["content"]))
        frames = [b"jkctl-seq:K:%d" % n, b"stream.stdout", b"<IDS|MSG>", session.sign(parts)]
        return [zmq.Frame(f) for f in frames + parts]

    def sync(n: int, topic: bytes) -> list[zmq.Frame]:
        return [zmq.Frame(b"jkctl-seq:K:%d" % n), zmq.Frame(topic)]

    relay._from_kernel("iopub", sync(0, b"jkctl-resume:live"))
    assert relay.keeps_output and relay.keeper_synced
    # Told where it is, the relay resumes from there should the next drop be silent.
    assert sockets.subscriptions == [(b"jkctl-resume:live", b"jkctl-resume:K:0")]
    for n in (1, 2, 3):
        relay._from_kernel("iopub", numbered(n))
    relay.hold()  # the link dropped
    assert sockets.subscriptions[-1] == (b"jkctl-resume:K:0", b"jkctl-resume:K:3")
    assert not relay.keeper_synced
    for n in (2, 3, 4):  # the keeper's replay, overlapping what came before the drop
        relay._from_kernel("iopub", numbered(n))
    relay._from_kernel("iopub", sync(4, b"jkctl-resume:K:3"))
    assert relay.keeper_synced
    assert len(sockets.subscriptions) == 2  # no more changes until the next drop
    assert seen == ["m1", "m2", "m3", "m4"]
    assert relay.output_lost == 0
    relay._from_kernel("iopub", numbered(9))
    assert relay.output_lost == 4
