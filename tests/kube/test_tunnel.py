"""Tunnel: a pod's ports as 0700 Unix sockets, one port-forward websocket per connection."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from jkctl import errors
from jkctl.kube.client import KubeClient
from jkctl.kube.tunnel import Tunnel, TunnelSettings

from .fakeapi import EchoServer, FakeApi, status_response

FAST_BACKOFF = TunnelSettings(backoff_initial=0.2, backoff_max=0.4)


@pytest.fixture
async def echo(api: FakeApi) -> AsyncIterator[EchoServer]:
    async with EchoServer() as server:
        api.pod_ports[5555] = server.port
        yield server


async def round_trip(path: Path, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(payload)
        await writer.drain()
        return await reader.readexactly(len(payload))
    finally:
        writer.close()


async def test_connections_are_forwarded_and_counted(
    api: FakeApi, kube: KubeClient, echo: EchoServer, tmp_path: Path
) -> None:
    directory = tmp_path / "tunnels" / "k-1"
    async with Tunnel(kube, pod="k-1", ports=[5555, 6666], directory=directory) as tunnel:
        assert tunnel.address(5555) == f"ipc://{directory}/5555"
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(tunnel.path(5555).stat().st_mode) == 0o600
        assert stat.S_ISSOCK(tunnel.path(6666).stat().st_mode)

        reader, writer = await asyncio.open_unix_connection(tunnel.path(5555))
        writer.write(b"hello kernel")
        await writer.drain()
        assert await reader.readexactly(12) == b"hello kernel"
        stats = tunnel.stats
        assert (stats.opened, stats.active, stats.failed) == (1, 1, 0)
        assert (stats.bytes_to_pod, stats.bytes_from_pod) == (12, 12)

        writer.close()
        async with asyncio.timeout(5):
            await echo.ended.get()  # closing the local end closed the pod's connection
            await tunnel.wait_idle()
        assert tunnel.stats.active == 0

        big = os.urandom(3 * 1024 * 1024)
        results = await asyncio.gather(*(round_trip(tunnel.path(5555), big) for _ in range(3)))
        assert all(result == big for result in results)
        assert tunnel.stats.opened == 4
    assert not directory.exists()
    assert api.portforwards == ["/api/v1/namespaces/geo/pods/k-1/portforward"] * 4
    assert all(request.query == [("ports", "5555")] for request in api.requests)


async def test_pod_side_closing_closes_the_local_connection(
    api: FakeApi, kube: KubeClient, tmp_path: Path
) -> None:
    async def greet_and_leave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"greeting")
        writer.close()

    server = await asyncio.start_server(greet_and_leave, "127.0.0.1", 0)
    async with server:
        api.pod_ports[5555] = server.sockets[0].getsockname()[1]
        async with Tunnel(kube, pod="k-1", ports=[5555], directory=tmp_path / "t") as tunnel:
            reader, writer = await asyncio.open_unix_connection(tunnel.path(5555))
            async with asyncio.timeout(5):
                assert await reader.read() == b"greeting"  # read() to EOF
            writer.close()
            assert tunnel.stats.failed == 0


async def test_api_server_dropping_the_websocket_closes_the_local_connection(
    api: FakeApi, kube: KubeClient, echo: EchoServer, tmp_path: Path
) -> None:
    async with Tunnel(kube, pod="k-1", ports=[5555], directory=tmp_path / "t") as tunnel:
        reader, writer = await asyncio.open_unix_connection(tunnel.path(5555))
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
        await api.stop()
        async with asyncio.timeout(5):
            assert await reader.read() == b""
            await tunnel.wait_idle()
        writer.close()


async def test_failures_back_off_instead_of_looping(
    api: FakeApi, kube: KubeClient, echo: EchoServer, tmp_path: Path
) -> None:
    async def forbidden(request: web.Request) -> web.Response:
        return status_response(403, "Forbidden", "")

    api.on("GET", "/api/v1/namespaces/geo/pods/k-1/portforward", forbidden)
    loop = asyncio.get_running_loop()
    directory = tmp_path / "t"
    async with Tunnel(
        kube, pod="k-1", ports=[5555], directory=directory, settings=FAST_BACKOFF
    ) as tunnel:
        path = tunnel.path(5555)
        reader, writer = await asyncio.open_unix_connection(path)
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # refused at once: ZeroMQ will reconnect
        writer.close()
        assert (tunnel.stats.failed, tunnel.stats.failure_streak) == (1, 1)

        started = loop.time()
        reader, writer = await asyncio.open_unix_connection(path)
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()
        assert loop.time() - started >= 0.2 * 0.8, "the second attempt waited out the back-off"
        assert len(api.requests) == 2
        assert tunnel.stats.failure_streak == 2

        del api.handlers[("GET", "/api/v1/namespaces/geo/pods/k-1/portforward")]
        assert await round_trip(path, b"works again") == b"works again"
        assert tunnel.stats.failure_streak == 0
        assert tunnel.stats.failed == 2


async def test_connections_failing_together_are_one_failure_then_one_dials_at_a_time(
    api: FakeApi, kube: KubeClient, echo: EchoServer, tmp_path: Path
) -> None:
    together = 4
    dialing: list[web.Request] = []
    all_dialed = asyncio.Event()

    async def slowly_forbidden(request: web.Request) -> web.Response:
        # The first four are answered once all four dialed: they fail together.
        dialing.append(request)
        if len(dialing) == together:
            all_dialed.set()
        if len(dialing) <= together:
            async with asyncio.timeout(5):
                await all_dialed.wait()
        return status_response(403, "Forbidden", "")

    api.on("GET", "/api/v1/namespaces/geo/pods/k-1/portforward", slowly_forbidden)

    async def fails(path: Path) -> None:
        reader, writer = await asyncio.open_unix_connection(path)
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()

    async with Tunnel(
        kube, pod="k-1", ports=[5555], directory=tmp_path / "t", settings=FAST_BACKOFF
    ) as tunnel:
        path = tunnel.path(5555)
        # A kernel's connections reconnecting at once into an outage: one failure.
        await asyncio.gather(*(fails(path) for _ in range(together)))
        assert (tunnel.stats.failed, tunnel.stats.failure_streak) == (4, 1)
        # Then they take turns: each attempt is one dial, and counts.
        await asyncio.gather(fails(path), fails(path))
        assert len(api.requests) == 6
        assert (tunnel.stats.failed, tunnel.stats.failure_streak) == (6, 3)

        del api.handlers[("GET", "/api/v1/namespaces/geo/pods/k-1/portforward")]
        assert await round_trip(path, b"works again") == b"works again"
        assert tunnel.stats.failure_streak == 0


async def test_nothing_listening_in_the_pod_counts_as_a_failure(
    api: FakeApi, kube: KubeClient, tmp_path: Path
) -> None:
    async with Tunnel(
        kube, pod="k-1", ports=[5555], directory=tmp_path / "t", settings=FAST_BACKOFF
    ) as tunnel:
        reader, writer = await asyncio.open_unix_connection(tunnel.path(5555))
        async with asyncio.timeout(5):
            assert await reader.read() == b""
            await tunnel.wait_idle()
        writer.close()
        stats = tunnel.stats
        assert (stats.opened, stats.failed, stats.failure_streak) == (1, 1, 1)


MIB = 1024 * 1024


async def write_until_blocked(writer: asyncio.StreamWriter, *, limit: int) -> int:
    """Write 1 MiB chunks until a drain has not finished within a second; bytes accepted."""
    written = 0
    while written < limit:
        writer.write(b"\0" * MIB)
        try:
            async with asyncio.timeout(1.0):
                await writer.drain()
        except TimeoutError:
            return written
        written += MIB
    raise AssertionError(f"{limit // MIB} MiB went in without the writer ever blocking")


async def test_backpressure_bounds_what_is_buffered(
    api: FakeApi, kube: KubeClient, tmp_path: Path
) -> None:
    """A pod that stops reading stops the local writer; nothing piles up in between."""
    stalled: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hi")  # greet, then never read a byte
        await stalled.put(writer)

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    async with server:
        api.pod_ports[5555] = server.sockets[0].getsockname()[1]
        async with Tunnel(kube, pod="k-1", ports=[5555], directory=tmp_path / "t") as tunnel:
            reader, writer = await asyncio.open_unix_connection(tunnel.path(5555))
            assert await reader.readexactly(2) == b"hi"
            written = await write_until_blocked(writer, limit=512 * MIB)
            assert written < 128 * MIB, f"{written // MIB} MiB went in before blocking"
            assert tunnel.stats.bytes_to_pod <= written + MIB
            writer.close()
            (await stalled.get()).close()


async def test_leaving_with_open_connections_cleans_up(
    api: FakeApi, kube: KubeClient, echo: EchoServer, tmp_path: Path
) -> None:
    directory = tmp_path / "t"
    directory.mkdir(mode=0o755)
    (directory / "5555").write_text("stale socket from a dead daemon")
    async with Tunnel(kube, pod="k-1", ports=[5555], directory=directory) as tunnel:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        reader, writer = await asyncio.open_unix_connection(tunnel.path(5555))
        assert await round_trip(tunnel.path(5555), b"a") == b"a"
        writer.write(b"b")
        assert await reader.readexactly(1) == b"b"
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    writer.close()
    assert directory.is_dir(), "a directory the tunnel did not create stays"
    assert list(directory.iterdir()) == []


async def test_socket_path_too_long(kube: KubeClient, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with pytest.raises(errors.TunnelError, match="too long for a Unix socket"):
        async with Tunnel(kube, pod="k-1", ports=[5555], directory=deep):
            pytest.fail("should not start")


async def test_a_paused_tunnel_holds_connections_and_keeps_what_they_send(
    api: FakeApi, kube: KubeClient, echo: EchoServer, tmp_path: Path
) -> None:
    async with Tunnel(
        kube, pod="k-1", ports=[5555], directory=tmp_path / "t", paused=True
    ) as tunnel:
        assert tunnel.paused
        # A connection that ends while the tunnel is paused is never dialed.
        _, gone = await asyncio.open_unix_connection(tunnel.path(5555))
        gone.close()
        reader, writer = await asyncio.open_unix_connection(tunnel.path(5555))
        writer.write(b"sent early")
        await writer.drain()
        async with asyncio.timeout(5):
            await tunnel.wait_stats(lambda s: s.dropped == 1 and s.waiting == 1)
        assert api.portforwards == []

        tunnel.resume(probe=False)
        assert await reader.readexactly(10) == b"sent early"
        assert len(api.portforwards) == 1
        writer.close()


async def reconnecting_echo(path: Path, payload: bytes) -> int:
    """Connect, send, read the echo; on EOF connect again, as ZeroMQ does. Returns tries."""
    tries = 0
    while True:
        tries += 1
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            writer.write(payload)
            echoed = await reader.read(len(payload))
        finally:
            writer.close()
        if echoed:
            assert echoed == payload
            return tries


async def test_a_refused_port_is_probed_by_one_connection_at_a_time(
    api: FakeApi, kube: KubeClient, tmp_path: Path
) -> None:
    """While nothing listens in the pod, one connection probes; once something does,
    every waiting connection gets through at once."""
    in_flight, most = [0], [0]
    path = "/api/v1/namespaces/geo/pods/k-1/portforward"

    async def counting(request: web.Request) -> web.StreamResponse:
        refused = 5555 not in api.pod_ports
        in_flight[0] += refused
        most[0] = max(most[0], in_flight[0])
        try:
            return await api._portforward(request)
        finally:
            in_flight[0] -= refused

    api.on("GET", path, counting)
    async with Tunnel(kube, pod="k-1", ports=[5555], directory=tmp_path / "t") as tunnel:
        clients = [
            asyncio.create_task(reconnecting_echo(tunnel.path(5555), f"client {i}".encode()))
            for i in range(3)
        ]
        async with asyncio.timeout(10):
            # Every dial after the first refused round waits its turn.
            stats = await tunnel.wait_stats(lambda s: s.refused >= 8)
        assert most[0] <= 3, "only the first round dials in parallel"
        refused_so_far = stats.refused
        async with EchoServer() as echo:
            api.pod_ports[5555] = echo.port
            async with asyncio.timeout(2):
                await asyncio.gather(*clients)
            # After the first round, probes went one by one: the later dials did not
            # pile up (3 clients reconnecting every few ms would have made hundreds).
            assert tunnel.stats.refused <= refused_so_far + 3
            assert tunnel.stats.failure_streak == 0
            await tunnel.wait_idle()


async def test_close_connections_and_retarget(
    api: FakeApi, kube: KubeClient, echo: EchoServer, tmp_path: Path
) -> None:
    async with Tunnel(kube, pod="k-1", ports=[5555], directory=tmp_path / "t") as tunnel:
        reader, writer = await asyncio.open_unix_connection(tunnel.path(5555))
        writer.write(b"a")
        assert await reader.readexactly(1) == b"a"
        tunnel.pause()
        tunnel.retarget("k-2")
        tunnel.close_connections()
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()
        reader, writer = await asyncio.open_unix_connection(tunnel.path(5555))
        writer.write(b"b")
        tunnel.resume()
        assert await reader.readexactly(1) == b"b"
        writer.close()
    assert api.portforwards == [
        "/api/v1/namespaces/geo/pods/k-1/portforward",
        "/api/v1/namespaces/geo/pods/k-2/portforward",
    ]
