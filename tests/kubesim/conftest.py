"""Fixtures for kubesim's own tests: API clients, and an in-process cluster with a fake kubelet.

Most tests use the session's `kubesim` subprocess. Stream and fault tests
that need pods to answer use `sim`: a cluster run in a thread of this
process with `FakeKubelet`, reached through the same `Kubesim` handle and
control socket as the subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from tests.kubesim import fixture
from tests.kubesim.cluster import Cluster, ClusterConfig
from tests.kubesim.control import ControlClient, ControlServer
from tests.kubesim.fake_kubelet import FakeKubelet
from tests.kubesim.fixture import Kubesim
from tests.kubesim.store import Store

START_TIMEOUT = 30.0


@contextlib.contextmanager
def api_client(kubeconfig: Path, context: str | None = None) -> Iterator[client.ApiClient]:
    """A `kubernetes` client for one kubeconfig (no global configuration touched)."""
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(kubeconfig), context=context, client_configuration=configuration
    )
    with client.ApiClient(configuration) as api:
        try:
            yield api
        finally:
            # ApiClient.close() leaves urllib3's keep-alive sockets to the garbage
            # collector, whose ResourceWarnings would fail a later test.
            api.rest_client.pool_manager.clear()


@pytest.fixture
def admin(kubesim: Kubesim) -> Iterator[client.ApiClient]:
    with api_client(kubesim.kubeconfig) as api:
        yield api


class InProcess:
    """A cluster running on an event loop in a background thread of the test process."""

    def __init__(self, handle: Kubesim, cluster: Cluster, loop: asyncio.AbstractEventLoop) -> None:
        self.handle = handle
        self.cluster = cluster
        self.loop = loop

    @property
    def kubelet(self) -> FakeKubelet:
        kubelet = self.cluster._kubelet
        assert isinstance(kubelet, FakeKubelet)
        return kubelet

    def wait_until(
        self, predicate: Callable[[], bool], condition: asyncio.Condition, timeout: float = 10.0
    ) -> None:
        """Block until `predicate()` holds, re-checked whenever `condition` is notified."""

        async def wait() -> None:
            async with asyncio.timeout(timeout), condition:
                await condition.wait_for(predicate)

        asyncio.run_coroutine_threadsafe(wait(), self.loop).result()

    def call(self, function: Any, *args: Any) -> Any:
        """Run `function(*args)` on the cluster's loop and return its result."""

        async def run() -> Any:
            return function(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)


@contextlib.contextmanager
def cluster_in_thread(workdir: Path, **options: Any) -> Iterator[InProcess]:
    socket_path = fixture.socket_path(workdir)
    cluster_config = ClusterConfig(
        kubeconfig=workdir / "admin.kubeconfig", state_dir=workdir / "state", **options
    )

    def fake(store: Store, _: ClusterConfig) -> FakeKubelet:
        return FakeKubelet(store)

    cluster = Cluster(cluster_config, kubelet_factory=fake)
    started = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        async with cluster.running(), ControlServer(cluster, socket_path).serving():
            state["loop"], state["task"] = asyncio.get_running_loop(), asyncio.current_task()
            started.set()
            await asyncio.Event().wait()  # until the fixture cancels this task

    def thread_main() -> None:
        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            state["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=thread_main, name="kubesim-in-process")
    thread.start()
    try:
        assert started.wait(START_TIMEOUT), "the in-process cluster did not start"
        if "error" in state:
            raise state["error"]
        handle = Kubesim(
            kubeconfig=cluster_config.kubeconfig,
            server=cluster.server,
            control=ControlClient(socket_path),
            workdir=workdir,
        )
        yield InProcess(handle, cluster, state["loop"])
    finally:
        if "task" in state:
            state["loop"].call_soon_threadsafe(state["task"].cancel)
        thread.join(START_TIMEOUT)
        assert not thread.is_alive(), "the in-process cluster did not stop"
        if "error" in state:
            raise state["error"]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[InProcess]:
    with cluster_in_thread(tmp_path, bookmark_interval=0.2) as running:
        yield running


@pytest.fixture
def sim_admin(sim: InProcess) -> Iterator[client.ApiClient]:
    with api_client(sim.handle.kubeconfig) as api:
        yield api
