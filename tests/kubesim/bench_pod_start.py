"""Print kubesim's pod start time: create -> Running for a pod running `sleep`, median of 20.

A script, not a test: `python -m tests.kubesim.bench_pod_start`. It drives the
kubelet in-process on a Store (no HTTP), so it measures scheduling, the
sandbox, the container shim and the status write, which is what the suite
waits for every time it starts a pod.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from tests.kubesim import resources
from tests.kubesim.kubelet import Kubelet, KubeletConfig
from tests.kubesim.store import Store

PODS = 20


async def measure() -> list[float]:
    store = Store()
    store.create(resources.NAMESPACES, {"metadata": {"name": "default"}})
    with tempfile.TemporaryDirectory(prefix="kubesim-bench-") as state:
        kubelet = Kubelet(store, KubeletConfig(state_dir=Path(state)))
        async with asyncio.TaskGroup() as group:
            runner = group.create_task(kubelet.run())
            timings = []
            for index in range(PODS):
                name = f"bench-{index}"
                watch = store.watch(
                    resources.PODS, "default", field_selector=f"metadata.name={name}"
                )
                spec = {
                    "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "300"]}],
                    "terminationGracePeriodSeconds": 0,
                }
                started = time.perf_counter()
                store.create(resources.PODS, {"metadata": {"name": name}, "spec": spec})
                async with asyncio.timeout(30):
                    async for event in watch:
                        if (event.object.get("status") or {}).get("phase") == "Running":
                            break
                timings.append(time.perf_counter() - started)
                watch.close()
            runner.cancel()
    return timings


def main() -> None:
    timings = asyncio.run(measure())
    median, low, high = (
        value * 1000 for value in (statistics.median(timings), *sorted(timings)[::19])
    )
    print(
        f"pod start (create -> Running, {PODS} pods): "
        f"median {median:.0f} ms, min {low:.0f} ms, max {high:.0f} ms"
    )


if __name__ == "__main__":
    main()
