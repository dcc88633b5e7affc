"""Kernel lifecycle through the daemon: interrupt, restart, shutdown, death, failed starts."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.kernel_client import KernelClient
from tests.processes import RunningDaemon


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def fresh_kernel(daemon: RunningDaemon) -> Iterator[str]:
    status, model = daemon.request("POST", "/api/kernels", {"name": "python3"})
    assert status == 201, model
    yield model["id"]
    daemon.request("DELETE", f"/api/kernels/{model['id']}")


def kernel_ids(daemon: RunningDaemon) -> set[str]:
    status, kernels = daemon.request("GET", "/api/kernels")
    assert status == 200
    return {kernel["id"] for kernel in kernels}


async def kernel_pid(client: KernelClient) -> int:
    return int((await client.execute("import os; print(os.getpid())")).stdout)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("spec", ["python3", "signal-python"])
async def test_interrupt_stops_a_sleeping_cell(
    http: aiohttp.ClientSession, daemon: RunningDaemon, spec: str
) -> None:
    status, model = daemon.request("POST", "/api/kernels", {"name": spec})
    assert status == 201, model
    client = await KernelClient.connect(
        http, daemon.url, model["id"], token=daemon.token, protocol="v1"
    )
    code = "import time; print('sleeping', flush=True); time.sleep(60)"
    msg_id = await client.send("shell", "execute_request", {"code": code, "silent": False})
    # Interrupt once the cell runs: a signal landing before that would hit the
    # kernel's own message handling, which no client can rely on.
    seen = await client.receive_until(lambda m: m.msg_type == "stream")
    client.pending.extend(seen)
    started = time.monotonic()
    status, _ = daemon.request("POST", f"/api/kernels/{model['id']}/interrupt")
    assert status == 204
    result = await client.collect(msg_id)
    assert time.monotonic() - started < 10
    assert result.reply.content["status"] == "error"
    assert result.reply.content["ename"] == "KeyboardInterrupt"
    await client.close()
    daemon.request("DELETE", f"/api/kernels/{model['id']}")


async def test_restart_gives_a_fresh_kernel_under_the_same_id(
    http: aiohttp.ClientSession, daemon: RunningDaemon, fresh_kernel: str
) -> None:
    client = await KernelClient.connect(http, daemon.url, fresh_kernel, token=daemon.token)
    assert (await client.execute("x = 41")).reply.content["status"] == "ok"
    old_pid = await kernel_pid(client)
    pod = daemon.kube.pod_of(fresh_kernel) if daemon.kube else None

    status, model = daemon.request("POST", f"/api/kernels/{fresh_kernel}/restart")
    assert status == 200, model
    assert model["id"] == fresh_kernel
    assert model["execution_state"] == "idle"
    # The same websocket carries on; it was told the kernel restarted.
    seen = await client.receive_until(
        lambda m: m.msg_type == "status" and m.content["execution_state"] == "restarting"
    )
    assert seen
    result = await client.execute("x")
    assert result.reply.content["ename"] == "NameError"
    new_pid = await kernel_pid(client)
    if pod is None:
        assert new_pid != old_pid
        assert not process_exists(old_pid)
    elif (after := daemon.kube.pod_of(fresh_kernel)).metadata.uid == pod.metadata.uid:
        assert new_pid != old_pid  # in place: a new kernel process in the same pod
    else:
        # The old process did not exit cleanly (ipykernel can abort on its way out):
        # the daemon replaced the pod, under the same kernel id.
        assert after.metadata.annotations["jkctl.io/generation"] == "1"
    await client.close()


async def test_shutdown_stops_the_process_and_tells_clients(
    http: aiohttp.ClientSession, daemon: RunningDaemon, fresh_kernel: str
) -> None:
    client = await KernelClient.connect(http, daemon.url, fresh_kernel, token=daemon.token)
    pid = await kernel_pid(client)
    status, _ = daemon.request("DELETE", f"/api/kernels/{fresh_kernel}")
    assert status == 204
    assert daemon.kernel_gone(fresh_kernel, pid)
    assert fresh_kernel not in kernel_ids(daemon)
    seen = await client.receive_until(
        lambda m: m.msg_type == "status" and m.content["execution_state"] == "dead"
    )
    assert seen[-1].channel == "iopub"
    with pytest.raises(ConnectionError):
        await client.receive()
    status, _ = daemon.request("GET", f"/api/kernels/{fresh_kernel}")
    assert status == 404


async def test_a_kernel_that_dies_shows_as_dead_and_leaves_the_list(
    http: aiohttp.ClientSession, daemon: RunningDaemon, fresh_kernel: str
) -> None:
    client = await KernelClient.connect(
        http, daemon.url, fresh_kernel, token=daemon.token, protocol="v1"
    )
    await client.send(
        "shell", "execute_request", {"code": "import os; os._exit(7)", "silent": False}
    )
    seen = await client.receive_until(
        lambda m: m.msg_type == "status" and m.content["execution_state"] == "dead"
    )
    assert seen[-1].channel == "iopub"
    with pytest.raises(ConnectionError):
        await client.receive()
    assert fresh_kernel not in kernel_ids(daemon)


def test_a_kernel_that_cannot_start_fails_fast_with_its_reason(daemon: RunningDaemon) -> None:
    before = kernel_ids(daemon)
    started = time.monotonic()
    status, error = daemon.request("POST", "/api/kernels", {"name": "crashes"})
    assert time.monotonic() - started < 10
    assert status == 500
    assert error["reference"] == "kernel-start-failed"
    assert "exited with code 3" in error["message"]
    assert "boom: no kernel here" in error["message"]
    assert error["reason"]
    assert kernel_ids(daemon) == before
