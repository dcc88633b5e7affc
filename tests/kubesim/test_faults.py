"""Each API fault's effect, seen by real clients: refuse, delay, restart, close port-forwards."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

import pytest
from kubernetes import client
from urllib3 import HTTPResponse
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from tests.kubesim.conftest import InProcess, api_client
from tests.kubesim.fixture import Kubesim
from tests.kubesim.test_streams import forwarding, receive_line, running_pod

pytestmark = pytest.mark.kubesim


def api_port(server: str) -> int:
    port = urlparse(server).port
    assert port is not None
    return port


def connect(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_refuse_api_refuses_connections_then_reopens_on_the_same_port(sim: InProcess) -> None:
    port = api_port(sim.handle.server)
    connect(port)
    sim.handle.refuse_api(1.0)
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    api = sim.cluster.api
    sim.wait_until(lambda: api.listening, api.listening_changed)
    connect(port)
    with api_client(sim.handle.kubeconfig) as admin:
        assert client.CoreV1Api(admin).read_namespace("default").metadata.name == "default"


def assert_cut(response: HTTPResponse) -> None:
    """The streamed response ends (cleanly or not) instead of running into its read timeout."""
    try:
        while response.readline():
            pass
    except ReadTimeoutError:
        pytest.fail("the stream stayed open")
    except (ProtocolError, OSError):
        pass  # cut mid-stream, as a dropped connection is


def test_refuse_api_cuts_open_watches(sim: InProcess, sim_admin: client.ApiClient) -> None:
    core = client.CoreV1Api(sim_admin)
    response = core.list_namespace(watch=True, _preload_content=False, _request_timeout=(5, 10))
    try:
        assert response.readline()  # an ADDED event: the watch is open
        sim.handle.refuse_api(0.5)
        assert_cut(response)
    finally:
        response.release_conn()


def test_delay_api_holds_each_request(sim: InProcess, sim_admin: client.ApiClient) -> None:
    core = client.CoreV1Api(sim_admin)
    core.read_namespace("default")  # warm: TLS and the connection pool
    sim.handle.delay_api(1.0)
    started = time.monotonic()
    core.read_namespace("default")
    assert time.monotonic() - started >= 0.95
    # The window has passed: back to normal speed.
    started = time.monotonic()
    core.read_namespace("default")
    assert time.monotonic() - started < 0.9


def test_restart_api_ends_watches_and_streams_and_keeps_serving(
    sim: InProcess, sim_admin: client.ApiClient
) -> None:
    core = client.CoreV1Api(sim_admin)
    namespace = sim.handle.create_namespace("restart")
    running_pod(core, namespace, "kernel")
    events = core.list_namespaced_pod(
        namespace, watch=True, _preload_content=False, _request_timeout=(5, 10)
    )
    try:
        assert events.readline()  # ADDED kernel: the watch is open
        with forwarding(core, namespace, "kernel", "5555") as forward:
            sock = forward.socket(5555)
            sock.sendall(b"ping\n")
            assert receive_line(sock) == b"ping\n"
            sim.handle.restart_api()
            assert receive_line(sock) == b""  # the port-forward is gone
            assert_cut(events)
    finally:
        events.release_conn()
    # Same port, new connections, same state.
    assert [p.metadata.name for p in core.list_namespaced_pod(namespace).items] == ["kernel"]
    sim.wait_until(lambda: sim.kubelet.open_connections == 0, sim.kubelet.changed)


def test_close_portforwards_closes_the_websocket_and_the_pod_side(
    sim: InProcess, sim_admin: client.ApiClient
) -> None:
    core = client.CoreV1Api(sim_admin)
    namespace = sim.handle.create_namespace("close")
    running_pod(core, namespace, "kernel")
    with forwarding(core, namespace, "kernel", "5555") as forward:
        sock = forward.socket(5555)
        sock.sendall(b"hello\n")
        assert receive_line(sock) == b"hello\n"
        assert sim.handle.close_portforwards() == 1
        assert receive_line(sock) == b""
        sim.wait_until(lambda: sim.kubelet.open_connections == 0, sim.kubelet.changed)
    # The API itself is untouched.
    assert core.read_namespaced_pod("kernel", namespace).metadata.name == "kernel"
    assert sim.handle.close_portforwards() == 0


def test_restart_of_the_session_cluster_keeps_its_port(kubesim: Kubesim) -> None:
    with api_client(kubesim.kubeconfig) as admin:
        core = client.CoreV1Api(admin)
        before = core.list_namespace().metadata.resource_version
        kubesim.restart_api()
        after = core.list_namespace().metadata.resource_version  # a fresh connection, same URL
        assert int(after) >= int(before)
