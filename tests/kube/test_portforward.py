"""v4.channel.k8s.io framing as pure functions, and PortForward against a fake kubelet."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from jkctl import errors
from jkctl.kube.client import KubeClient
from jkctl.kube.portforward import (
    Data,
    Demux,
    Failure,
    PortForward,
    ProtocolError,
    data_channel,
    encode,
    error_channel,
    port_header,
)

from .fakeapi import EchoServer, FakeApi, status_response

# -- framing --------------------------------------------------------------------------


def test_channels_pair_up_per_port() -> None:
    assert [(data_channel(i), error_channel(i)) for i in range(3)] == [(0, 1), (2, 3), (4, 5)]


def test_client_frames_are_channel_byte_then_data() -> None:
    assert encode(2, b"hello") == b"\x02hello"
    assert encode(0, b"") == b"\x00"


def test_port_header_is_little_endian() -> None:
    assert port_header(3, 8888) == bytes([3, 0xB8, 0x22])
    assert port_header(0, 1) == b"\x00\x01\x00"


def test_demux_checks_headers_then_sorts_data_and_errors() -> None:
    demux = Demux([8888, 5555])
    assert demux.feed(port_header(0, 8888)) is None
    assert demux.feed(port_header(1, 8888)) is None
    assert demux.feed(port_header(2, 5555)) is None
    assert demux.feed(port_header(3, 5555)) is None
    assert demux.feed(b"\x00abc") == Data(0, b"abc")
    assert demux.feed(b"\x02xyz") == Data(1, b"xyz")
    assert demux.feed(b"\x03error forwarding port 5555") == Failure(1, "error forwarding port 5555")
    assert demux.feed(b"\x00") is None


def test_demux_accepts_data_after_the_header_in_the_same_message() -> None:
    demux = Demux([8888])
    assert demux.feed(port_header(0, 8888) + b"early") == Data(0, b"early")
    assert demux.feed(port_header(1, 8888) + b"refused") == Failure(0, "refused")


@pytest.mark.parametrize(
    ("messages", "complaint"),
    [
        ([b""], "empty message"),
        ([b"\x00\x01"], "without its port header"),
        ([port_header(0, 9999)], "announced port 9999, not 8888"),
        ([port_header(3, 8888)], "announced port 8888, not 7777"),
        ([b"\x04\x00\x00"], "channel 4 is not one of"),
    ],
)
def test_demux_rejects_what_is_not_the_protocol(messages: list[bytes], complaint: str) -> None:
    demux = Demux([8888, 7777])
    *before, last = messages
    for message in before:
        demux.feed(message)
    with pytest.raises(ProtocolError, match=complaint):
        demux.feed(last)


# -- against the fake kubelet ---------------------------------------------------------


@pytest.fixture
async def echo(api: FakeApi) -> AsyncIterator[EchoServer]:
    async with EchoServer() as server:
        api.pod_ports[8888] = server.port
        yield server


async def test_one_port_round_trips_bytes(api: FakeApi, kube: KubeClient, echo: EchoServer) -> None:
    async with PortForward(kube, "k-1", [8888]) as forward:
        stream = forward.stream(8888)
        await stream.write(b"ping")
        assert await stream.read() == b"ping"
        payload = os.urandom(1024 * 1024)
        await stream.write(payload)
        received = bytearray()
        while len(received) < len(payload):
            received += await stream.read()
        assert received == payload
    assert api.portforwards == ["/api/v1/namespaces/geo/pods/k-1/portforward"]
    assert api.requests[0].query == [("ports", "8888")]
    assert echo.connections == 1


async def test_several_ports_on_one_websocket(api: FakeApi, kube: KubeClient) -> None:
    async with EchoServer() as first, EchoServer() as second:
        api.pod_ports.update({8888: first.port, 5555: second.port})
        async with PortForward(kube, "k-1", [8888, 5555], namespace="other") as forward:
            a, b = forward.stream(8888), forward.stream(5555)
            await a.write(b"to eight")
            await b.write(b"to five")
            assert await b.read() == b"to five"
            assert await a.read() == b"to eight"
            await a.close()
            await b.write(b"still open")
            assert await b.read() == b"still open"
        assert (first.connections, second.connections) == (1, 1)
    assert api.requests[0].path == "/api/v1/namespaces/other/pods/k-1/portforward"


async def test_nothing_listening_is_a_tunnel_error(api: FakeApi, kube: KubeClient) -> None:
    async with PortForward(kube, "k-1", [8888]) as forward:
        with pytest.raises(errors.TunnelError) as caught:
            await forward.stream(8888).read()
    assert caught.value.message == (
        'Kubernetes could not forward port 8888 of pod "k-1": nothing in the pod listens on it'
    )
    assert caught.value.context is not None
    assert caught.value.context.startswith("error forwarding port 8888 to pod")
    assert caught.value.hint is not None and "kubectl logs k-1 -n geo" in caught.value.hint


async def test_one_failing_port_of_several(
    api: FakeApi, kube: KubeClient, echo: EchoServer
) -> None:
    async with PortForward(kube, "k-1", [8888, 5555]) as forward:
        with pytest.raises(errors.TunnelError, match="port 5555"):
            await forward.stream(5555).read()


async def test_pod_side_closing_ends_the_stream(api: FakeApi, kube: KubeClient) -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    async with server:
        api.pod_ports[8888] = server.sockets[0].getsockname()[1]
        async with PortForward(kube, "k-1", [8888]) as forward:
            stream = forward.stream(8888)
            assert await stream.read() == b""
            assert await stream.read() == b""


async def test_api_server_going_away_ends_the_stream(
    api: FakeApi, kube: KubeClient, echo: EchoServer
) -> None:
    async with PortForward(kube, "k-1", [8888, 9999]) as forward:
        api.pod_ports[9999] = echo.port
        stream = forward.stream(8888)
        await stream.write(b"x")
        assert await stream.read() == b"x"
        await api.stop()
        assert await stream.read() == b""
        assert await forward.stream(9999).read() == b""


async def test_forbidden_portforward(api: FakeApi, kube: KubeClient) -> None:
    async def forbidden(request: web.Request) -> web.Response:
        return status_response(403, "Forbidden", "")

    api.on("GET", "/api/v1/namespaces/geo/pods/k-1/portforward", forbidden)
    with pytest.raises(errors.KubeForbidden, match="pods/portforward"):
        async with PortForward(kube, "k-1", [8888]):
            pytest.fail("should not open")


def test_ports_must_be_distinct(kube: KubeClient) -> None:
    with pytest.raises(ValueError, match="distinct"):
        PortForward(kube, "k-1", [1, 1])


async def test_a_server_breaking_the_protocol_is_a_tunnel_error(
    api: FakeApi, kube: KubeClient
) -> None:
    async def wrong_port(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=["v4.channel.k8s.io"])
        await ws.prepare(request)
        await ws.send_bytes(port_header(0, 1234))
        await ws.receive()
        return ws

    api.on("GET", "/api/v1/namespaces/geo/pods/k-1/portforward", wrong_port)
    async with PortForward(kube, "k-1", [8888]) as forward:
        stream = forward.stream(8888)
        with pytest.raises(errors.TunnelError, match=r"broke the v4\.channel\.k8s\.io protocol"):
            await stream.read()
        with pytest.raises(errors.TunnelError, match="announced port 1234"):
            await stream.read()
