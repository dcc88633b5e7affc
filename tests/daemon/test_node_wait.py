"""Clusters that add nodes on demand: with ``--node-wait``, a kernel no node fits waits
for one, shown as pending, and starts when a node can take it; without one coming,
it fails when the wait is over, saying so.

kubesim has no autoscaler; cordoning its CPU node (``spec.unschedulable``) makes a
kernel fit nowhere, and uncordoning it is the node "being added".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.kube_users import jkctl_namespace
from tests.kubesim.conftest import api_client
from tests.kubesim.fixture import Kubesim
from tests.processes import RunningDaemon, start_kube_daemon

pytestmark = pytest.mark.kubesim

CPU_NODE = "kubesim-cpu"
DEADLINE = 60.0


def cordon(kubesim: Kubesim, unschedulable: bool) -> None:
    with api_client(kubesim.kubeconfig) as api:
        client.CoreV1Api(api).patch_node(CPU_NODE, {"spec": {"unschedulable": unschedulable}})


@pytest.fixture
def cordoned(kubesim: Kubesim) -> Iterator[None]:
    cordon(kubesim, True)
    try:
        yield
    finally:
        cordon(kubesim, False)


def daemon_waiting(kubesim: Kubesim, root: Path, wait: str) -> Iterator[RunningDaemon]:
    namespace = jkctl_namespace(kubesim, "nodewait")
    daemon = start_kube_daemon(root, namespace, "--node-wait", wait)
    try:
        yield daemon
    finally:
        daemon.stop(stop_kernels=True)
        kubesim.delete_namespace(namespace.name)


@pytest.fixture
def patient(kubesim: Kubesim, tmp_path: Path) -> Iterator[RunningDaemon]:
    yield from daemon_waiting(kubesim, tmp_path, "2m")


@pytest.fixture
def impatient(kubesim: Kubesim, tmp_path: Path) -> Iterator[RunningDaemon]:
    yield from daemon_waiting(kubesim, tmp_path, "1s")


def rows(daemon: RunningDaemon) -> list[dict[str, Any]]:
    status, listing = daemon.request("GET", "/jkctl/v1/kernels")
    assert status == 200, listing
    return list(listing["kernels"])


def test_a_kernel_waits_for_a_node_and_starts_on_it(
    kubesim: Kubesim, patient: RunningDaemon, cordoned: None
) -> None:
    answer: list[tuple[int, Any]] = []
    launch = threading.Thread(
        target=lambda: answer.append(patient.request("POST", "/api/kernels", {"name": "python3"}))
    )
    launch.start()
    deadline = time.monotonic() + DEADLINE
    while not any("for a node to be added" in str(row) for row in rows(patient)):
        assert launch.is_alive(), answer
        assert time.monotonic() < deadline, rows(patient)
        time.sleep(0.1)
    (row,) = rows(patient)
    assert "waiting up to 2m" in str(row)
    assert "node(s) were unschedulable" in str(row)

    cordon(kubesim, False)  # a node comes
    launch.join(DEADLINE)
    ((status, model),) = answer
    assert status == 201, model
    assert model["execution_state"] == "idle"


def test_without_a_node_coming_the_start_fails_when_the_wait_is_over(
    impatient: RunningDaemon, cordoned: None
) -> None:
    started = time.monotonic()
    status, error = impatient.request("POST", "/api/kernels", {"name": "python3"})
    took = time.monotonic() - started
    assert status == 500, error
    assert "Kubernetes cannot schedule its pod" in error["message"]
    assert error["message"].endswith("No node was added for it within 1s.")
    assert took >= 1.0
    assert impatient.kube.leftovers() == []
