"""Acceptance: Jupyter kernels in kubesim pods, driven only by clients nobody here wrote.

The official `kubernetes` client, with the kubeconfig kubesim writes,
creates a namespace, a Secret holding a Jupyter connection file and a pod
running `python -m ipykernel_launcher -f <that file>`; it watches the pod
to Running, reads its log and forwards the kernel's five ports over one
`pods/portforward` websocket (`kubernetes.stream.portforward`). Local
listeners joined to that port-forward (`bridge.py`) give `jupyter_client`
its addresses. All of it goes through the session cluster's API server and
real kubelet.

The in-pod ports are fixed in the connection file. The test holds the same
port numbers bound on the host's loopback while the kernels run, so a
kernel that was not in a network namespace of its own could not bind them,
and nothing on the host can be listening on them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from kubernetes import client

from tests.kubesim.bridge import Bridge
from tests.kubesim.conftest import api_client
from tests.kubesim.fixture import POD_UID_ENV, Kubesim, exited, pod_processes
from tests.kubesim.test_streams import forwarding
from tests.kubesim.watching import phase, wait_for_log, wait_for_pod

pytestmark = pytest.mark.kubesim

CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
CONNECTION_DIR = "/etc/jupyter-connection"


@pytest.fixture
def core(kubesim: Kubesim) -> Iterator[client.CoreV1Api]:
    with api_client(kubesim.kubeconfig) as api:
        yield client.CoreV1Api(api)


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    """A namespace made through the API, as a user of the cluster makes one."""
    name = core.create_namespace({"metadata": {"generateName": "kernels-"}}).metadata.name
    try:
        yield name
    finally:
        core.delete_namespace(name)


@pytest.fixture
def in_pod_ports() -> Iterator[dict[str, int]]:
    """Five port numbers, held bound (not listening) on the host's 127.0.0.1 meanwhile."""
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(socket.socket()) for _ in CHANNELS]
        for sock in held:
            sock.bind(("127.0.0.1", 0))
        yield {channel: sock.getsockname()[1] for channel, sock in zip(CHANNELS, held, strict=True)}


def create_kernel_pod(
    core: client.CoreV1Api, namespace: str, name: str, ports: dict[str, int]
) -> dict[str, Any]:
    """The Secret with the connection file, and the pod; returns the connection info."""
    connection = {
        "ip": "127.0.0.1",
        "transport": "tcp",
        "key": secrets.token_hex(16),
        "signature_scheme": "hmac-sha256",
        "kernel_name": "python3",
        **ports,
    }
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": f"{name}-connection"},
            "stringData": {"connection.json": json.dumps(connection)},
        },
    )
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": name, "labels": {"app": "kernel"}},
            "spec": {
                "restartPolicy": "Never",
                # The kernel is pid 1 and has no SIGTERM handler, so it ignores
                # SIGTERM (as in a real container): deletion waits out the grace.
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "kernel",
                        "image": "quay.io/jupyter/base-notebook:2024-05-01",
                        "command": [
                            "python",
                            "-m",
                            "ipykernel_launcher",
                            "-f",
                            f"{CONNECTION_DIR}/connection.json",
                        ],
                        "env": [
                            {"name": "PYTHONUNBUFFERED", "value": "1"},
                            POD_UID_ENV,
                        ],
                        "volumeMounts": [
                            {"name": "connection", "mountPath": CONNECTION_DIR, "readOnly": True}
                        ],
                    }
                ],
                "volumes": [{"name": "connection", "secret": {"secretName": f"{name}-connection"}}],
            },
        },
    )
    return connection


def talk_to_kernel(
    core: client.CoreV1Api, namespace: str, name: str, connection: dict[str, Any]
) -> None:
    """kernel_info and `1+1` through one port-forward websocket for the five ports."""
    ports = [connection[channel] for channel in CHANNELS]
    with (
        forwarding(core, namespace, name, ",".join(map(str, ports))) as forward,
        Bridge(forward, ports) as bridge,
    ):
        kernel = BlockingKernelClient()
        kernel.load_connection_info(
            {**connection, **{c: bridge.local[connection[c]] for c in CHANNELS}}
        )
        kernel.start_channels()
        try:
            kernel.wait_for_ready(timeout=60)
            msg_id = kernel.kernel_info()
            reply = kernel.get_shell_msg(timeout=30)
            assert reply["parent_header"]["msg_id"] == msg_id
            assert reply["msg_type"] == "kernel_info_reply"
            assert reply["content"]["status"] == "ok"
            results: list[str] = []

            def output(msg: dict[str, Any]) -> None:
                if msg["msg_type"] == "execute_result":
                    results.append(msg["content"]["data"]["text/plain"])

            executed = kernel.execute_interactive("1+1", timeout=30, output_hook=output)
            assert executed["content"]["status"] == "ok"
            assert results == ["2"]
        finally:
            kernel.stop_channels()


def wait_for_kernel(core: client.CoreV1Api, namespace: str, name: str) -> tuple[Any, str]:
    """The pod once Running, and its log once the kernel has bound its ports.

    ipykernel prints how to connect only after it has bound every socket, so
    the forwarded connections find it listening.
    """
    _, pod = wait_for_pod(core, namespace, name, phase("Running"))
    return pod, wait_for_log(core, namespace, name, f"--existing {CONNECTION_DIR}/connection.json")


def refused_on_host(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_kernel_in_a_pod_through_the_official_client(
    kubesim: Kubesim, core: client.CoreV1Api, namespace: str, in_pod_ports: dict[str, int]
) -> None:
    connection = create_kernel_pod(core, namespace, "kernel", in_pod_ports)
    pod, log = wait_for_kernel(core, namespace, "kernel")
    assert pod.status.container_statuses[0].state.running is not None
    assert "To connect another client to this kernel, use:" in log
    talk_to_kernel(core, namespace, "kernel", connection)
    assert all(refused_on_host(port) for port in in_pod_ports.values())

    (kernel_pid,) = pod_processes(kubesim, pod.metadata.uid)
    pidfd = os.pidfd_open(kernel_pid)
    try:
        core.delete_namespaced_pod("kernel", namespace)
        kind, _ = wait_for_pod(
            core,
            namespace,
            "kernel",
            lambda kind, _: kind == "DELETED",
            resource_version=pod.metadata.resource_version,
        )
        assert kind == "DELETED"
        # The kubelet removes the object only once the containers are gone.
        assert exited(pidfd)
    finally:
        os.close(pidfd)
    assert pod_processes(kubesim, pod.metadata.uid) == []


def test_two_kernels_with_the_same_ports_each_behind_its_own_port_forward(
    core: client.CoreV1Api, namespace: str, in_pod_ports: dict[str, int]
) -> None:
    first = create_kernel_pod(core, namespace, "kernel-1", in_pod_ports)
    second = create_kernel_pod(core, namespace, "kernel-2", in_pod_ports)
    assert first["key"] != second["key"]
    for name in ("kernel-1", "kernel-2"):
        wait_for_kernel(core, namespace, name)
    # Each kernel checks the signatures with its own key: a forward that
    # reached the other pod would get no reply.
    talk_to_kernel(core, namespace, "kernel-1", first)
    talk_to_kernel(core, namespace, "kernel-2", second)
    assert all(refused_on_host(port) for port in in_pod_ports.values())
