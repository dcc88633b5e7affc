"""A real Jupyter kernel in a kubesim pod, reached only through open_port."""

from __future__ import annotations

import base64
import json
import secrets
import socket
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient

from tests.kubesim import resources
from tests.kubesim.kubelet_fixtures import Cluster, Relay, cluster, phase_is, pid_alive, wait_for

__all__ = ["cluster"]

CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
IN_POD_PORTS = dict(zip(CHANNELS, range(15001, 15006), strict=True))  # below the ephemeral range


def kernel_pod(cluster: Cluster, name: str) -> dict[str, Any]:
    key = secrets.token_hex(16)
    connection = {
        "ip": "127.0.0.1",
        "transport": "tcp",
        "key": key,
        "signature_scheme": "hmac-sha256",
        **IN_POD_PORTS,
    }
    cluster.store.create(
        resources.SECRETS,
        {
            "metadata": {"name": f"{name}-conn", "namespace": "default"},
            "data": {"connection.json": base64.b64encode(json.dumps(connection).encode()).decode()},
        },
    )
    cluster.create_pod(
        {
            "containers": [
                {
                    "name": "kernel",
                    "image": "quay.io/jupyter/base-notebook:2024-05-01",
                    "command": [
                        "python",
                        "-m",
                        "ipykernel_launcher",
                        "-f",
                        "/etc/jkctl/connection.json",
                    ],
                    "volumeMounts": [{"name": "conn", "mountPath": "/etc/jkctl", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "conn", "secret": {"secretName": f"{name}-conn"}}],
            "restartPolicy": "Never",
        },
        name=name,
    )
    return connection


async def talk_to_kernel(cluster: Cluster, name: str, connection: dict[str, Any]) -> None:
    relay = Relay(cluster.kubelet, "default", name)
    local = {channel: await relay.listen(port) for channel, port in IN_POD_PORTS.items()}
    client = AsyncKernelClient()
    client.load_connection_info({**connection, **local})
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        msg_id = client.kernel_info()
        reply = await client.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["msg_type"] == "kernel_info_reply"
        assert reply["content"]["status"] == "ok"
        results: list[str] = []

        def output(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "execute_result":
                results.append(msg["content"]["data"]["text/plain"])

        executed = await client.execute_interactive("1+1", timeout=30, output_hook=output)
        assert executed["content"]["status"] == "ok"
        assert results == ["2"]
    finally:
        client.stop_channels()
        await relay.close()


def nothing_listens_on_host(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


async def test_kernel_in_a_pod_through_open_port(cluster: Cluster) -> None:
    connection = kernel_pod(cluster, "kernel-a")
    await wait_for(cluster.store, resources.PODS, "default", "kernel-a", phase_is("Running"))
    await talk_to_kernel(cluster, "kernel-a", connection)
    assert all(nothing_listens_on_host(port) for port in IN_POD_PORTS.values())
    worker_pid = cluster.kubelet._worker("default", "kernel-a").runners["kernel"].process.pid  # type: ignore[union-attr]
    assert worker_pid and pid_alive(worker_pid)
    await cluster.delete_pod("kernel-a")
    assert (
        await wait_for(cluster.store, resources.PODS, "default", "kernel-a", lambda p: p is None)
        is None
    )
    assert not pid_alive(worker_pid)


async def test_two_kernels_with_the_same_ports(cluster: Cluster) -> None:
    first, second = kernel_pod(cluster, "kernel-1"), kernel_pod(cluster, "kernel-2")
    for name in ("kernel-1", "kernel-2"):
        await wait_for(cluster.store, resources.PODS, "default", name, phase_is("Running"))
    await talk_to_kernel(cluster, "kernel-1", first)
    await talk_to_kernel(cluster, "kernel-2", second)
    assert all(nothing_listens_on_host(port) for port in IN_POD_PORTS.values())
