"""Kernel start, one at a time and many at once, and what the server's memory does meanwhile.

**One at a time** (:func:`sequential_starts`): ``POST /api/kernels`` to the
first ``kernel_info_reply`` on the kernel's websocket, per server,
interleaved. The floor is the bundled kernel spawned here and asked for
``kernel_info`` by a raw ZeroMQ client from its first moment
(:func:`kernel_boot`): what the kernel itself takes to answer. For a
server with a warm pool, each start first waits (``GET
/jkctl/v1/pool?wait=full``) until the pool is full again, so that every start
is a pool hit.

**The Kubernetes breakdown** (:class:`PodTimes`, :func:`daemon_timelines`):
this script's own watch of the namespace says when each pod was created,
scheduled and running; the daemon's log says when its tunnel first heard
the kernel ("tunnel open"). The **daemon's overhead over Running** is
``answered - running - kernel boot floor``.

**Many at once** (:func:`concurrent_starts`): N frontends start a kernel
each at the same moment; the time until all have their
``kernel_info_reply``, the failures, and the server's RSS before and with
the N kernels up and idle.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import zmq
import zmq.asyncio
from jupyter_client.connect import write_connection_file
from jupyter_client.session import Session as ZmqSession

from jkctl.kube.client import KubeClient
from jkctl.kube.podwatch import pod_state
from jkctl.kube.resources import PODS
from tests.benchmarks.measure import percentile
from tests.benchmarks.servers import Server
from tests.benchmarks.sessions import GatewaySession

TIMELINE = re.compile(r"\(pod (\S+)\): start timeline: (.*)$")
#: One start may take this long before it counts as failed.
START_LIMIT = 300.0


def rss_mib(pid: int) -> float:
    """A process's resident set size (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Ports:
    """Free ports for kernels started here, never the same twice while in use.

    Chosen below the ephemeral range, as the local backend does: ``bind(0)``
    ports are what every outgoing connection takes too, so concurrent starts
    would collide (a kernel then answers on another kernel's port, or never).
    """

    def __init__(self) -> None:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        self._range = range(20000, low if low > 21000 else 60000)
        self._used: set[int] = set()

    def take(self, count: int) -> list[int]:
        ports: list[int] = []
        while len(ports) < count:
            port = self._range.start + secrets.randbelow(len(self._range))
            if port in self._used or not _is_free(port):
                continue
            self._used.add(port)
            ports.append(port)
        return ports

    def give_back(self, ports: list[int]) -> None:
        self._used.difference_update(ports)


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def _boot_one(folder: Path, context: zmq.asyncio.Context, allocator: Ports) -> float:
    """Spawn the kernel; ms until it answers a kernel_info_request sent at once."""
    connection = folder / f"boot-{secrets.token_hex(4)}.json"
    ports = allocator.take(5)
    key = secrets.token_hex(16).encode()
    write_connection_file(
        str(connection),
        shell_port=ports[0],
        iopub_port=ports[1],
        stdin_port=ports[2],
        control_port=ports[3],
        hb_port=ports[4],
        ip="127.0.0.1",
        key=key,
    )
    session = ZmqSession(key=key)
    shell = context.socket(zmq.DEALER)
    shell.setsockopt(zmq.RECONNECT_IVL, 10)
    shell.setsockopt(zmq.LINGER, 0)
    shell.connect(f"tcp://127.0.0.1:{ports[0]}")
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ipykernel_launcher",
        "-f",
        str(connection),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        session.send(shell, "kernel_info_request", {})
        async with asyncio.timeout(START_LIMIT):
            await shell.recv_multipart()
        return (time.perf_counter() - started) * 1000
    finally:
        shell.close()
        process.terminate()
        await process.wait()
        connection.unlink(missing_ok=True)
        allocator.give_back(ports)


async def kernel_boot(samples: int, folder: Path, *, at_once: int = 1) -> list[float]:
    """The floor: ``samples`` kernel boots, ``at_once`` at a time."""
    context = zmq.asyncio.Context()
    allocator = Ports()
    times: list[float] = []
    try:
        while len(times) < samples:
            batch = min(at_once, samples - len(times))
            times += await asyncio.gather(
                *(_boot_one(folder, context, allocator) for _ in range(batch))
            )
    finally:
        context.term()
    return times


class PodTimes:
    """When this script's watch saw each pod created, scheduled and running."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, float]] = {}

    async def follow(self, kube: KubeClient, namespace: str) -> None:
        async with kube.watch(PODS, namespace=namespace, resource_version="0") as events:
            async for event in events:
                now = time.perf_counter()
                pod = pod_state(event["object"])
                times = self.seen.setdefault(pod.name, {})
                times.setdefault("created", now)
                if pod.node:
                    times.setdefault("scheduled", now)
                kernel = pod.container("kernel")
                if kernel is not None and kernel.state == "running":
                    times.setdefault("running", now)


def daemon_timelines(server: Server) -> dict[str, dict[str, float]]:
    """Per pod, the daemon's own start timeline (ms since its launch began)."""
    assert server.daemon is not None
    found = {}
    for line in (server.daemon.root / "daemon-foreground.log").read_text().splitlines():
        match = TIMELINE.search(line)
        if match:
            steps = {}
            for part in match[2].split(", "):
                step, _, value = part.partition(" +")
                steps[step] = float(value.removesuffix(" ms"))
            found[match[1]] = steps
    return found


async def wait_pool_full(server: Server, http: aiohttp.ClientSession) -> None:
    async with http.get(
        server.url + "/jkctl/v1/pool",
        params={"wait": "full", "timeout": "120"},
        headers={"Authorization": f"token {server.token}"},
    ) as response:
        body = await response.json()
        if response.status != 200:
            raise RuntimeError(f"the warm pool did not fill: {response.status} {body}")


@dataclass
class Start:
    kernel_id: str
    started_at: float
    post_ms: float
    answered_ms: float


@dataclass
class Starts:
    starts: list[Start] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        answered = [start.answered_ms for start in self.starts]
        post = [start.post_ms for start in self.starts]
        return {
            "p50_ms": percentile(answered, 50),
            "p90_ms": percentile(answered, 90),
            "post_p50_ms": percentile(post, 50),
            "starts": len(answered),
        }


async def sequential_starts(
    servers: list[Server], http: aiohttp.ClientSession, count: int, *, pooled: set[str]
) -> dict[str, Starts]:
    """``count`` starts per server, one at a time, interleaved between servers."""
    found = {server.name: Starts() for server in servers}
    for index in range(count):
        shift = index % len(servers)
        for server in servers[shift:] + servers[:shift]:
            if server.name in pooled:
                await wait_pool_full(server, http)
            session = GatewaySession(server, http)
            async with asyncio.timeout(START_LIMIT):
                await session.open()
            found[server.name].starts.append(
                Start(session.kernel_id, session.started_at, session.post_ms, session.start_ms)
            )
            await session.close()
    return found


def kube_breakdown(
    starts: Starts,
    *,
    seen: dict[str, dict[str, float]],
    timelines: dict[str, dict[str, float]],
    boot_p50: float,
) -> dict[str, dict[str, float]]:
    """p50/p90 of each step (ms after the POST), and the daemon's overhead over Running."""
    steps: dict[str, list[float]] = {
        k: [] for k in ("created", "scheduled", "running", "tunnel_open", "kernel_info", "overhead")
    }
    for start in starts.starts:
        pod = f"jkctl-{start.kernel_id}"
        times = seen.get(pod, {})
        for step in ("created", "scheduled", "running"):
            if step in times:
                steps[step].append((times[step] - start.started_at) * 1000)
        if "listening" in timelines.get(pod, {}):
            steps["tunnel_open"].append(timelines[pod]["listening"])
        steps["kernel_info"].append(start.answered_ms)
        if "running" in times:
            running_ms = (times["running"] - start.started_at) * 1000
            steps["overhead"].append(start.answered_ms - running_ms - boot_p50)
    return {
        step: {"p50": percentile(values, 50), "p90": percentile(values, 90)}
        for step, values in steps.items()
        if values
    }


async def concurrent_starts(
    server: Server, http: aiohttp.ClientSession, count: int
) -> dict[str, Any]:
    """``count`` kernels started at once through ``server``; stopped again afterwards."""
    sessions = [GatewaySession(server, http) for _ in range(count)]

    async def open_one(session: GatewaySession) -> None:
        async with asyncio.timeout(START_LIMIT):
            await session.open()

    started = time.perf_counter()
    results = await asyncio.gather(*(open_one(s) for s in sessions), return_exceptions=True)
    seconds = time.perf_counter() - started
    errors = [f"{type(r).__name__}: {r}"[:300] for r in results if isinstance(r, BaseException)]
    # Let the kernels settle to idle before reading the server's memory.
    answered = [s for s, r in zip(sessions, results, strict=True) if r is None]
    for session in answered:
        await session.round_trip()
    rss = rss_mib(server.pid)
    await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
    return {
        "kernels": count,
        "all_answered_s": seconds,
        "failures": len(errors),
        "errors": sorted(set(errors))[:5],
        "rss_mib": rss,
    }


async def concurrent_boots(folder: Path, count: int) -> dict[str, Any]:
    """The floor for concurrency: ``count`` kernels spawned at once, asked for kernel_info."""
    context = zmq.asyncio.Context()
    allocator = Ports()
    started = time.perf_counter()
    try:
        results = await asyncio.gather(
            *(_boot_one(folder, context, allocator) for _ in range(count)),
            return_exceptions=True,
        )
    finally:
        context.term()
    errors = [f"{type(r).__name__}: {r}"[:300] for r in results if isinstance(r, BaseException)]
    return {
        "kernels": count,
        "all_answered_s": time.perf_counter() - started,
        "failures": len(errors),
        "errors": sorted(set(errors))[:5],
    }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
