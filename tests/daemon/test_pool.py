"""The warm pool through the daemon on kubesim: real pods, waiting, invisible, handed out once.

A daemon of its own with ``--warm-pool python3=1`` and an 8-second lease
(renewed every 2 s), driven as a client would drive it. Pooled kernels are
pods in the namespace with their lease renewed, absent from ``GET
/api/kernels``; a launch without ``KERNEL_*`` variables gets one at once and
another takes its place, as does one whose only variable is the laptop
folder Jupyter Server sends; a launch with others starts a pod of its own.
When the daemon stops (leaving kernels running, as it does by default), or
is killed and started again, pooled pods are deleted and handed-out kernels
stay.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends.test_kubernetes_backend import lease_tokens
from tests.kube_users import Namespace, jkctl_namespace
from tests.kubesim.fixture import Kubesim
from tests.processes import RunningDaemon, start_kube_daemon

pytestmark = pytest.mark.kubesim


POOL_LABEL = "jkctl.io/pool"


def start_in(namespace: Namespace, root: Path, *extra: str) -> RunningDaemon:
    return start_kube_daemon(root, namespace, *extra, env_overrides={"JKCTL_LEASE_SECONDS": "8"})


@pytest.fixture
def pool_daemon(kubesim: Kubesim, tmp_path: Path) -> Iterator[RunningDaemon]:
    namespace = jkctl_namespace(kubesim, "pool")
    daemon = start_in(namespace, tmp_path, "--warm-pool", "python3=1")
    try:
        yield daemon
    finally:
        if daemon.process.poll() is None:
            daemon.stop(stop_kernels=True)
        kubesim.delete_namespace(namespace.name)


def wait_full(daemon: RunningDaemon) -> dict[str, Any]:
    status, pool = daemon.request("GET", "/jkctl/v1/pool?wait=full&timeout=60")
    assert status == 200, pool
    return pool  # type: ignore[no-any-return]


def kernel_pods(namespace: Namespace) -> dict[str, Any]:
    """Kernel id -> pod, for every kernel pod in the namespace."""
    return {pod.metadata.labels["jkctl.io/kernel-id"]: pod for pod in namespace.pods()}


def test_pooled_kernels_are_leased_pods_handed_out_once(pool_daemon: RunningDaemon) -> None:
    namespace: Namespace = pool_daemon.kube
    pool = wait_full(pool_daemon)
    assert pool == {
        "kernelspecs": {"python3": {"size": 1, "ready": 1, "starting": 0}},
        "full": True,
    }
    (pooled_id, pooled_pod) = next(iter(kernel_pods(namespace).items()))
    assert pool_daemon.request("GET", "/api/kernels") == (200, [])
    # A real pod, kept alive like any kernel's.
    asyncio.run(lease_tokens(namespace, pooled_pod.metadata.name, count=1))
    # Not reachable before it is handed out.
    assert pool_daemon.request("GET", f"/api/kernels/{pooled_id}")[0] == 404

    status, model = pool_daemon.request("POST", "/api/kernels", {"name": "python3"})
    assert status == 201, model
    assert model["id"] == pooled_id
    assert model["execution_state"] == "idle"
    assert model["connections"] == 0
    status, listed = pool_daemon.request("GET", "/api/kernels")
    assert [k["id"] for k in listed] == [pooled_id]

    # Replaced in the background by a new pod.
    wait_full(pool_daemon)
    pods = kernel_pods(namespace)
    assert len(pods) == 2
    (replacement,) = set(pods) - {pooled_id}

    # KERNEL_* variables change the pod: never served from the pool.
    status, own = pool_daemon.request(
        "POST", "/api/kernels", {"name": "python3", "env": {"KERNEL_USERNAME": "ada"}}
    )
    assert status == 201, own
    assert own["id"] not in (pooled_id, replacement)
    assert set(kernel_pods(namespace)) == {pooled_id, replacement, own["id"]}

    # A kernel a client had is shut down, never pooled again.
    assert pool_daemon.request("DELETE", f"/api/kernels/{pooled_id}")[0] == 204
    status, again = pool_daemon.request("POST", "/api/kernels", {"name": "python3"})
    assert status == 201
    assert again["id"] == replacement

    # The daemon stops and leaves kernels running, but not pooled ones.
    wait_full(pool_daemon)
    (pooled_now,) = set(kernel_pods(namespace)) - {own["id"], replacement}
    pool_daemon.stop()
    namespace.wait_empty(f"jkctl.io/kernel-id={pooled_now}")
    assert set(kernel_pods(namespace)) == {own["id"], replacement}


def test_a_killed_daemons_pool_is_cleared_and_its_handed_out_kernel_kept(
    kubesim: Kubesim, tmp_path: Path
) -> None:
    namespace = jkctl_namespace(kubesim, "pool")
    daemon = start_in(namespace, tmp_path, "--warm-pool", "python3=1")
    try:
        wait_full(daemon)
        (pooled_id,) = kernel_pods(namespace)
        assert namespace.pod_of(pooled_id).metadata.labels[POOL_LABEL] == "waiting"
        # A launch as Jupyter Server's GatewayClient makes it, with the notebook's folder.
        status, model = daemon.request(
            "POST", "/api/kernels", {"name": "python3", "env": {"KERNEL_WORKING_DIR": "/home/ada"}}
        )
        assert status == 201, model
        assert model["id"] == pooled_id
        assert POOL_LABEL not in namespace.pod_of(pooled_id).metadata.labels
        wait_full(daemon)
        (waiting,) = set(kernel_pods(namespace)) - {pooled_id}

        os.kill(daemon.process.pid, signal.SIGKILL)
        daemon.process.wait(timeout=30)
        assert daemon.process.stdout is not None
        daemon.process.stdout.close()
        # Read from the cluster: the handed-out kernel, not the one waiting in the pool.
        listed = subprocess.run(
            [
                *(sys.executable, "-m", "jkctl", "kernels", "list", "-o", "json"),
                *("--kubeconfig", str(namespace.kubeconfig), "-n", namespace.name),
            ],
            capture_output=True,
            text=True,
            env=daemon.env,
            timeout=60,
            check=True,
        )
        assert [row["id"] for row in json.loads(listed.stdout)["kernels"]] == [pooled_id]

        daemon = start_in(namespace, tmp_path)
        namespace.wait_empty(f"jkctl.io/kernel-id={waiting}")
        assert [kernel["id"] for kernel in daemon.request("GET", "/api/kernels")[1]] == [pooled_id]
    finally:
        if daemon.process.poll() is None:
            daemon.stop(stop_kernels=True)
        kubesim.delete_namespace(namespace.name)
