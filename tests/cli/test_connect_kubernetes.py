"""`jkctl connect` and `disconnect` with a kubesim kubeconfig, as a user runs them."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.test_connect import answers, jkctl
from tests.kube_users import Namespace, jkctl_namespace, without
from tests.kubesim.fixture import Kubesim
from tests.processes import LAB_LINE, isolated_env

pytestmark = pytest.mark.kubesim


def in_namespace(kubeconfig: Path, namespace: str) -> Path:
    """The kubeconfig with its current context set to ``namespace`` (as kubens would)."""
    config = yaml.safe_load(kubeconfig.read_text())
    for context in config["contexts"]:
        context["context"]["namespace"] = namespace
    kubeconfig.write_text(yaml.safe_dump(config))
    return kubeconfig


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    environment = isolated_env(tmp_path)
    yield environment
    jkctl(environment, "disconnect", "--stop-kernels")


def post(url: str, token: str, path: str, body: Any) -> Any:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"token {token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_connect_uses_the_current_context_and_its_namespace(
    env: dict[str, str], kubesim: Kubesim
) -> None:
    namespace = jkctl_namespace(kubesim, "connect")
    env["KUBECONFIG"] = str(in_namespace(namespace.kubeconfig, namespace.name))

    started = jkctl(env, "connect")
    assert started.returncode == 0, started.stderr
    assert f"kubernetes backend (kubeconfig {namespace.kubeconfig})" in started.stderr
    assert f"context {namespace.user}, namespace {namespace.name}" in started.stderr
    match = LAB_LINE.match(started.stdout.strip())
    assert match, started.stdout
    url, token = match[1], match[2]
    assert answers(url, token)

    status = json.loads(jkctl(env, "status", "-o", "json").stdout)
    assert status["daemon"]["backend"] == "kubernetes"
    assert (status["context"], status["namespace"]) == (namespace.user, namespace.name)

    kernel = post(url, token, "/api/kernels", {"name": "python3"})
    assert namespace.pod_of(kernel["id"]).status.phase == "Running"

    again = jkctl(env, "connect", "--namespace", namespace.name)
    assert again.returncode == 0, again.stderr
    assert "reusing the daemon" in again.stderr
    assert again.stdout == started.stdout

    stopped = jkctl(env, "disconnect")
    assert stopped.returncode == 0, stopped.stderr
    assert "its kernel keeps running; `jkctl connect` re-attaches it" in stopped.stderr
    assert not answers(url, token)
    assert namespace.pod_of(kernel["id"]).status.phase == "Running"

    # A new daemon for the same state folder finds the kernel where it was.
    restarted = jkctl(env, "connect")
    assert restarted.returncode == 0, restarted.stderr
    match = LAB_LINE.match(restarted.stdout.strip())
    assert match
    request = urllib.request.Request(
        match[1] + "/api/kernels", headers={"Authorization": f"token {match[2]}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert [k["id"] for k in json.loads(response.read())] == [kernel["id"]]

    stopped = jkctl(env, "disconnect", "--stop-kernels")
    assert "its kernel was stopped" in stopped.stderr
    assert namespace.leftovers() == []


def test_connect_says_what_permission_is_missing(env: dict[str, str], kubesim: Kubesim) -> None:
    partial = jkctl_namespace(
        kubesim, "no-forward", rules=list(without("create", "pods/portforward"))
    )
    started_at = time.monotonic()
    result = jkctl(env, "connect", "--kubeconfig", str(partial.kubeconfig), "-n", partial.name)
    assert time.monotonic() - started_at < 30
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert (
        f"error: you may not create pods/portforward in namespace {partial.name}" in result.stderr
    )
    assert "hint: ask a namespace admin for a Role" in result.stderr
    assert result.stdout == ""
    assert json.loads(jkctl(env, "status", "-o", "json").stdout)["daemon"] is None
    assert partial.leftovers() == []


def test_connect_with_a_rejected_token(
    env: dict[str, str], kubesim: Kubesim, tmp_path: Path
) -> None:
    namespace: Namespace = jkctl_namespace(kubesim, "bad-token")
    config = yaml.safe_load(namespace.kubeconfig.read_text())
    config["users"][0]["user"]["token"] = "not-a-token"
    forged = tmp_path / "forged.kubeconfig"
    forged.write_text(yaml.safe_dump(config))
    result = jkctl(env, "connect", "--kubeconfig", str(forged), "-n", namespace.name)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "rejected the credentials of context" in result.stderr
    assert json.loads(jkctl(env, "status", "-o", "json").stdout)["daemon"] is None
