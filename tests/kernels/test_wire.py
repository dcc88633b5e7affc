"""The websocket wire formats, checked against Jupyter Server's reference implementation."""

from __future__ import annotations

import json
import struct

import pytest
from jupyter_client.session import Session
from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    serialize_binary_message,
    serialize_msg_to_ws_v1,
)

from jkctl.kernels import wire

SESSION = Session(key=b"test-key", username="test")


def kernel_parts(content: dict[str, object]) -> tuple[list[bytes], dict[str, object]]:
    msg = SESSION.msg("stream", content, parent={"msg_id": "parent-1", "msg_type": "execute"})
    parts = [
        SESSION.pack(msg["header"]),
        SESSION.pack(msg["parent_header"]),
        SESSION.pack(msg["metadata"]),
        SESSION.pack(msg["content"]),
    ]
    return parts, msg


@pytest.mark.parametrize("buffers", [[], [b"\x00\x01\x02", b"", b"x" * 70000]])
def test_v1_frames_are_what_jupyter_server_reads(buffers: list[bytes]) -> None:
    parts, _ = kernel_parts({"name": "stdout", "text": "héllo\n"})
    frame = wire.encode_v1(b"iopub", [*parts, *buffers])
    assert frame == serialize_msg_to_ws_v1([*parts, *buffers], "iopub")
    channel, decoded = deserialize_msg_from_ws_v1(frame)
    assert channel == "iopub"
    assert [bytes(p) for p in decoded] == [*parts, *buffers]


def test_legacy_text_is_the_json_jupyter_server_sends() -> None:
    parts, msg = kernel_parts({"name": "stdout", "text": 'quotes " and \\ and ☃\n'})
    data, binary = wire.encode_legacy(
        b"iopub", parts, msg_id=msg["header"]["msg_id"], msg_type="stream"
    )
    assert not binary
    decoded = json.loads(data)
    assert decoded == {
        "header": json.loads(parts[0]),
        "msg_id": msg["header"]["msg_id"],
        "msg_type": "stream",
        "parent_header": {"msg_id": "parent-1", "msg_type": "execute"},
        "metadata": {},
        "content": {"name": "stdout", "text": 'quotes " and \\ and ☃\n'},
        "buffers": [],
        "channel": "iopub",
    }


def test_legacy_binary_with_buffers_is_what_jupyter_server_reads() -> None:
    parts, msg = kernel_parts({"data": {}, "comm_id": "c"})
    buffers = [b"\x00" * 10, b"abc"]
    data, binary = wire.encode_legacy(
        b"iopub", [*parts, *buffers], msg_id=msg["header"]["msg_id"], msg_type="comm_msg"
    )
    assert binary
    decoded = deserialize_binary_message(data)
    assert decoded["channel"] == "iopub"
    assert decoded["content"] == {"data": {}, "comm_id": "c"}
    assert [bytes(b) for b in decoded["buffers"]] == buffers


def client_message(**extra: object) -> dict[str, object]:
    msg = SESSION.msg("execute_request", {"code": "1+1"})
    return {
        "header": json.loads(json.dumps(msg["header"], default=str)),
        "parent_header": {},
        "metadata": {},
        "content": msg["content"],
        "channel": "shell",
        **extra,
    }


def test_client_v1_message_is_sliced_not_decoded() -> None:
    msg = client_message()
    parts = [SESSION.pack(msg[k]) for k in ("header", "parent_header", "metadata", "content")]
    frame = serialize_msg_to_ws_v1([*parts, b"buffer"], "shell")
    parsed = wire.decode_client_message(wire.Protocol.V1, frame, binary=True, pack=SESSION.pack)
    assert parsed.channel == "shell"
    assert parsed.msg_type == "execute_request"
    assert parsed.msg_id == msg["header"]["msg_id"]  # type: ignore[index]
    assert [bytes(p) for p in parsed.parts] == [*parts, b"buffer"]


def test_client_legacy_json_and_binary() -> None:
    msg = client_message()
    parsed = wire.decode_client_message(
        wire.Protocol.LEGACY, json.dumps(msg).encode(), binary=False, pack=SESSION.pack
    )
    assert parsed.channel == "shell"
    assert json.loads(parsed.parts[3]) == {"code": "1+1"}

    with_buffers = serialize_binary_message({**msg, "buffers": [b"\x01\x02", b"three"]})
    parsed = wire.decode_client_message(
        wire.Protocol.LEGACY, with_buffers, binary=True, pack=SESSION.pack
    )
    assert [bytes(b) for b in parsed.parts[4:]] == [b"\x01\x02", b"three"]


def test_a_message_without_channel_goes_to_shell() -> None:
    msg = client_message()
    del msg["channel"]
    parsed = wire.decode_client_message(
        wire.Protocol.LEGACY, json.dumps(msg).encode(), binary=False, pack=SESSION.pack
    )
    assert parsed.channel == "shell"


@pytest.mark.parametrize(
    ("protocol", "data", "binary"),
    [
        (wire.Protocol.LEGACY, b"{not json", False),
        (wire.Protocol.LEGACY, b"[1, 2]", False),
        (wire.Protocol.LEGACY, b'{"header": {"msg_type": "x"}}', False),
        (wire.Protocol.LEGACY, b"\x00\x00", True),
        (wire.Protocol.LEGACY, struct.pack("!II", 5, 12) + b"{}", True),
        (wire.Protocol.V1, b"{}", False),
        (wire.Protocol.V1, b"\x01", True),
        (wire.Protocol.V1, struct.pack("<Q", 2**60) + b"x" * 64, True),
        (wire.Protocol.V1, struct.pack("<7Q", 6, 999, 1, 2, 3, 4, 5), True),
    ],
)
def test_malformed_client_messages_are_refused(
    protocol: wire.Protocol, data: bytes, binary: bool
) -> None:
    with pytest.raises(wire.MalformedMessage):
        wire.decode_client_message(protocol, data, binary=binary, pack=SESSION.pack)
