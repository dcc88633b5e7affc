"""The kernel websocket, ``/api/kernels/{id}/channels``, in both wire protocols.

The client gets ``v1.kernel.websocket.jupyter.org`` when it offers it, the
legacy JSON protocol otherwise (what Jupyter Server's GatewayClient uses).
Each connection is a :class:`~jkctl.kernels.messages.Client` of the kernel's
relay: this handler reads frames and hands them to the relay, and a writer
task (owned here: cancelled and awaited when the connection ends) sends
what the relay put in the client's outbox. When the kernel is shut down or
dies, the outbox closes and the websocket is closed after the last frame
(status ``dead``) went out.

Websockets are created without compression (it costs more than it saves on
127.0.0.1), with a large message limit, and with TCP_NODELAY; all open ones
are tracked so the daemon closes them on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from aiohttp import WSCloseCode, WSMsgType, web

from jkctl.daemon.appkeys import MANAGER, SETTINGS, WEBSOCKETS
from jkctl.errors import KernelError
from jkctl.kernels.messages import Client
from jkctl.kernels.relay import Relay
from jkctl.kernels.wire import V1_SUBPROTOCOL, MalformedMessage, Protocol

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.get("/api/kernels/{kernel_id}/channels")
async def kernel_channels(request: web.Request) -> web.WebSocketResponse:
    kernel = request.app[MANAGER].get(request.match_info["kernel_id"])
    ws = web.WebSocketResponse(
        protocols=(V1_SUBPROTOCOL,),
        compress=False,
        max_msg_size=request.app[SETTINGS].max_message_bytes,
        decode_text=False,
    )
    # Attach before the handshake completes: once the client has its 101, every
    # kernel message it may be waiting for (another client's output, say) must
    # already be on its way to it.
    handshake = ws.can_prepare(request)
    relay = kernel.relay
    client = relay.attach(
        Protocol.from_subprotocol(handshake.protocol),
        session_id=request.query.get("session_id", ""),
    )
    try:
        await ws.prepare(request)
        _no_delay(request)
        request.app[WEBSOCKETS].add(ws)
        logger.info(
            "kernel %s: client connected (%s protocol, %d connections)",
            kernel.id,
            client.protocol.value,
            relay.client_count,
        )
        writer = asyncio.create_task(_write(client, ws), name=f"kernel-{kernel.id}-ws-writer")
        try:
            await _read(relay, client, ws)
        finally:
            writer.cancel()
            await asyncio.wait([writer])
            request.app[WEBSOCKETS].discard(ws)
            logger.info("kernel %s: client disconnected", kernel.id)
    finally:
        relay.detach(client)
    return ws


async def _read(relay: Relay, client: Client, ws: web.WebSocketResponse) -> None:
    async for message in ws:
        if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue
        data = message.data
        try:
            relay.from_client(
                client,
                data if isinstance(data, bytes) else data.encode(),
                binary=message.type is WSMsgType.BINARY,
            )
        except MalformedMessage as exc:
            logger.warning(
                "kernel %s: ignored a malformed client message: %s", relay.kernel_id, exc
            )
        except KernelError as exc:
            logger.warning("kernel %s: could not relay a client message: %s", relay.kernel_id, exc)


async def _write(client: Client, ws: web.WebSocketResponse) -> None:
    try:
        while (frame := await client.outbox.get()) is not None:
            await ws.send_frame(frame.data, WSMsgType.BINARY if frame.binary else WSMsgType.TEXT)
    except ConnectionError:
        return  # the client went away; the reader sees it too
    # The kernel is gone and the client has every message: end the connection.
    await ws.close(code=WSCloseCode.GOING_AWAY, message=b"kernel shut down")


def _no_delay(request: web.Request) -> None:
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
