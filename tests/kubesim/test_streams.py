"""pods/log and pods/portforward through the official client, against a fake kubelet."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import websocket
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.stream import portforward

from tests.kubesim.conftest import InProcess
from tests.kubesim.fake_kubelet import REFUSING_PORT

pytestmark = pytest.mark.kubesim


def running_pod(core: client.CoreV1Api, namespace: str, name: str, *containers: str) -> None:
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "containers": [{"name": c, "image": "python:3.11"} for c in containers or ("main",)]
            },
        },
    )
    core.create_namespaced_pod_binding(
        name,
        namespace,
        {"metadata": {"name": name}, "target": {"name": "kubesim-node-1"}},
        _preload_content=False,
    )


@contextlib.contextmanager
def forwarding(core: client.CoreV1Api, namespace: str, pod: str, ports: str) -> Iterator[Any]:
    """`kubernetes.stream.portforward`, cleaned up after.

    The client's proxy thread leaves its websocket socket open when the
    server closes first; wait for the thread, then close the socket.
    """
    before = set(threading.enumerate())
    forward = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace, ports=ports)
    proxies = [t for t in threading.enumerate() if t not in before and "port forward" in t.name]
    try:
        yield forward
    finally:
        forward.close()
        for thread in proxies:
            thread.join(10)
            assert not thread.is_alive(), "the port-forward proxy thread did not end"
        forward.websocket.shutdown()


def receive_line(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def test_port_forward_carries_bytes_both_ways_per_port(
    sim: InProcess, sim_admin: client.ApiClient
) -> None:
    core = client.CoreV1Api(sim_admin)
    namespace = sim.handle.create_namespace("pf")
    running_pod(core, namespace, "kernel")
    with forwarding(core, namespace, "kernel", "5555,6666") as forward:
        first, second = forward.socket(5555), forward.socket(6666)
        first.sendall(b"shell\n")
        second.sendall(b"iopub\n")
        assert receive_line(first) == b"shell\n"
        assert receive_line(second) == b"iopub\n"
        assert forward.error(5555) is None
        sim.wait_until(lambda: sim.kubelet.open_connections == 2, sim.kubelet.changed)
    # The client went away: the server closes the pod connections.
    sim.wait_until(lambda: sim.kubelet.open_connections == 0, sim.kubelet.changed)


def test_an_unreachable_port_reports_on_its_error_channel(
    sim: InProcess, sim_admin: client.ApiClient
) -> None:
    core = client.CoreV1Api(sim_admin)
    namespace = sim.handle.create_namespace("pf")
    running_pod(core, namespace, "kernel")
    with forwarding(core, namespace, "kernel", f"{REFUSING_PORT},7777") as forward:
        refused, fine = forward.socket(REFUSING_PORT), forward.socket(7777)
        assert receive_line(refused) == b""  # the client closes a port whose error channel spoke
        assert forward.error(REFUSING_PORT) == (
            f"failed to connect to localhost:{REFUSING_PORT} inside namespace of pod "
            f"{namespace}/kernel: dial tcp 127.0.0.1:{REFUSING_PORT}: connect: connection refused"
        )
        fine.sendall(b"still here\n")
        assert receive_line(fine) == b"still here\n"


def test_the_websocket_closes_when_the_pod_connection_does(
    sim: InProcess, sim_admin: client.ApiClient
) -> None:
    core = client.CoreV1Api(sim_admin)
    namespace = sim.handle.create_namespace("pf")
    running_pod(core, namespace, "kernel")
    with forwarding(core, namespace, "kernel", "5555") as forward:
        sock = forward.socket(5555)
        sock.sendall(b"close\n")  # the fake pod closes its end on this line
        assert receive_line(sock) == b""  # ... and the server closes the websocket
        api = sim.cluster.api
        sim.wait_until(lambda: api.open_portforwards == 0, api.portforwards_changed)
        sim.wait_until(lambda: sim.kubelet.open_connections == 0, sim.kubelet.changed)


def test_port_forward_of_a_missing_or_unscheduled_pod(
    sim: InProcess, sim_admin: client.ApiClient
) -> None:
    core = client.CoreV1Api(sim_admin)
    namespace = sim.handle.create_namespace("pf")
    core.create_namespaced_pod(
        namespace,
        {"metadata": {"name": "pending"}, "spec": {"containers": [{"name": "x", "image": "i"}]}},
    )
    token = sim_admin.configuration.api_key["BearerToken"]
    base = sim.handle.server.replace("https://", "wss://") + f"/api/v1/namespaces/{namespace}/pods"
    expected = {
        "absent": (404, 'pods "absent" not found'),
        "pending": (400, "pod pending does not have a host assigned"),
    }
    for pod, (status, message) in expected.items():
        with pytest.raises(websocket.WebSocketBadStatusException) as raised:
            websocket.create_connection(
                f"{base}/{pod}/portforward?ports=5555",
                header=[f"Authorization: {token}"],
                subprotocols=["v4.channel.k8s.io"],
                sslopt={"context": sim.cluster.certs.client_context()},
                timeout=10,
            )
        assert raised.value.status_code == status
        assert json.loads(raised.value.resp_body)["message"] == message


def test_logs(sim: InProcess, sim_admin: client.ApiClient) -> None:
    core = client.CoreV1Api(sim_admin)
    namespace = sim.handle.create_namespace("logs")
    running_pod(core, namespace, "one")
    assert (
        core.read_namespaced_pod_log("one", namespace) == "main line 1\nmain line 2\nmain line 3\n"
    )
    assert core.read_namespaced_pod_log("one", namespace, tail_lines=1) == "main line 3\n"
    running_pod(core, namespace, "two", "a", "b")
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod_log("two", namespace)
    assert raised.value.status == 400
    assert json.loads(raised.value.body)["message"] == (
        "a container name must be specified for pod two, choose one of: [a b]"
    )
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod_log("two", namespace, container="c")
    assert json.loads(raised.value.body)["message"] == "container c is not valid for pod two"
    assert core.read_namespaced_pod_log("two", namespace, container="b").startswith("b line 1\n")
    core.create_namespaced_pod(
        namespace,
        {"metadata": {"name": "pending"}, "spec": {"containers": [{"name": "x", "image": "i"}]}},
    )
    assert core.read_namespaced_pod_log("pending", namespace) == ""


def test_followed_logs_stream_until_the_client_leaves(
    sim: InProcess, sim_admin: client.ApiClient
) -> None:
    core = client.CoreV1Api(sim_admin)
    namespace = sim.handle.create_namespace("logs")
    running_pod(core, namespace, "one")
    response = core.read_namespaced_pod_log("one", namespace, follow=True, _preload_content=False)
    try:
        assert [response.readline() for _ in range(3)] == [
            b"main line 1\n",
            b"main line 2\n",
            b"main line 3\n",
        ]
        sim.wait_until(lambda: sim.kubelet.followers == 1, sim.kubelet.changed)
        sim.call(sim.kubelet.emit, b"later\n")
        assert response.readline() == b"later\n"
    finally:
        response.close()
        response.release_conn()
    sim.wait_until(lambda: sim.kubelet.followers == 0, sim.kubelet.changed)


def test_kubelet_faults_reach_the_kubelet(sim: InProcess) -> None:
    sim.handle.kill_container("ns", "pod", "main")
    sim.handle.lose_pod("ns", "pod")
    sim.handle.set_node_ready("kubesim-node-1", False)
    sim.handle.fail_images("broken:1", "broken:2")
    sim.handle.set_pull_delay(0.5)
    assert sim.kubelet.calls == [
        ("kill_container", ("ns", "pod", "main")),
        ("lose_pod", ("ns", "pod")),
        ("set_node_ready", ("kubesim-node-1", False)),
        ("fail_images", ("broken:1", "broken:2")),
        ("set_pull_delay", (0.5,)),
    ]
