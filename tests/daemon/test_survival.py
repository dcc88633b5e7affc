"""Issue 4's survival cases: kernels in pods outlive what goes wrong around them, and
idle ones do not outlive their use.

Each case drives a real Kubernetes daemon on kubesim through its gateway API
and websockets (and, for a daemon restart, a Jupyter Server using it as its
gateway), breaks something with one of kubesim's fault commands, and checks
what the user would see. Every wait is for a condition, with a deadline.

Each test has a daemon (and a namespace) of its own: the faults are rough
on everything that runs at the time, and two cases kill the daemon.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes import client

from tests.daemon.test_gateway_server import JupyterServerClient
from tests.kernel_client import KernelClient, Message
from tests.kube_users import Namespace, jkctl_namespace
from tests.kubesim.conftest import api_client
from tests.kubesim.fixture import Kubesim
from tests.processes import RunningDaemon, start_jupyter_server, start_kube_daemon

pytestmark = pytest.mark.kubesim

#: Long enough for anything here to recover; a test that needs it has failed.
DEADLINE = 60.0


class Survivor:
    """A Kubernetes daemon in a namespace of its own, which a test may kill and start again."""

    def __init__(self, kubesim: Kubesim, root: Path, **env: str) -> None:
        self.kubesim = kubesim
        self.root = root
        self.namespace: Namespace = jkctl_namespace(kubesim, "survive")
        self._env = env
        self.daemon = self.start()

    def start(self) -> RunningDaemon:
        running = start_kube_daemon(self.root, self.namespace, env_overrides=self._env)
        self.daemon = running
        return running

    def kill(self) -> None:
        """``kill -9``: the daemon gets no chance to tidy up."""
        os.kill(self.daemon.process.pid, signal.SIGKILL)
        self.daemon.process.wait(timeout=30)
        assert self.daemon.process.stdout is not None
        self.daemon.process.stdout.close()

    def new_kernel(self) -> str:
        status, model = self.daemon.request("POST", "/api/kernels", {"name": "python3"})
        assert status == 201, model
        return str(model["id"])

    def kernel_ids(self) -> list[str]:
        status, kernels = self.daemon.request("GET", "/api/kernels")
        assert status == 200, kernels
        return [kernel["id"] for kernel in kernels]

    def drops(self, kernel_id: str) -> int:
        """How often the daemon noticed its connection to the kernel drop."""
        status, model = self.daemon.request("GET", f"/jkctl/v1/kernels/{kernel_id}?log_lines=0")
        assert status == 200, model
        return int(model["drops"])

    def pod(self, kernel_id: str) -> str:
        return str(self.namespace.pod_of(kernel_id).metadata.name)

    def close(self) -> None:
        self.kubesim.wait_api_listening()  # after a test that failed during an outage
        if self.daemon.process.poll() is None:
            self.daemon.stop(stop_kernels=True)
        self.namespace.wait_empty()


@pytest.fixture
def survivor(kubesim: Kubesim, tmp_path: Path) -> Iterator[Survivor]:
    running = Survivor(kubesim, tmp_path)
    yield running
    running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def connect(http: aiohttp.ClientSession, daemon: RunningDaemon, kernel_id: str) -> Any:
    return await KernelClient.connect(
        http, daemon.url, kernel_id, token=daemon.token, protocol="v1"
    )


async def eventually(condition: Callable[[], bool], what: str, *, within: float = DEADLINE) -> None:
    """Until ``condition()`` holds, checked every 50 ms; fails after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within:.0f} s: {what}")
        await asyncio.sleep(0.05)


def streaming_cell(lines: int, every: float) -> str:
    return (
        "import time\n"
        f"for i in range({lines}):\n"
        "    print(i, flush=True)\n"
        f"    time.sleep({every})\n"
    )


# -- daemon restart ------------------------------------------------------------------


async def test_a_killed_daemon_comes_back_to_its_kernels_and_their_state(
    survivor: Survivor, tmp_path: Path
) -> None:
    gateway = start_jupyter_server(tmp_path / "jupyter", survivor.daemon)
    connector = aiohttp.UnixConnector(path=str(gateway.socket_path))
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            jupyter = JupyterServerClient(http, gateway)
            status, session = await jupyter.call(
                "POST",
                "/api/sessions",
                {"path": "survive.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
            )
            assert status == 201, session
            kernel_id = session["kernel"]["id"]
            notebook = await jupyter.channels(kernel_id)
            assert (await notebook.execute("x = 42")).reply.content["status"] == "ok"
            url, pod = survivor.daemon.url, survivor.pod(kernel_id)

            survivor.kill()
            restarted = survivor.start()

            # The same URL (Jupyter Server keeps using the one it was given), the same
            # kernel, in the same pod.
            assert restarted.url == url
            assert survivor.kernel_ids() == [kernel_id]
            assert survivor.pod(kernel_id) == pod
            # The notebook reconnects through Jupyter Server, as JupyterLab does when
            # its websocket ends, and finds its variables.
            await notebook.close()
            notebook = await jupyter.channels(kernel_id)
            result = await notebook.execute("print(x)")
            assert result.reply.content["status"] == "ok", result.reply.content
            assert result.stdout == "42\n"
            status, sessions = await jupyter.call("GET", "/api/sessions")
            assert [s["kernel"]["id"] for s in sessions] == [kernel_id]
            await notebook.close()
    finally:
        gateway.stop()


# -- tunnel drops --------------------------------------------------------------------


async def test_a_cell_running_through_a_tunnel_drop_still_replies(
    survivor: Survivor, kubesim: Kubesim, http: aiohttp.ClientSession
) -> None:
    kernel_id = survivor.new_kernel()
    first = await connect(http, survivor.daemon, kernel_id)
    second = await KernelClient.connect(
        http, survivor.daemon.url, kernel_id, token=survivor.daemon.token
    )
    assert (await first.execute("x = 1")).reply.content["status"] == "ok"

    msg_id = await first.send("shell", "execute_request", {"code": streaming_cell(30, 0.1)})
    first.pending.extend(
        await first.receive_until(lambda m: m.msg_type == "stream" and m.parent_id == msg_id)
    )
    assert kubesim.close_portforwards() >= 4  # shell, control, stdin, iopub at least

    result = await first.collect(msg_id)
    assert result.reply.content["status"] == "ok", result.reply.content
    printed = [int(line) for line in result.stdout.split()]
    assert printed and printed[-1] == 29
    if len(printed) < 30:  # a gap in the output is never silent
        assert "[jkctl] The connection to the kernel was interrupted" in result.stderr
    # Both websockets stayed open and work on.
    assert (await first.execute("print(x + 1)")).stdout == "2\n"
    assert (await second.execute("print(x + 2)")).stdout == "3\n"
    assert survivor.kernel_ids() == [kernel_id]
    await first.close()
    await second.close()


async def test_a_streaming_cell_loses_no_line_across_a_drop(
    survivor: Survivor, kubesim: Kubesim, http: aiohttp.ClientSession
) -> None:
    """The pod's output keeper kept what the kernel printed while the tunnel was down,
    and replayed it: every line arrives, once, in order, and no one is told of a loss."""
    kernel_id = survivor.new_kernel()
    notebook = await connect(http, survivor.daemon, kernel_id)
    assert (await notebook.execute("x = 1")).reply.content["status"] == "ok"
    drops = survivor.drops(kernel_id)

    msg_id = await notebook.send("shell", "execute_request", {"code": streaming_cell(300, 0.01)})
    notebook.pending.extend(
        await notebook.receive_until(lambda m: m.msg_type == "stream" and m.parent_id == msg_id)
    )
    # The tunnel stays down for a while: the kernel prints on meanwhile. (Refusing the
    # API may already end the port-forwards; closing them makes sure.)
    kubesim.refuse_api(1.0)
    kubesim.close_portforwards()

    result = await notebook.collect(msg_id)
    assert result.reply.content["status"] == "ok", result.reply.content
    assert survivor.drops(kernel_id) > drops, "the daemon should have noticed the drop"
    assert [int(line) for line in result.stdout.split()] == list(range(300))
    assert result.stderr == ""
    assert (await notebook.execute("print(x + 1)")).stdout == "2\n"
    await notebook.close()


async def test_a_reply_lost_in_a_long_drop_is_answered_and_no_one_waits_for_ever(
    survivor: Survivor, kubesim: Kubesim, http: aiohttp.ClientSession
) -> None:
    kernel_id = survivor.new_kernel()
    notebook = await connect(http, survivor.daemon, kernel_id)
    assert (await notebook.execute("x = 1")).reply.content["status"] == "ok"
    msg_id = await notebook.send(
        "shell", "execute_request", {"code": "import time; time.sleep(1); x = 2"}
    )
    notebook.pending.extend(
        await notebook.receive_until(
            lambda m: m.msg_type == "execute_input" and m.parent_id == msg_id
        )
    )
    # The tunnel cannot come back before the cell ends: its reply goes nowhere.
    kubesim.refuse_api(3.0)
    kubesim.close_portforwards()

    result = await notebook.collect(msg_id)
    assert result.reply.content["status"] == "error"
    assert result.reply.content["ename"] == "ConnectionLost"
    assert "the kernel may have run it" in result.stderr
    # The kernel did run it, and is there for the next cell.
    assert (await notebook.execute("print(x)")).stdout == "2\n"
    _, model = survivor.daemon.request("GET", f"/api/kernels/{kernel_id}")
    assert model["execution_state"] == "idle"
    await notebook.close()


async def test_an_api_server_restart_is_a_drop_like_any_other(
    survivor: Survivor, kubesim: Kubesim, http: aiohttp.ClientSession
) -> None:
    kernel_id = survivor.new_kernel()
    notebook = await connect(http, survivor.daemon, kernel_id)
    assert (await notebook.execute("x = 5")).reply.content["status"] == "ok"
    drops = survivor.drops(kernel_id)
    kubesim.restart_api()  # every watch, stream and connection ends
    await eventually(lambda: survivor.drops(kernel_id) > drops, "the daemon noticed the drop")
    assert (await notebook.execute("print(x)")).stdout == "5\n"
    assert survivor.kernel_ids() == [kernel_id]
    await notebook.close()


# -- API outage ----------------------------------------------------------------------

OUTAGE = 10.0


async def test_an_api_outage_loses_no_kernel(
    survivor: Survivor, kubesim: Kubesim, http: aiohttp.ClientSession
) -> None:
    kernel_id = survivor.new_kernel()
    pod = survivor.pod(kernel_id)
    notebook = await connect(http, survivor.daemon, kernel_id)
    assert (await notebook.execute("x = 7")).reply.content["status"] == "ok"

    started = time.monotonic()
    kubesim.refuse_api(OUTAGE)
    # The daemon's own view needs no API: the kernel is listed throughout, and
    # `jkctl kernels list` says what is going on.
    assert survivor.kernel_ids() == [kernel_id]

    def listed_state() -> str:
        status, listing = survivor.daemon.request("GET", "/jkctl/v1/kernels")
        assert status == 200, listing
        (row,) = listing["kernels"]
        return f"{row['state']}: {row['reason']}"

    await eventually(lambda: listed_state().startswith("reconnecting"), "shown as reconnecting")
    assert listed_state() == (
        "reconnecting: idle; the connection to the kernel dropped and is being re-established"
    )
    # A request that needs the API says why it cannot be done now.
    status, body = survivor.daemon.request("POST", "/api/kernels", {"name": "python3"})
    assert status == 503, body
    assert body["reference"] == "kube-unavailable"
    assert body["message"].startswith("A new kernel cannot start now: "), body
    assert "the Kubernetes API server" in body["message"]
    assert body["message"].endswith(".")
    assert body["hint"].endswith(
        "Running kernels keep running; try again once the cluster answers."
    )
    # The outage cut the tunnel too: a cell sent now waits, on an open websocket,
    # until the daemon has re-opened the tunnel by itself once the API answers.
    result = await notebook.execute("print(x)")
    assert result.stdout == "7\n"
    assert time.monotonic() - started >= OUTAGE
    kubesim.wait_api_listening()

    # Another drop, with the API up. A cell sent once the daemon noticed is held until
    # the kernel's output reaches the daemon again, so none of its output is lost.
    drops = survivor.drops(kernel_id)
    kubesim.close_portforwards()
    await eventually(lambda: survivor.drops(kernel_id) > drops, "the daemon noticed the drop")
    assert (await notebook.execute("print(x * 6)")).stdout == "42\n"
    assert survivor.pod(kernel_id) == pod
    assert kernel_id in survivor.kernel_ids()
    await notebook.close()


# -- kernels that die behind our back --------------------------------------------------


def kill_container(survivor: Survivor, pod: str) -> None:
    survivor.kubesim.kill_container(survivor.namespace.name, pod)


def lose_pod(survivor: Survivor, pod: str) -> None:
    survivor.kubesim.lose_pod(survivor.namespace.name, pod)


def delete_pod(survivor: Survivor, pod: str) -> None:
    with api_client(survivor.kubesim.kubeconfig) as api:
        client.CoreV1Api(api).delete_namespaced_pod(pod, survivor.namespace.name)


@pytest.mark.parametrize("fault", [kill_container, lose_pod, delete_pod])
async def test_a_kernel_gone_behind_our_back_shows_dead_and_leaves_no_ghost(
    survivor: Survivor, http: aiohttp.ClientSession, fault: Callable[[Survivor, str], None]
) -> None:
    kernel_id = survivor.new_kernel()
    kept = survivor.new_kernel()
    notebook = await connect(http, survivor.daemon, kernel_id)
    assert (await notebook.execute("x = 1")).reply.content["status"] == "ok"

    fault(survivor, survivor.pod(kernel_id))

    seen: list[Message] = await asyncio.wait_for(
        notebook.receive_until(
            lambda m: m.msg_type == "status" and m.content["execution_state"] == "dead"
        ),
        DEADLINE,
    )
    assert seen[-1].channel == "iopub"
    with pytest.raises(ConnectionError):
        await notebook.receive()
    assert survivor.kernel_ids() == [kept]
    status, _ = survivor.daemon.request("GET", f"/api/kernels/{kernel_id}")
    assert status == 404
    survivor.namespace.wait_empty(f"jkctl.io/kernel-id={kernel_id}")


# -- no orphans ----------------------------------------------------------------------

LEASE = 4


def test_a_pod_outlives_its_dead_daemon_by_its_lease_and_no_more(
    kubesim: Kubesim, tmp_path: Path
) -> None:
    survivor = Survivor(kubesim, tmp_path, JKCTL_LEASE_SECONDS=str(LEASE))
    kernel_id = survivor.new_kernel()
    pod = survivor.namespace.pod_of(kernel_id)
    assert pod.metadata.annotations["jkctl.io/lease-seconds"] == str(LEASE)

    survivor.kill()
    killed = time.monotonic()
    # The kernel ends itself and its pod with it (the object stays, as any finished
    # pod does, holding no CPU, memory or GPU): nothing in the cluster deletes it.
    deadline = killed + LEASE + 30
    while (phase := survivor.namespace.pod_of(kernel_id).status.phase) == "Running":
        assert time.monotonic() < deadline, "the pod outlived its lease"
        time.sleep(0.1)
    took = time.monotonic() - killed
    assert phase == "Succeeded"
    # The last renewal was up to a quarter of the lease before the kill; the pod checks
    # its lease every quarter of it, and ends its kernel within its grace period.
    assert took < LEASE * 1.5 + 5, took
    # The next daemon clears away what is left.
    survivor.start()
    assert survivor.kernel_ids() == []
    survivor.namespace.wait_empty()
    survivor.close()


# -- idle culling --------------------------------------------------------------------


async def test_idle_kernels_no_one_is_connected_to_are_culled_and_logged(
    kubesim: Kubesim, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    survivor = Survivor(
        kubesim, tmp_path, JKCTL_CULL_DISCONNECTED_TIMEOUT="3s", JKCTL_CULL_INTERVAL="0.5"
    )
    try:
        # Each kernel is given what keeps it as soon as it exists (a client, a cell):
        # idle and alone for the timeout, it would be culled before the test gets to it.
        connected = survivor.new_kernel()
        notebook = await connect(http, survivor.daemon, connected)
        busy = survivor.new_kernel()
        runner = await connect(http, survivor.daemon, busy)
        msg_id = await runner.send(
            "shell", "execute_request", {"code": "import time; time.sleep(60)"}
        )
        await runner.receive_until(
            lambda m: m.msg_type == "execute_input" and m.parent_id == msg_id
        )
        await runner.close()
        left = survivor.new_kernel()
        pod = survivor.pod(left)

        await eventually(lambda: left not in survivor.kernel_ids(), "the idle kernel was culled")
        # Connected (culling those is off by default), or busy with no one watching: kept.
        assert sorted(survivor.kernel_ids()) == sorted([connected, busy])
        log = (tmp_path / "daemon-foreground.log").read_text()
        assert re.search(
            rf"kernel {left} \(pod {pod}\): culling it: idle for \d+s with no client "
            r"connected \(cull_disconnected_timeout is 3s\)",
            log,
        ), log
        survivor.namespace.wait_empty(f"jkctl.io/kernel-id={left}")
        assert (await notebook.execute("print('still here')")).stdout == "still here\n"
        await notebook.close()
    finally:
        survivor.close()
