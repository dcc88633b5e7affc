"""`jkctl admin` as an admin runs it against kubesim: what lands on stdout and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.admin.conftest import kernel_pod, team_names
from tests.kubesim.conftest import api_client
from tests.kubesim.fixture import Kubesim

Names = Callable[[str], str]
__all__ = ["team_names"]  # the fixture, shared with tests/admin


class Admin:
    def __init__(self, kubeconfig: Path, home: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}
        self.env["COLUMNS"] = "120"

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jkctl", "admin", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )


@pytest.fixture
def admin(kubesim: Kubesim, tmp_path: Path) -> Admin:
    return Admin(kubesim.kubeconfig, tmp_path)


def test_render_prints_yaml_or_a_json_list(tmp_path: Path) -> None:
    run = Admin(tmp_path / "no-kubeconfig", tmp_path)  # render needs no cluster
    args = ("render", "team", "geo", "--cpu", "64", "--memory", "256Gi", "--members", "alice")
    rendered = run(*args)
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stderr == ""
    documents = list(yaml.safe_load_all(rendered.stdout))
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("Namespace", "geo"),
        ("ResourceQuota", "jkctl-team"),
        ("LimitRange", "jkctl-kernel-defaults"),
        ("Role", "jkctl-member"),
        ("RoleBinding", "jkctl-members"),
        ("NetworkPolicy", "jkctl-deny-ingress"),
    ]
    as_json = json.loads(run(*args, "-o", "json").stdout)
    assert as_json["kind"] == "List"
    assert as_json["items"] == documents


def test_a_bad_amount_names_the_option_and_the_syntax(tmp_path: Path) -> None:
    run = Admin(tmp_path / "no-kubeconfig", tmp_path)
    result = run("render", "team", "geo", "--cpu", "64", "--memory", "256GB")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: --memory 256GB is not an amount Kubernetes understands (Kubernetes writes 256G)",
        "hint: write bytes with a suffix such as 256Gi, 512Mi or 4G",
        "(usage-error)",
    ]


@pytest.mark.kubesim
def test_create_list_and_delete(kubesim: Kubesim, admin: Admin, team_names: Names) -> None:
    name = team_names("cli")
    options = ("--cpu", "4", "--memory", "8Gi", "--gpu", "1", "--max-kernels", "5")
    created = admin("team", "create", name, *options, "--members", "alice,bob")
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines() == [
        f"namespace/{name} created",
        "resourcequota/jkctl-team created",
        "limitrange/jkctl-kernel-defaults created",
        "role/jkctl-member created",
        "rolebinding/jkctl-members created",
        "networkpolicy/jkctl-deny-ingress created",
    ]
    assert created.stderr.splitlines() == [
        f"jkctl: team {name} has 4 CPUs, 8 GiB memory, 1 GPU, at most 5 kernels; "
        "members: alice, bob.",
        f"jkctl: members run kernels there with: jkctl connect --namespace {name}",
    ]
    again = admin("team", "create", name, *options, "--members", "alice,bob")
    assert again.stdout.count(" unchanged") == 6
    updated = admin("team", "update", name, "--gpu", "2")
    assert updated.returncode == 0, updated.stderr
    assert "resourcequota/jkctl-team configured" in updated.stdout.splitlines()
    assert updated.stderr.startswith(f"jkctl: team {name} updated (1 object changed): ")

    with api_client(kubesim.kubeconfig) as api:
        from kubernetes import client

        client.CoreV1Api(api).create_namespaced_pod(name, kernel_pod("k-1", cpu="1500m"))

    table = admin("team", "list")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["TEAM", "CPU", "MEMORY", "GPU", "KERNELS", "MEMBERS"]
    row = next(line for line in lines if line.startswith(name + " "))
    assert row.split() == [name, "1.5", "/", "4", "64", "MiB", "/", "8", "GiB", "0", "/", "2",
                           "1", "/", "5", "alice,", "bob"]  # fmt: skip
    listed = json.loads(admin("team", "list", "-o", "json").stdout)
    team = next(t for t in listed["teams"] if t["name"] == name)
    assert team == {
        "name": name,
        "namespace": name,
        "terminating": False,
        "cpu": {"used": 1.5, "hard": 4.0},
        "memory_bytes": {"used": 64 * 2**20, "hard": 8 * 2**30},
        "gpu": {"used": 0, "hard": 2},
        "kernels": {"running": 1, "max": 5},
        "members": ["alice", "bob"],
        "groups": [],
    }
    as_yaml = yaml.safe_load(admin("team", "list", "-o", "yaml").stdout)
    assert as_yaml == listed

    busy = admin("team", "delete", name, "--yes")
    assert busy.returncode == 2
    assert busy.stderr.splitlines()[0] == (
        f"error: team {name} has 1 pod running (k-1); deleting it would stop them"
    )
    declined = admin("team", "delete", name, "--force", stdin="n\n")
    assert declined.returncode != 0
    assert f"Delete team {name} and everything in namespace {name}, stopping 1 running pod?" in (
        declined.stderr
    )
    deleted = admin("team", "delete", name, "--force", stdin="y\n")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout == f"namespace/{name} deleted\n"
    gone = admin("team", "update", name, "--gpu", "1")
    assert gone.returncode == 2
    assert gone.stderr.splitlines()[0] == f"error: there is no team {name}"


@pytest.mark.kubesim
def test_kubeconfig_goes_to_stdout_and_works(
    kubesim: Kubesim, admin: Admin, team_names: Names, tmp_path: Path
) -> None:
    name = team_names("cfg")
    assert admin("team", "create", name, "--cpu", "1", "--memory", "1Gi").returncode == 0
    made = admin("team", "kubeconfig", name, "--user", "alice", "--expiration", "2h")
    assert made.returncode == 0, made.stderr
    assert made.stderr.startswith(
        f"jkctl: kubeconfig for alice in team {name} (as system:serviceaccount:{name}:alice); "
        "the token expires "
    )
    path = tmp_path / "alice.kubeconfig"
    path.write_text(made.stdout)
    with api_client(path) as api:
        from kubernetes import client

        assert client.CoreV1Api(api).list_namespaced_pod(name).items == []


@pytest.mark.kubesim
def test_an_admin_without_rights_is_told_which(kubesim: Kubesim, tmp_path: Path) -> None:
    run = Admin(kubesim.new_user("mallory"), tmp_path)
    result = run("team", "delete", "geo", "--yes")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: you may not get namespaces, delete namespaces or list pods in namespace geo, "
        "which deleting team geo needs",
        '  as user "mallory" of context "mallory"',
        "hint: run jkctl admin with a kubeconfig context of a cluster admin, or ask one for "
        "these rights",
        "(kube-forbidden)",
    ]
