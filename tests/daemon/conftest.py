"""Shared fixtures: one jkctl daemon per test worker, one kernel per module, a gateway."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.processes import (
    IPYKERNEL_ARGV,
    RunningDaemon,
    RunningJupyterServer,
    start_daemon,
    start_jupyter_server,
    write_kernelspec,
)


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """The daemon, with extra kernelspecs: one that crashes, one interrupted by signal."""
    root = tmp_path_factory.mktemp("daemon")
    templates = root / "templates"
    write_kernelspec(
        templates,
        "crashes",
        argv=[sys.executable, "-c", "import sys; print('boom: no kernel here'); sys.exit(3)"],
    )
    write_kernelspec(templates, "signal-python", argv=IPYKERNEL_ARGV, interrupt_mode="signal")
    running = start_daemon(root, "--kernel-templates", str(templates))
    yield running
    running.stop()


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
