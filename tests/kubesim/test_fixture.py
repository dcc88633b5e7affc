"""The kubesim process and fixture: ready line, kubeconfig, users, clean teardown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.kubesim.conftest import api_client
from tests.kubesim.fixture import (
    Kubesim,
    descendants,
    exited,
    group_members,
    run_kubesim,
    socket_path,
)
from tests.kubesim.watching import wait_for_log

pytestmark = pytest.mark.kubesim


def test_kubesim_stops_without_leaving_a_process(tmp_path: Path) -> None:
    with run_kubesim(tmp_path / "kubesim", "--pull-delay", "0.1", "--fail-image", "broken") as sim:
        assert sim.pid is not None
        assert sim.pid in group_members(sim.pid)  # its own process group
        assert sim.control.call("ping") == "pong"
        with api_client(sim.kubeconfig) as admin:
            core = client.CoreV1Api(admin)
            assert core.read_namespace("kube-system").status.phase == "Active"
            script = "sleep 300 & echo up; wait"
            core.create_namespaced_pod(
                "default",
                {
                    "metadata": {"name": "lingers"},
                    "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                                             "command": ["sh", "-c", script]}]},
                },
            )  # fmt: skip
            wait_for_log(core, "default", "lingers", "up")  # the background sleep exists
        # Sandbox, shim, container, its sleep: sessions of their own, not kubesim's group.
        pods = [pid for pid in descendants(sim.pid) if pid not in group_members(sim.pid)]
        assert len(pods) >= 4
        pidfds = [os.pidfd_open(pid) for pid in pods]
    try:
        assert group_members(sim.pid) == []
        assert [pid for pid, fd in zip(pods, pidfds, strict=True) if not exited(fd)] == []
    finally:
        for fd in pidfds:
            os.close(fd)
    assert not socket_path(tmp_path / "kubesim").exists()


def test_the_admin_kubeconfig_names_every_user(kubesim: Kubesim) -> None:
    own = kubesim.new_user("erin", ["team-e"])
    config = yaml.safe_load(own.read_text())
    assert config["current-context"] == "erin"
    assert config["contexts"][0]["context"]["namespace"] == "default"
    assert config["clusters"][0]["cluster"]["server"] == kubesim.server
    admin = yaml.safe_load(kubesim.kubeconfig.read_text())
    assert admin["current-context"] == "kubesim-admin"
    assert {"kubesim-admin", "erin"} <= {c["name"] for c in admin["contexts"]}
    with api_client(kubesim.kubeconfig, context="erin") as erin:
        review = client.AuthenticationV1Api(erin).create_self_subject_review({})
        assert review.status.user_info.username == "erin"
        assert review.status.user_info.groups == ["team-e", "system:authenticated"]


def test_namespaces_are_unique(kubesim: Kubesim) -> None:
    first, second = kubesim.create_namespace("same"), kubesim.create_namespace("same")
    assert first != second
    assert first.startswith("same-") and second.startswith("same-")
    for name in (first, second):
        kubesim.delete_namespace(name)
