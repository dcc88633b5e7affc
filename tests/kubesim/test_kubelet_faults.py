"""The faults a test can inject through the kubelet, and what each one does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kubesim import resources
from tests.kubesim.kubelet import PortForwardError
from tests.kubesim.kubelet_fixtures import (
    Cluster,
    cluster,
    pid_alive,
    running,
    scheduling,
    sh,
    wait_for,
    wait_for_log,
)
from tests.kubesim.store import Obj

__all__ = ["cluster"]


async def test_kill_container_restarts_it(cluster: Cluster) -> None:
    cluster.create_pod({"containers": [sh("sleep 60")]}, name="victim")
    await running(cluster, "victim")
    await cluster.kubelet.kill_container("default", "victim")

    def restarted(pod: Obj | None) -> bool:
        status = (pod or {}).get("status", {}).get("containerStatuses", [{}])[0]
        return status.get("restartCount") == 1 and "running" in status.get("state", {})

    pod = await wait_for(cluster.store, resources.PODS, "default", "victim", restarted)
    last = pod and pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert last and (last["exitCode"], last["reason"]) == (137, "Error")


async def test_lose_pod(cluster: Cluster) -> None:
    cluster.create_pod(
        {"containers": [sh("sleep 60")], "terminationGracePeriodSeconds": 60}, name="lost"
    )
    await running(cluster, "lost")
    pid = cluster.kubelet._worker("default", "lost").runners["main"].process.pid  # type: ignore[union-attr]
    assert pid is not None
    await cluster.kubelet.lose_pod("default", "lost")
    assert cluster.store.try_get(resources.PODS, "default", "lost") is None
    assert not pid_alive(pid)


async def test_node_not_ready_is_avoided(cluster: Cluster) -> None:
    cluster.kubelet.set_node_ready("kubesim-cpu", False)
    node = cluster.store.get(resources.NODES, None, "kubesim-cpu")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
    cluster.create_pod({"containers": [sh("sleep 30")]}, name="waits")
    unreachable = scheduling("untolerated taint {node.kubernetes.io/unreachable: }")
    pod = await wait_for(cluster.store, resources.PODS, "default", "waits", unreachable)
    assert pod and "nodeName" not in pod["spec"]
    cluster.kubelet.set_node_ready("kubesim-cpu", True)
    assert (await running(cluster, "waits"))["spec"]["nodeName"] == "kubesim-cpu"


async def test_port_forward_errors(cluster: Cluster) -> None:
    cluster.create_pod({"containers": [sh("sleep 30")]}, name="quiet")
    pod = await running(cluster, "quiet")
    sandbox = pod["metadata"]["uid"].replace("-", "")
    with pytest.raises(PortForwardError) as raised:
        await cluster.kubelet.open_port("default", "quiet", 8888)
    assert str(raised.value).startswith(
        f"error forwarding port 8888 to pod {sandbox}, uid : failed to execute portforward"
    )
    assert "IPv4: dial tcp4 127.0.0.1:8888: connect: connection refused" in str(raised.value)
    with pytest.raises(PortForwardError):
        await cluster.kubelet.open_port("default", "nothere", 8888)


async def test_shutdown_leaves_no_process(cluster: Cluster) -> None:
    for name in ("a", "b"):
        cluster.create_pod({"containers": [sh("sleep 60 & echo up; sleep 60")]}, name=name)
    pids = []
    for name in ("a", "b"):
        await wait_for_log(cluster, name, b"up\n")  # the background sleep exists
        worker = cluster.kubelet._worker("default", name)
        assert worker is not None and worker.sandbox is not None
        runner = worker.runners["main"]
        assert runner.process is not None and runner.process.pid is not None
        pids += [worker.sandbox.pid, runner.process.pid, runner.process.shim.pid]
    children = children_of(pids)
    assert len(children) >= 2 * 2  # each shim's container, each container's background sleep
    await cluster.kubelet.shutdown()
    assert [pid for pid in pids + children if pid_alive(pid)] == []


def children_of(pids: list[int]) -> list[int]:
    return [
        int(p)
        for pid in pids
        for p in (Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    ]
