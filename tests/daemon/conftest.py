"""Shared fixtures: a jkctl daemon per backend and test worker, one kernel per module, a gateway.

``daemon`` is parametrized over the backends: every test that takes it runs
against the local backend and against the Kubernetes backend on kubesim
(as a user holding only jkctl's Role in a namespace of its own). Both
daemons have the same extra kernelspecs: one that crashes, one interrupted
by signal.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube_users import jkctl_namespace
from tests.kubesim.fixture import Kubesim
from tests.processes import (
    IPYKERNEL_ARGV,
    RunningDaemon,
    RunningJupyterServer,
    start_daemon,
    start_jupyter_server,
    start_kube_daemon,
    write_kernelspec,
)

BACKENDS = ["local", "kubernetes"]
IMAGE = {"jkctl": {"image": "quay.io/jupyter/base-notebook:2024-12-02"}}


def write_test_kernelspecs(templates: Path) -> None:
    write_kernelspec(
        templates,
        "crashes",
        argv=[sys.executable, "-c", "import sys; print('boom: no kernel here'); sys.exit(3)"],
        metadata=IMAGE,
    )
    write_kernelspec(
        templates, "signal-python", argv=IPYKERNEL_ARGV, interrupt_mode="signal", metadata=IMAGE
    )


@pytest.fixture(scope="session")
def local_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    root = tmp_path_factory.mktemp("daemon")
    write_test_kernelspecs(root / "templates")
    running = start_daemon(root, "--kernel-templates", str(root / "templates"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def kubernetes_daemon(
    kubesim: Kubesim, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningDaemon]:
    root = tmp_path_factory.mktemp("kube-daemon")
    write_test_kernelspecs(root / "templates")
    namespace = jkctl_namespace(kubesim, "daemon")
    running = start_kube_daemon(root, namespace, "--kernel-templates", str(root / "templates"))
    yield running
    running.stop(stop_kernels=True)
    assert namespace.leftovers() == []


@pytest.fixture(scope="session", params=BACKENDS)
def daemon(request: pytest.FixtureRequest) -> RunningDaemon:
    running: RunningDaemon = request.getfixturevalue(f"{request.param}_daemon")
    return running


@pytest.fixture(scope="module")
def kernel_id(daemon: RunningDaemon) -> Iterator[str]:
    """A kernel shared by the tests of one module that do not need a fresh one."""
    status, model = daemon.request("POST", "/api/kernels", {"name": "python3"})
    assert status == 201, model
    yield model["id"]
    daemon.request("DELETE", f"/api/kernels/{model['id']}")


@pytest.fixture(scope="module")
def gateway(
    daemon: RunningDaemon, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningJupyterServer]:
    server = start_jupyter_server(tmp_path_factory.mktemp("jupyter"), daemon)
    yield server
    server.stop()
