"""Print kubesim's pod start time: create -> Running for a pod running `sleep`, median of 20.

A script, not a test: `python -m tests.kubesim.bench_pod_start`. It starts
kubesim as the test fixture does (`python -m tests.kubesim` in its own
process group) and measures what a client of it sees: with the official
`kubernetes` client, from the start of the create request until a watch,
open on the namespace all along, delivers the pod with phase Running. That
covers the API server, the scheduler, the sandbox, the container shim and
the status write, which is what the suite waits for each time it starts a
pod. Pods start one after another; one unmeasured pod first warms the
connections and the node's image cache.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from kubernetes import client, config, watch

from tests.kubesim.fixture import run_kubesim

PODS = 20
NAMESPACE = "bench"


def sleep_pod(name: str) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "300"]}],
        },
    }


def measure(kubeconfig: Path) -> list[float]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        since = core.list_namespaced_pod(NAMESPACE).metadata.resource_version
        events = watch.Watch().stream(
            core.list_namespaced_pod, NAMESPACE, resource_version=since, timeout_seconds=120
        )
        timings = []
        try:
            for index in range(PODS + 1):
                name = f"sleep-{index}"
                started = time.perf_counter()
                core.create_namespaced_pod(NAMESPACE, sleep_pod(name))
                for event in events:  # replayed from `since`: nothing is missed
                    pod = event["object"]
                    if pod.metadata.name == name and pod.status.phase == "Running":
                        break
                else:
                    raise RuntimeError(f"the watch ended before {name} was Running")
                if index:  # the first one only warms up
                    timings.append(time.perf_counter() - started)
        finally:
            events.close()
            api.rest_client.pool_manager.clear()
    return timings


def main() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="kubesim-bench-") as workdir,
        run_kubesim(Path(workdir)) as cluster,
    ):
        timings = measure(cluster.kubeconfig)
    median, low, high = (1000 * t for t in (statistics.median(timings), min(timings), max(timings)))
    print(
        f"pod start through the API (create -> Running on a watch, {PODS} pods): "
        f"median {median:.0f} ms, min {low:.0f} ms, max {high:.0f} ms"
    )


if __name__ == "__main__":
    main()
