"""A binary websocket to the API server whose failures are jkctl errors.

Port-forward and exec speak framed binary messages over a websocket that
:meth:`KubeClient.websocket <jkctl.kube.client.KubeClient.websocket>` opens
with the cluster's TLS and credentials. This thin wrapper keeps aiohttp's
types and exceptions inside :mod:`jkctl.kube`: :meth:`receive` returns bytes,
or None once the connection has closed (cleanly or not; :attr:`close_code`
tells which), and :meth:`send` raises KubeUnavailable when the connection is
gone. It adds nothing per message: no copies, no queues.
"""

from __future__ import annotations

import contextlib

import aiohttp

from jkctl.errors import KubeError, KubeUnavailable

from .connection import TRANSPORT_ERRORS, unavailable_error
from .status import Action

_CLOSED = frozenset({aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED})


class KubeWebSocket:
    def __init__(
        self, socket: aiohttp.ClientWebSocketResponse, *, server: str, action: Action
    ) -> None:
        self._socket = socket
        self._server = server
        self._action = action

    @property
    def protocol(self) -> str | None:
        """The subprotocol the server chose (`v4.channel.k8s.io`), if any."""
        return self._socket.protocol

    @property
    def close_code(self) -> int | None:
        return self._socket.close_code

    @property
    def closed(self) -> bool:
        return self._socket.closed

    async def receive(self) -> bytes | None:
        """The next binary message, or None when the connection has closed."""
        message = await self._socket.receive()
        if message.type is aiohttp.WSMsgType.BINARY:
            data: bytes = message.data
            return data
        if message.type in _CLOSED:
            return None
        if message.type is aiohttp.WSMsgType.ERROR:
            error = message.data
            if isinstance(error, BaseException):
                raise unavailable_error(error, server=self._server, action=self._action) from error
            return None
        if message.type is aiohttp.WSMsgType.TEXT:
            raise KubeError(
                f"the Kubernetes API server at {self._server} sent text where binary frames were "
                f"expected while asked to {self._action.target()}",
                hint="the server chose a base64 subprotocol jkctl does not speak; please report it",
            )
        return None

    async def send(self, data: bytes) -> None:
        try:
            await self._socket.send_bytes(data)
        except TRANSPORT_ERRORS as exc:
            raise KubeUnavailable(
                f"the connection to the Kubernetes API server at {self._server} closed while "
                f"asked to {self._action.target()}",
                hint="open it again; if it keeps closing, check the network and the pod",
            ) from exc

    async def close(self) -> None:
        """Close the websocket (idempotent); a close that fails is already a closed socket."""
        with contextlib.suppress(*TRANSPORT_ERRORS):
            await self._socket.close()
