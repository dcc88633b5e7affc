"""Acceptance: each fault command, given through the fixture's handle, against the real kubelet.

Every test runs on the session cluster (its xdist worker's), through the
official client, on pods the real kubelet runs: an echo server on the pod's
127.0.0.1:8080 stands in for a kernel. A fault that lasts (refused API,
NotReady node) is over before the test ends, so the next test on the
cluster finds it whole. The echo server serves one connection at a time, so
a new forward that gets answered shows that the pod's side of an old one
was closed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3 import HTTPResponse
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from tests.kubesim.fixture import POD_UID_ENV, Kubesim, exited, pod_processes
from tests.kubesim.test_streams import forwarding, receive_line
from tests.kubesim.watching import wait_for, wait_for_event, wait_for_log, wait_for_pod

pytestmark = pytest.mark.kubesim

ECHO = """
import socket
server = socket.create_server(("127.0.0.1", 8080))
print("listening", flush=True)
while True:
    connection, _ = server.accept()
    with connection:
        while data := connection.recv(65536):
            connection.sendall(data)
"""


def echo_pod(
    core: client.CoreV1Api, namespace: str, name: str = "echo", **spec: Any
) -> client.V1Pod:
    """A pod echoing on its 127.0.0.1:8080, once it listens."""
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "terminationGracePeriodSeconds": 1,  # pid 1 ignores SIGTERM: do not wait 30 s
                "containers": [
                    {
                        "name": "echo",
                        "image": "python:3.12-slim",
                        "command": ["python", "-c", ECHO],
                        "env": [POD_UID_ENV],
                    }
                ],
                **spec,
            },
        },
    )
    wait_for_log(core, namespace, name, "listening")
    pod: client.V1Pod = core.read_namespaced_pod(name, namespace)
    return pod


def echoes(forward: Any, text: bytes) -> bool:
    sock = forward.socket(8080)
    sock.sendall(text)
    return receive_line(sock) == text


@pytest.fixture
def core(admin: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(admin)


@contextlib.contextmanager
def pidfds(pids: list[int]) -> Iterator[list[int]]:
    fds = [os.pidfd_open(pid) for pid in pids]
    try:
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def api_port(kubesim: Kubesim) -> int:
    port = urlparse(kubesim.server).port
    assert port is not None
    return port


def assert_cut(response: HTTPResponse) -> None:
    """The streamed response ends (cleanly or not) instead of running into its read timeout."""
    try:
        while response.readline():
            pass
    except ReadTimeoutError:
        pytest.fail("the stream stayed open")
    except (ProtocolError, OSError):
        pass  # cut mid-stream, as a dropped connection is


def test_close_portforwards_breaks_the_open_forward_and_a_new_one_works(
    kubesim: Kubesim, core: client.CoreV1Api, kube_namespace: str
) -> None:
    echo_pod(core, kube_namespace)
    with forwarding(core, kube_namespace, "echo", "8080") as forward:
        assert echoes(forward, b"before\n")
        assert kubesim.close_portforwards() >= 1
        assert receive_line(forward.socket(8080)) == b""
    # The echo server serves one connection at a time: that it answers a new
    # forward shows the pod's side of the old one was closed too.
    with forwarding(core, kube_namespace, "echo", "8080") as forward:
        assert echoes(forward, b"after\n")


def test_refuse_api_for_n_seconds_cuts_watches_then_listens_on_the_same_port(
    kubesim: Kubesim, core: client.CoreV1Api
) -> None:
    events = core.list_namespace(watch=True, _preload_content=False, _request_timeout=(5, 20))
    try:
        assert events.readline()  # an ADDED event: the watch is open
        started = time.monotonic()
        kubesim.refuse_api(1.0)
        assert_cut(events)
    finally:
        events.release_conn()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", api_port(kubesim)), timeout=5).close()
    kubesim.wait_api_listening()
    assert time.monotonic() - started >= 1.0
    assert core.read_namespace("default").metadata.name == "default"  # same URL, new connection


def test_delay_api_holds_each_request_for_n_seconds(
    kubesim: Kubesim, core: client.CoreV1Api
) -> None:
    core.read_namespace("default")  # warm: TLS and the connection pool
    kubesim.delay_api(1.0)
    started = time.monotonic()
    core.read_namespace("default")
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()  # the window has passed: not held again
    core.read_namespace("default")
    assert time.monotonic() - started < 1.0


def test_restart_api_ends_watches_and_streams_but_objects_and_pods_survive(
    kubesim: Kubesim, core: client.CoreV1Api, kube_namespace: str
) -> None:
    pod = echo_pod(core, kube_namespace)
    (echo_pid,) = pod_processes(kubesim, pod.metadata.uid)
    events = core.list_namespaced_pod(
        kube_namespace, watch=True, _preload_content=False, _request_timeout=(5, 20)
    )
    with pidfds([echo_pid]) as (echo_fd,):
        try:
            assert events.readline()  # ADDED echo: the watch is open
            with forwarding(core, kube_namespace, "echo", "8080") as forward:
                assert echoes(forward, b"ping\n")
                kubesim.restart_api()
                assert receive_line(forward.socket(8080)) == b""
                assert_cut(events)
        finally:
            events.release_conn()
        after = core.read_namespaced_pod("echo", kube_namespace)
        assert after.metadata.uid == pod.metadata.uid
        assert after.status.phase == "Running"
        assert after.status.container_statuses[0].restart_count == 0
        assert not exited(echo_fd)
        with forwarding(core, kube_namespace, "echo", "8080") as forward:
            assert echoes(forward, b"pong\n")


def test_kill_container_restarts_it_after_exit_code_137(
    kubesim: Kubesim, core: client.CoreV1Api, kube_namespace: str
) -> None:
    pod = echo_pod(core, kube_namespace)
    kubesim.kill_container(kube_namespace, "echo")

    def restarted(kind: str, pod: client.V1Pod) -> bool:
        (status,) = pod.status.container_statuses
        return status.restart_count == 1 and status.state.running is not None

    _, after = wait_for_pod(
        core, kube_namespace, "echo", restarted, resource_version=pod.metadata.resource_version
    )
    last = after.status.container_statuses[0].last_state.terminated
    assert (last.exit_code, last.reason) == (137, "Error")
    assert after.status.container_statuses[0].container_id != last.container_id


def test_lose_pod_removes_the_object_and_the_processes(
    kubesim: Kubesim, core: client.CoreV1Api, kube_namespace: str
) -> None:
    pod = echo_pod(core, kube_namespace, terminationGracePeriodSeconds=60)
    processes = pod_processes(kubesim, pod.metadata.uid)
    assert processes
    with pidfds(processes) as fds:
        kubesim.lose_pod(kube_namespace, "echo")
        assert all(exited(fd) for fd in fds)  # no grace: killed before the call returned
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod("echo", kube_namespace)
    assert raised.value.status == 404
    kind, _ = wait_for_pod(
        core,
        kube_namespace,
        "echo",
        lambda kind, _: kind == "DELETED",
        resource_version=pod.metadata.resource_version,
    )
    assert kind == "DELETED"


def test_a_not_ready_node_gets_no_new_pods(
    kubesim: Kubesim, core: client.CoreV1Api, kube_namespace: str
) -> None:
    node = "kubesim-cpu"
    kubesim.set_node_ready(node, False)
    try:
        _, shown = wait_for(
            core.list_node,
            field_selector=f"metadata.name={node}",
            until=lambda _, n: any(
                c.type == "Ready" and c.status == "Unknown" for c in n.status.conditions
            ),
        )
        assert "node.kubernetes.io/unreachable" in [t.key for t in shown.spec.taints]
        # Schedulable on both nodes but for readiness: it goes to the other one.
        gpu_toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        echo_pod(core, kube_namespace, "tolerant", tolerations=[gpu_toleration])
        assert core.read_namespaced_pod("tolerant", kube_namespace).spec.node_name == "kubesim-gpu"
        # Schedulable only on the not-ready node: it waits.
        core.create_namespaced_pod(
            kube_namespace,
            {
                "metadata": {"name": "waits"},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {"name": "c", "image": "busybox:1.36", "command": ["sleep", "60"]}
                    ],
                },
            },
        )
        failed = wait_for_event(core, kube_namespace, "waits", "FailedScheduling")
        assert "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }" in (
            failed.message
        )
        assert core.read_namespaced_pod("waits", kube_namespace).spec.node_name is None
    finally:
        kubesim.set_node_ready(node, True)
    wait_for_pod(core, kube_namespace, "waits", lambda _, p: p.spec.node_name == node)
    wait_for(
        core.list_node,
        field_selector=f"metadata.name={node}",
        until=lambda _, n: any(
            c.type == "Ready" and c.status == "True" for c in n.status.conditions
        ),
    )
