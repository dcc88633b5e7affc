"""The Kubernetes backend on kubesim: kernel start with its breakdown, and execute round trips.

Run it with one command (it starts kubesim, a namespace, and the daemons)::

    python -m tests.benchmarks.bench_kubernetes            # 10 starts, 300 round trips
    python -m tests.benchmarks.bench_kubernetes --quick    # 3 starts, 50 round trips

**Kernel start**: ``POST /api/kernels`` until it answers (the daemon answers
once the kernel answered ``kernel_info``), p50/p90 over the starts, with the
breakdown: API create (the pod object exists), scheduled, running (its
container started), kernel listening (the tunnel's first bytes from the
kernel, from the daemon's log), answered. Created/scheduled/running are seen
by this script's own watch of the namespace. The **daemon's overhead over
the pod becoming Running** is ``answered - running - kernel boot``, where the
kernel boot (the floor) is the same kernel spawned by this script and asked
for ``kernel_info`` by a raw ZeroMQ client from the first moment, measured in
the same run: what the kernel itself takes to answer. The local backend's
start is measured beside it.

**Execute round trip**: ``execute_request`` of ``pass`` to its reply and to
``status: idle``, p50/p99, for the floor (``jupyter_client`` straight to a
local kernel), the daemon on the local backend, and the daemon on kubesim
(through the port-forward tunnel), both websocket protocols.

Prints a table, then the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import zmq
import zmq.asyncio
from jupyter_client.connect import write_connection_file
from jupyter_client.session import Session

from jkctl.kube.client import KubeClient
from jkctl.kube.login import kubeconfig_login
from jkctl.kube.podwatch import pod_state
from jkctl.kube.resources import PODS
from tests.benchmarks.bench_relay import Floor, ThroughDaemon, percentile
from tests.kube_users import jkctl_namespace
from tests.kubesim.fixture import run_kubesim
from tests.processes import RunningDaemon, start_daemon

TIMELINE = re.compile(r"\(pod (\S+)\): start timeline: (.*)$")


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


async def kernel_boot(samples: int, folder: Path) -> list[float]:
    """The floor: the bundled python3 kernel, spawned here, until it answers kernel_info.

    A raw ZeroMQ client sends the request at once (it is queued until the kernel
    binds, reconnecting every 10 ms), so this is the kernel's own start-up.
    """
    times = []
    context = zmq.asyncio.Context()
    for index in range(samples):
        connection = folder / f"boot-{index}.json"
        ports = [_free_port() for _ in range(5)]
        key = secrets.token_hex(16)
        write_connection_file(
            str(connection),
            shell_port=ports[0],
            iopub_port=ports[1],
            stdin_port=ports[2],
            control_port=ports[3],
            hb_port=ports[4],
            ip="127.0.0.1",
            key=key.encode(),
        )
        session = Session(key=key.encode())
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
        session.send(shell, "kernel_info_request", {})
        async with asyncio.timeout(60):
            await shell.recv_multipart()
        times.append((time.perf_counter() - started) * 1000)
        shell.close()
        process.terminate()
        await process.wait()
    context.term()
    return times


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def start_kernels(
    daemon: RunningDaemon, http: aiohttp.ClientSession, count: int
) -> list[tuple[str, float, float]]:
    """(kernel id, POST sent, answered) for ``count`` starts, one after another."""
    starts = []
    for _ in range(count):
        started = time.perf_counter()
        async with http.post(
            daemon.url + "/api/kernels",
            json={"name": "python3"},
            headers={"Authorization": f"token {daemon.token}"},
        ) as response:
            model = await response.json()
            assert response.status == 201, model
        starts.append((model["id"], started, time.perf_counter()))
    for kernel_id, _, _ in starts:
        async with http.delete(
            f"{daemon.url}/api/kernels/{kernel_id}",
            headers={"Authorization": f"token {daemon.token}"},
        ) as response:
            assert response.status == 204
    return starts


def daemon_timelines(daemon: RunningDaemon) -> dict[str, dict[str, float]]:
    """Per pod, the daemon's own start timeline (ms since its launch began)."""
    found = {}
    for line in (daemon.root / "daemon-foreground.log").read_text().splitlines():
        match = TIMELINE.search(line)
        if match:
            steps = {}
            for part in match[2].split(", "):
                step, _, value = part.partition(" +")
                steps[step] = float(value.removesuffix(" ms"))
            found[match[1]] = steps
    return found


async def round_trips(targets: list[Any], rounds: int) -> dict[str, dict[str, float]]:
    samples: dict[str, tuple[list[float], list[float]]] = {t.name: ([], []) for t in targets}
    for index in range(rounds + 20):
        for target in targets[index % len(targets) :] + targets[: index % len(targets)]:
            reply_ms, idle_ms = await target.round_trip()
            if index >= 20:
                samples[target.name][0].append(reply_ms)
                samples[target.name][1].append(idle_ms)
    return {
        name: {
            "reply_p50_ms": percentile(reply, 50),
            "reply_p99_ms": percentile(reply, 99),
            "idle_p50_ms": percentile(idle, 50),
            "idle_p99_ms": percentile(idle, 99),
        }
        for name, (reply, idle) in samples.items()
    }


async def bench(root: Path, starts: int, rounds: int) -> dict[str, Any]:
    with run_kubesim(root / "kubesim") as kubesim:
        namespace = jkctl_namespace(kubesim, "bench")
        kube_daemon = start_daemon(
            root / "kube",
            "--backend",
            "kubernetes",
            "--kubeconfig",
            str(namespace.kubeconfig),
            "--namespace",
            namespace.name,
        )
        local_daemon = start_daemon(root / "local", "--backend", "local")
        watcher = PodTimes()
        try:
            async with (
                KubeClient(kubeconfig_login(kubeconfig=kubesim.kubeconfig)) as kube,
                aiohttp.ClientSession() as http,
                asyncio.TaskGroup() as group,
            ):
                follow = group.create_task(watcher.follow(kube, namespace.name))
                boot = await kernel_boot(max(3, starts // 2), root)
                kube_starts = await start_kernels(kube_daemon, http, starts)
                local_starts = await start_kernels(local_daemon, http, starts)
                follow.cancel()
                targets: list[Any] = [
                    Floor(),
                    ThroughDaemon(local_daemon, http, "v1"),
                    ThroughDaemon(kube_daemon, http, "v1"),
                    ThroughDaemon(kube_daemon, http, "legacy"),
                ]
                targets[1].name = "jkctl local backend, v1"
                targets[2].name = "jkctl kubesim tunnel, v1"
                targets[3].name = "jkctl kubesim tunnel, legacy"
                for target in targets:
                    await target.start()
                try:
                    rtt = await round_trips(targets, rounds)
                finally:
                    for target in targets:
                        await target.stop()
        finally:
            kube_daemon.stop(stop_kernels=True)
            local_daemon.stop()
        timelines = daemon_timelines(kube_daemon)
    return report(
        kube_starts,
        local_starts=local_starts,
        seen=watcher.seen,
        timelines=timelines,
        boot=boot,
        rtt=rtt,
    )


def report(
    kube_starts: list[tuple[str, float, float]],
    *,
    local_starts: list[tuple[str, float, float]],
    seen: dict[str, dict[str, float]],
    timelines: dict[str, dict[str, float]],
    boot: list[float],
    rtt: dict[str, dict[str, float]],
) -> dict[str, Any]:
    boot_p50 = statistics.median(boot)
    steps: dict[str, list[float]] = {
        k: [] for k in ("created", "scheduled", "running", "listening", "answered", "overhead")
    }
    for kernel_id, started, answered in kube_starts:
        pod = f"jkctl-{kernel_id}"
        times = seen.get(pod, {})
        for step in ("created", "scheduled", "running"):
            if step in times:
                steps[step].append((times[step] - started) * 1000)
        if "listening" in timelines.get(pod, {}):
            steps["listening"].append(timelines[pod]["listening"])
        steps["answered"].append((answered - started) * 1000)
        if "running" in times:
            steps["overhead"].append((answered - times["running"]) * 1000 - boot_p50)
    local = [(answered - started) * 1000 for _, started, answered in local_starts]
    return {
        "kernel_start_ms": {
            "kubesim": {
                step: {"p50": percentile(values, 50), "p90": percentile(values, 90)}
                for step, values in steps.items()
            },
            "local_backend": {"p50": percentile(local, 50), "p90": percentile(local, 90)},
            "kernel_boot_floor": {"p50": boot_p50, "samples": len(boot)},
            "starts": len(kube_starts),
        },
        "execute_round_trip_ms": rtt,
    }


def print_table(figures: dict[str, Any]) -> None:
    start = figures["kernel_start_ms"]
    kube = start["kubesim"]
    print(f"kernel start on kubesim, {start['starts']} starts (ms after POST /api/kernels):")
    print(f"  {'step':38} {'p50':>8} {'p90':>8}")
    labels = {
        "created": "API create (pod exists)",
        "scheduled": "scheduled",
        "running": "running (container started)",
        "listening": "kernel listening (tunnel's first bytes)",
        "answered": "answered (POST returns: kernel_info)",
    }
    for step, label in labels.items():
        print(f"  {label:38} {kube[step]['p50']:8.0f} {kube[step]['p90']:8.0f}")
    print(
        f"  daemon overhead over Running: p50 {kube['overhead']['p50']:.0f} ms "
        f"(answered - running - kernel boot floor {start['kernel_boot_floor']['p50']:.0f} ms)"
    )
    print(
        f"  local backend, same daemon code: p50 {start['local_backend']['p50']:.0f} ms, "
        f"p90 {start['local_backend']['p90']:.0f} ms"
    )
    print("\nexecute round trip of `pass` (ms):")
    rtt = figures["execute_round_trip_ms"]
    floor = next(iter(rtt.values()))["idle_p50_ms"]
    print(f"  {'':34} {'reply p50':>10} {'p99':>8} {'idle p50':>9} {'p99':>8} {'vs floor':>9}")
    for name, row in rtt.items():
        print(
            f"  {name:34} {row['reply_p50_ms']:10.2f} {row['reply_p99_ms']:8.2f} "
            f"{row['idle_p50_ms']:9.2f} {row['idle_p99_ms']:8.2f} "
            f"{row['idle_p50_ms'] - floor:+9.2f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="3 starts, 50 round trips")
    args = parser.parse_args()
    starts, rounds = (3, 50) if args.quick else (args.starts, args.rounds)
    with tempfile.TemporaryDirectory(prefix="jkctl-bench-kube-") as tmp:
        figures = asyncio.run(bench(Path(tmp), starts, rounds))
    print_table(figures)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
