"""The kernel websocket's two wire formats, built from raw ZeroMQ frames.

A kernel message on ZeroMQ is ``[identities..., DELIM, signature, header,
parent_header, metadata, content, buffers...]`` where the four middle parts
are already JSON. Websocket clients speak one of:

- **legacy** (what Jupyter Server's GatewayClient and older clients use): a
  text frame holding one JSON object with ``header``, ``parent_header``,
  ``metadata``, ``content``, ``buffers``, ``channel``, ``msg_id`` and
  ``msg_type``; or, when there are binary buffers, a binary frame: a count
  and big-endian 32-bit offsets, that JSON (without ``buffers``), then the
  buffers. We build the JSON by *concatenating* the kernel's JSON parts; the
  content is never decoded or re-encoded.
- **v1** (``v1.kernel.websocket.jupyter.org``): a binary frame with a count
  and little-endian 64-bit offsets, the channel name, then the ZeroMQ parts
  as they are. Pure framing both ways.

What this module does not do: sign, route, or know about sockets. Clients'
messages are parsed into parts ready for signing (see :mod:`jkctl.kernels.relay`).
"""

from __future__ import annotations

import enum
import itertools
import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

V1_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"

Buffer = bytes | memoryview


class Protocol(enum.Enum):
    LEGACY = "legacy"
    V1 = "v1"

    @classmethod
    def from_subprotocol(cls, selected: str | None) -> Protocol:
        return cls.V1 if selected == V1_SUBPROTOCOL else cls.LEGACY


class MessageHeader(TypedDict, total=False):
    """A kernel message's header (and, when present, its parent header)."""

    msg_id: str
    msg_type: str
    session: str
    username: str
    date: str
    version: str


class StatusContent(TypedDict, total=False):
    """The content of an iopub ``status`` message."""

    execution_state: str


class MalformedMessage(ValueError):
    """A client sent something that is not a kernel message."""


@dataclass(slots=True)
class ClientMessage:
    """A message from a websocket client, as ZeroMQ parts ready to be signed."""

    channel: str
    msg_id: str
    msg_type: str
    #: header, parent_header, metadata, content (JSON bytes), then binary buffers.
    parts: list[Buffer]


# -- kernel -> client ---------------------------------------------------------


def encode_v1(channel: bytes, parts: Sequence[Buffer]) -> bytes:
    """One v1 frame: count, offsets (little-endian u64), channel, the parts as they are."""
    count = len(parts) + 2
    offsets = [8 * (count + 1)]
    offsets.append(offsets[0] + len(channel))
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    head = struct.pack(f"<{count + 1}Q", count, *offsets[:count])
    return b"".join([head, channel, *parts])


def encode_legacy(
    channel: bytes, parts: Sequence[Buffer], *, msg_id: str, msg_type: str
) -> tuple[bytes, bool]:
    """The legacy form: ``(data, is_binary)``. Text unless the message has buffers."""
    header, parent, metadata, content = (p if len(p) else b"{}" for p in parts[:4])
    buffers = parts[4:]
    body = [
        b'{"header":',
        header,
        b',"msg_id":',
        json.dumps(msg_id).encode(),
        b',"msg_type":',
        json.dumps(msg_type).encode(),
        b',"parent_header":',
        parent,
        b',"metadata":',
        metadata,
        b',"content":',
        content,
        b',"channel":"',
        channel,
        b'"',
    ]
    if not buffers:
        body.append(b',"buffers":[]}')
        return b"".join(body), False
    body.append(b"}")
    json_part = b"".join(body)
    count = len(buffers) + 1
    offsets = [4 * (count + 1)]
    offsets.append(offsets[0] + len(json_part))
    for buffer in buffers[:-1]:
        offsets.append(offsets[-1] + len(buffer))
    head = struct.pack(f"!{count + 1}I", count, *offsets)
    return b"".join([head, json_part, *buffers]), True


# -- client -> kernel ---------------------------------------------------------


def decode_client_message(
    protocol: Protocol, data: bytes, *, binary: bool, pack: Callable[[Any], bytes]
) -> ClientMessage:
    """Parse a client's websocket frame. ``pack`` serializes JSON parts (Session.pack)."""
    if protocol is Protocol.V1:
        if not binary:
            raise MalformedMessage("v1 protocol messages must be binary frames")
        return _decode_v1(data)
    if binary:
        return _decode_legacy_binary(data, pack)
    return _decode_legacy_json(_loads(data), [], pack)


def _decode_v1(data: bytes) -> ClientMessage:
    view = memoryview(data)
    if len(data) < 8:
        raise MalformedMessage("v1 message shorter than its header")
    (count,) = struct.unpack_from("<Q", data, 0)
    if count < 6 or 8 * (count + 1) > len(data):
        raise MalformedMessage("v1 message needs a channel and four JSON parts")
    # Offsets: where the channel starts, then where it and each part end.
    offsets = struct.unpack_from(f"<{count}Q", data, 8)
    if (
        offsets[0] != 8 * (count + 1)
        or offsets[-1] > len(data)
        or any(a > b for a, b in itertools.pairwise(offsets))
    ):
        raise MalformedMessage("v1 message offsets are out of order")
    channel = bytes(view[offsets[0] : offsets[1]]).decode("ascii", errors="replace")
    parts: list[Buffer] = [view[offsets[i] : offsets[i + 1]] for i in range(1, count - 1)]
    header = _loads(bytes(parts[0]))
    msg_id, msg_type = _ids(header)
    return ClientMessage(channel=channel, msg_id=msg_id, msg_type=msg_type, parts=parts)


def _decode_legacy_binary(data: bytes, pack: Callable[[Any], bytes]) -> ClientMessage:
    if len(data) < 8:
        raise MalformedMessage("binary message shorter than its header")
    (count,) = struct.unpack_from("!I", data, 0)
    if count < 1 or 4 * (count + 1) > len(data):
        raise MalformedMessage("binary message has a bad buffer count")
    offsets = list(struct.unpack_from(f"!{count}I", data, 4))
    offsets.append(len(data))
    if any(a > b for a, b in itertools.pairwise(offsets)) or offsets[0] < 4 * (count + 1):
        raise MalformedMessage("binary message offsets are out of order")
    view = memoryview(data)
    buffers: list[Buffer] = [view[offsets[i] : offsets[i + 1]] for i in range(1, count)]
    return _decode_legacy_json(_loads(bytes(view[offsets[0] : offsets[1]])), buffers, pack)


def _decode_legacy_json(
    message: Any, buffers: list[Buffer], pack: Callable[[Any], bytes]
) -> ClientMessage:
    if not isinstance(message, dict):
        raise MalformedMessage("a kernel message must be a JSON object")
    header = message.get("header")
    msg_id, msg_type = _ids(header)
    channel = message.get("channel") or "shell"
    parts: list[Buffer] = [
        pack(header),
        pack(message.get("parent_header") or {}),
        pack(message.get("metadata") or {}),
        pack(message.get("content") or {}),
        *buffers,
    ]
    return ClientMessage(channel=str(channel), msg_id=msg_id, msg_type=msg_type, parts=parts)


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"not valid JSON: {exc}") from exc


def _ids(header: Any) -> tuple[str, str]:
    if not isinstance(header, dict):
        raise MalformedMessage("the message has no header")
    msg_id, msg_type = header.get("msg_id"), header.get("msg_type")
    if not isinstance(msg_id, str) or not isinstance(msg_type, str) or not msg_id:
        raise MalformedMessage("the message header needs msg_id and msg_type")
    return msg_id, msg_type
