"""Kernels that survive, in figures: tunnel drops, and pods abandoned by a dead daemon.

Run it with one command (it starts kubesim, namespaces and daemons)::

    python -m tests.benchmarks.bench_survival            # 10 drops
    python -m tests.benchmarks.bench_survival --quick    # 3 drops

**Reconnect after a tunnel drop**: kubesim closes every port-forward
stream; the time from then until an ``execute_request`` (``print``) sent at
once has its reply and its output, as a client sees it. Median and max of
``--drops`` drops.

**iopub lost across a 2-second drop**: a cell prints a numbered line every
10 ms for 8 s; after 2 s kubesim closes the port-forwards *and* refuses API
connections for 2 s, so the tunnel cannot be re-opened for that long. Lines
the client never got are counted (with the pod's output keeper, which every
image with Python and pyzmq runs, there should be none), as are lines it got
twice and the daemon's notices of lost output, and the client-side gap (from
the last line before to the first line after) is reported beside the 2 s
asked for: the tunnel's back-off adds to it.

**Abandoned pod**: a daemon with a short lease starts kernels and is
``kill -9``-ed; the time until each pod's kernel has ended (phase
``Succeeded``), after the kill and after the lease.

Prints a table, then the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.kernel_client import KernelClient
from tests.kube_users import Namespace, jkctl_namespace
from tests.kubesim.fixture import Kubesim, run_kubesim
from tests.processes import RunningDaemon, start_kube_daemon

STREAM_EVERY = 0.01
STREAM_FOR = 8.0
DROP_AT = 2.0
DROP_FOR = 2.0
LEASE = 6


def kube_daemon(root: Path, namespace: Namespace, **env: str) -> RunningDaemon:
    return start_kube_daemon(root, namespace, env_overrides=env)


def new_kernel(daemon: RunningDaemon) -> str:
    status, model = daemon.request("POST", "/api/kernels", {"name": "python3"})
    assert status == 201, model
    return str(model["id"])


async def reconnects(kubesim: Kubesim, client: KernelClient, drops: int) -> list[float]:
    """Seconds from closing the port-forwards to a complete execute with its output."""
    took = []
    for n in range(drops):
        assert (await client.execute("pass")).reply.content["status"] == "ok"
        started = time.perf_counter()
        await asyncio.to_thread(kubesim.close_portforwards)
        # Sent at once: if it went out before the daemon noticed the drop, its output
        # can be lost; then the next one counts too, as it would for a user.
        while (await client.execute(f"print({n})")).stdout != f"{n}\n":
            pass
        took.append(time.perf_counter() - started)
    return took


async def stream_across_drop(kubesim: Kubesim, client: KernelClient) -> dict[str, Any]:
    lines = int(STREAM_FOR / STREAM_EVERY)
    code = (
        "import time\n"
        f"for i in range({lines}):\n"
        "    print(i, flush=True)\n"
        f"    time.sleep({STREAM_EVERY})\n"
    )
    msg_id = await client.send("shell", "execute_request", {"code": code})
    got: list[tuple[float, int]] = []
    notices = 0
    dropped = asyncio.get_running_loop().create_future()

    async def drop() -> None:
        await asyncio.sleep(DROP_AT)
        await asyncio.to_thread(kubesim.refuse_api, DROP_FOR)
        await asyncio.to_thread(kubesim.close_portforwards)
        dropped.set_result(time.perf_counter())

    async with asyncio.TaskGroup() as group:
        group.create_task(drop())
        reply = None
        idle = False
        while reply is None or not idle:
            msg = await client.receive()
            if msg.parent_id != msg_id:
                continue
            if msg.channel == "shell":
                reply = msg
            elif msg.msg_type == "stream" and msg.content["name"] == "stdout":
                now = time.perf_counter()
                got.extend((now, int(line)) for line in msg.content["text"].split())
            elif msg.msg_type == "stream" and msg.content["text"].startswith("[jkctl]"):
                notices += 1
            elif msg.msg_type == "status" and msg.content["execution_state"] == "idle":
                idle = True
    numbers = [n for _, n in got]
    gap = max((b[0] - a[0] for a, b in itertools.pairwise(got)), default=0.0)
    return {
        "lines": lines,
        "received": len(set(numbers)),
        "lost": lines - len(set(numbers)),
        "duplicates": len(numbers) - len(set(numbers)),
        "in_order": numbers == sorted(numbers),
        "notices": notices,
        "reply": reply.content["status"],
        "client_gap_s": round(gap, 3),
        "drop_s": DROP_FOR,
    }


def wait_pods_ended(namespace: Namespace, kernel_ids: list[str], since: float) -> list[float]:
    """Seconds from ``since`` until each kernel's pod is no longer Running."""
    ended: dict[str, float] = {}
    deadline = since + LEASE * 3 + 60
    while len(ended) < len(kernel_ids):
        assert time.monotonic() < deadline, "pods outlived their lease"
        for pod in namespace.pods():
            kernel_id = pod.metadata.labels["jkctl.io/kernel-id"]
            if kernel_id not in ended and pod.status.phase != "Running":
                ended[kernel_id] = time.monotonic() - since
        time.sleep(0.1)
    return sorted(ended.values())


async def bench(root: Path, drops: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with run_kubesim(root / "kubesim") as kubesim:
        namespace = jkctl_namespace(kubesim, "bench-drop")
        daemon = kube_daemon(root / "drop", namespace)
        try:
            kernel_id = new_kernel(daemon)
            async with aiohttp.ClientSession() as http:
                client = await KernelClient.connect(
                    http, daemon.url, kernel_id, token=daemon.token, protocol="v1"
                )
                took = await reconnects(kubesim, client, drops)
                figures["reconnect_s"] = {
                    "drops": drops,
                    "median": round(statistics.median(took), 3),
                    "max": round(max(took), 3),
                }
                figures["stream_across_drop"] = await stream_across_drop(kubesim, client)
                await client.close()
        finally:
            await asyncio.to_thread(kubesim.wait_api_listening)
            daemon.stop(stop_kernels=True)

        namespace = jkctl_namespace(kubesim, "bench-lease")
        daemon = kube_daemon(root / "lease", namespace, JKCTL_LEASE_SECONDS=str(LEASE))
        kernel_ids = [new_kernel(daemon) for _ in range(3)]
        os.kill(daemon.process.pid, signal.SIGKILL)
        daemon.process.wait()
        killed = time.monotonic()
        ended = await asyncio.to_thread(wait_pods_ended, namespace, kernel_ids, killed)
        figures["abandoned_pod_s"] = {
            "lease": LEASE,
            "pods": len(ended),
            "after_kill_max": round(max(ended), 2),
            "after_lease_max": round(max(ended) - LEASE, 2),
        }
        # What a later daemon would clear away; here the namespace goes with kubesim.
    return figures


def print_table(figures: dict[str, Any]) -> None:
    reconnect, stream, pod = (
        figures["reconnect_s"],
        figures["stream_across_drop"],
        figures["abandoned_pod_s"],
    )
    rows = [
        (
            f"reconnect after a tunnel drop (median of {reconnect['drops']})",
            f"{reconnect['median'] * 1000:.0f} ms (max {reconnect['max'] * 1000:.0f} ms)",
        ),
        (
            f"iopub lost by a streaming cell across a {stream['drop_s']:.0f} s drop",
            f"{stream['lost']} of {stream['lines']} lines, {stream['duplicates']} twice, "
            f"{'in order' if stream['in_order'] else 'OUT OF ORDER'}, "
            f"{stream['notices']} notice(s) "
            f"(client saw a {stream['client_gap_s']:.1f} s gap; reply {stream['reply']})",
        ),
        (
            f"abandoned pod ended, lease {pod['lease']} s ({pod['pods']} pods)",
            f"{pod['after_kill_max']:.1f} s after kill -9, "
            f"{pod['after_lease_max']:.1f} s after the lease",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drops", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="3 drops")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jkctl-bench-survival-") as tmp:
        figures = asyncio.run(bench(Path(tmp), 3 if args.quick else args.drops))
    print_table(figures)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
