"""Issue 3's acceptance, on both backends: a real Jupyter Server uses the daemon as its gateway.

The test drives Jupyter Server's own REST and websocket API as JupyterLab
would (Jupyter Server talks to the daemon with GatewayClient and the legacy
websocket protocol), so every message crosses: test -> Jupyter Server ->
daemon -> kernel and back.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.kernel_client import KernelClient
from tests.processes import RunningDaemon, RunningJupyterServer


class JupyterServerClient:
    def __init__(self, http: aiohttp.ClientSession, server: RunningJupyterServer) -> None:
        self.http = http
        self.server = server
        self.headers = {"Authorization": f"token {server.token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(
            method, f"http://localhost{path}", json=body, headers=self.headers
        ) as response:
            text = await response.text()
            return response.status, (await response.json()) if text else None

    async def channels(self, kernel_id: str) -> KernelClient:
        return await KernelClient.connect(
            self.http, "http://localhost", kernel_id, token=self.server.token
        )


@pytest.fixture
async def jupyter(gateway: RunningJupyterServer) -> AsyncIterator[JupyterServerClient]:
    connector = aiohttp.UnixConnector(path=str(gateway.socket_path))
    async with aiohttp.ClientSession(connector=connector) as http:
        yield JupyterServerClient(http, gateway)


async def test_kernelspecs_come_from_the_daemon(jupyter: JupyterServerClient) -> None:
    status, model = await jupyter.call("GET", "/api/kernelspecs")
    assert status == 200, model
    assert model["default"] == "python3"
    assert model["kernelspecs"]["python3"]["spec"]["display_name"] == "Python 3 (jkctl)"
    logo = model["kernelspecs"]["python3"]["resources"]["logo-64x64"]
    async with jupyter.http.get(f"http://localhost{logo}", headers=jupyter.headers) as response:
        assert response.status == 200
        assert (await response.read()).startswith(b"\x89PNG")


async def test_a_notebook_session_end_to_end(
    jupyter: JupyterServerClient, daemon: RunningDaemon
) -> None:
    status, session = await jupyter.call(
        "POST",
        "/api/sessions",
        {"path": "acceptance.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
    )
    assert status == 201, session
    kernel_id = session["kernel"]["id"]
    # The kernel Jupyter Server started is the daemon's.
    status, model = daemon.request("GET", f"/api/kernels/{kernel_id}")
    assert status == 200, model
    if daemon.kube is not None:  # it runs in a pod of the daemon's namespace
        assert daemon.kube.pod_of(kernel_id).status.phase == "Running"

    client = await jupyter.channels(kernel_id)

    result = await client.execute("print(6*7)")
    assert result.reply.content["status"] == "ok"
    assert result.stdout == "42\n"

    result = await client.execute("1/0")
    assert result.reply.content["ename"] == "ZeroDivisionError"
    (error,) = [m for m in result.iopub if m.msg_type == "error"]
    assert error.content["traceback"]

    msg_id = await client.send(
        "shell",
        "execute_request",
        {"code": "answer = input('2+2? ')\nprint('got', answer)", "allow_stdin": True},
    )
    seen = await client.receive_until(lambda m: m.msg_type == "input_request")
    client.pending.extend(m for m in seen[:-1] if m.parent_id == msg_id)
    await client.send("stdin", "input_reply", {"value": "4"}, parent=seen[-1].header)
    result = await client.collect(msg_id)
    assert result.stdout == "got 4\n"

    code = "import time; print('sleeping', flush=True); time.sleep(60)"
    msg_id = await client.send("shell", "execute_request", {"code": code})
    client.pending.extend(await client.receive_until(lambda m: m.msg_type == "stream"))
    status, _ = await jupyter.call("POST", f"/api/kernels/{kernel_id}/interrupt")
    assert status == 204
    result = await client.collect(msg_id)
    assert result.reply.content["ename"] == "KeyboardInterrupt"

    assert (await client.execute("x = 'before restart'")).reply.content["status"] == "ok"
    pid = int((await client.execute("import os; print(os.getpid())")).stdout)
    status, model = await jupyter.call("POST", f"/api/kernels/{kernel_id}/restart")
    assert status == 200, model
    result = await client.execute("x")
    assert result.reply.content["ename"] == "NameError"
    assert daemon.backend != "local" or _gone(pid)
    pid = int((await client.execute("import os; print(os.getpid())")).stdout)

    status, _ = await jupyter.call("DELETE", f"/api/sessions/{session['id']}")
    assert status == 204
    assert daemon.kernel_gone(kernel_id, pid)
    status, _ = daemon.request("GET", f"/api/kernels/{kernel_id}")
    assert status == 404
    await client.close()


async def test_start_errors_reach_the_user(jupyter: JupyterServerClient) -> None:
    # JupyterLab opens a notebook through the sessions API; Jupyter Server puts
    # the daemon's message and reason (GatewayClient reads both) into its error.
    status, error = await jupyter.call(
        "POST",
        "/api/sessions",
        {"path": "broken.ipynb", "type": "notebook", "kernel": {"name": "crashes"}},
    )
    assert status == 500
    assert "failed to start: The kernel" in error["message"]
    assert "exited with code 3" in error["message"]
    assert "boom: no kernel here" in error["message"]
    assert "See the daemon log" in error["message"]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
