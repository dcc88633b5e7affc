"""Kernels that cannot start on Kubernetes: a clear error, quickly, and nothing left behind.

Each case goes through the daemon's API as a client would, against the
session's Kubernetes daemon on kubesim. The answer must come as soon as
Kubernetes knows it (seconds, not the start timeout), say what Kubernetes
said, and leave no pod or Secret in the namespace. The cases that need no
cluster (a bad token, an unknown kernelspec, malformed JSON) run on both
backends in test_api.py; here they are checked for leaving the namespace
alone too.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.daemon.test_api import raw_request
from tests.kubesim.conftest import api_client
from tests.kubesim.fixture import Kubesim
from tests.processes import RunningDaemon

pytestmark = pytest.mark.kubesim

QUICKLY = 10.0  # seconds: far below the 120 s start timeout


@pytest.fixture
def daemon(kubernetes_daemon: RunningDaemon) -> Iterator[RunningDaemon]:
    assert kubernetes_daemon.kube.leftovers() == []
    yield kubernetes_daemon
    kubernetes_daemon.kube.wait_empty()


def start(daemon: RunningDaemon, env: dict[str, str]) -> tuple[int, Any, float]:
    started = time.monotonic()
    status, body = daemon.request("POST", "/api/kernels", {"name": "python3", "env": env})
    return status, body, time.monotonic() - started


def test_an_image_that_cannot_be_pulled_is_named(daemon: RunningDaemon, kubesim: Kubesim) -> None:
    image = "registry.example/jkctl-tests/no-such-image:1"
    kubesim.fail_images(image)
    status, error, took = start(daemon, {"KERNEL_IMAGE": image})
    assert took < QUICKLY
    assert status == 500
    assert error["reference"] == "kernel-start-failed"
    assert f"Kubernetes cannot pull the image {image}" in error["message"]
    assert "ErrImagePull" in error["message"]
    assert "imagePullSecret" in error["hint"]
    assert daemon.kube.leftovers() == []


def test_a_pod_too_big_for_any_node_quotes_the_scheduler(daemon: RunningDaemon) -> None:
    status, error, took = start(daemon, {"KERNEL_MEMORY": "512Gi", "KERNEL_CPUS": "64"})
    assert took < QUICKLY
    assert status == 500
    assert "Kubernetes cannot schedule its pod" in error["message"]
    assert "0/2 nodes are available" in error["message"]
    assert "Insufficient cpu" in error["message"]
    assert "Insufficient memory" in error["message"]
    assert error["hint"] == (
        "Start a smaller kernel (`jkctl kernelspecs list` shows the sizes), "
        "or ask the cluster's admins for room."
    )
    assert daemon.kube.leftovers() == []


def test_more_gpus_than_the_cluster_has(daemon: RunningDaemon) -> None:
    status, error, took = start(daemon, {"KERNEL_GPUS": "8"})
    assert took < QUICKLY
    assert status == 500
    assert "Insufficient nvidia.com/gpu" in error["message"]
    assert daemon.kube.leftovers() == []


def test_a_quota_says_what_it_limits(daemon: RunningDaemon, kubesim: Kubesim) -> None:
    namespace = daemon.kube.name
    with api_client(kubesim.kubeconfig) as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_resource_quota(
            namespace, {"metadata": {"name": "small"}, "spec": {"hard": {"requests.memory": "2Gi"}}}
        )
        try:
            status, error, took = start(daemon, {"KERNEL_MEMORY": "3Gi"})
        finally:
            core.delete_namespaced_resource_quota("small", namespace)
    assert took < QUICKLY
    assert status == 403
    assert error["reference"] == "quota-exceeded"
    # Without a jkctl team label the namespace names the team.
    assert error["message"] == (
        f"team {namespace} has 0 of 2 GiB memory in use; this kernel asks for 3 GiB"
    )
    assert "exceeded quota: small" in error.get("context", "")
    assert daemon.kube.leftovers() == []


def test_a_container_that_crashes_shows_its_last_output(daemon: RunningDaemon) -> None:
    started = time.monotonic()
    status, error = daemon.request("POST", "/api/kernels", {"name": "crashes"})
    assert time.monotonic() - started < QUICKLY
    assert status == 500
    assert "exited with code 3" in error["message"]
    assert "boom: no kernel here" in error["message"]
    assert daemon.kube.leftovers() == []


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"KERNEL_NAMESPACE": "kube-system"}, "runs kernels in namespace"),
        ({"KERNEL_MEMORY": "lots"}, "KERNEL_MEMORY='lots' is invalid"),
        ({"KERNEL_IMAGE": "no spaces allowed"}, "KERNEL_IMAGE='no spaces allowed' is invalid"),
        ({"KERNEL_USERNAME": "ada\nkind: Secret"}, "KERNEL_USERNAME="),
    ],
)
def test_bad_launch_variables_are_400(
    daemon: RunningDaemon, env: dict[str, str], words: str
) -> None:
    status, error, _ = start(daemon, env)
    assert status == 400
    assert words in error["message"]
    assert error["reference"] == "usage-error"
    assert daemon.kube.leftovers() == []


def test_values_reach_the_pod_as_values(daemon: RunningDaemon) -> None:
    """YAML and Jinja in launch variables land in the pod as the very strings sent."""
    payloads = {
        "KERNEL_USERNAME": "{{ 7*7 }} {% if true %}x{% endif %}",
        "KERNEL_YAML": 'x", "securityContext": {"privileged": true}, "y": "',
        "KERNEL_FLOW": "{a: [1, 2]} &anchor *alias !!python/object:os.system",
    }
    status, model, _ = start(daemon, payloads)
    assert status == 201, model
    try:
        pod = daemon.kube.pod_of(model["id"])
        container = pod.spec.containers[0]
        env = {item.name: item.value for item in container.env}
        for name, payload in payloads.items():
            assert env[name] == payload
        assert pod.metadata.annotations["jkctl.io/username"] == payloads["KERNEL_USERNAME"]
        assert not container.security_context.privileged
        assert container.security_context.allow_privilege_escalation is False
        assert pod.spec.security_context.run_as_non_root is True
        # The connection key is in the Secret, never in the pod spec or its environment.
        secret = daemon.kube.secrets(f"jkctl.io/kernel-id={model['id']}")[0]
        key = json.loads(base64.b64decode(secret.data["connection.json"]))["key"]
        assert key not in json.dumps(client.ApiClient().sanitize_for_serialization(pod))
    finally:
        daemon.request("DELETE", f"/api/kernels/{model['id']}")


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2"])
def test_malformed_json_creates_nothing(daemon: RunningDaemon, body: bytes) -> None:
    status, _, _ = raw_request(
        daemon, "POST", "/api/kernels", body=body, Authorization=f"token {daemon.token}"
    )
    assert status == 400
    assert daemon.kube.leftovers() == []


def test_unknown_kernelspec_and_bad_token_create_nothing(daemon: RunningDaemon) -> None:
    status, error = daemon.request("POST", "/api/kernels", {"name": "no-such-spec"})
    assert status == 404
    assert error["reference"] == "kernelspec-not-found"
    status, _, _ = raw_request(
        daemon, "POST", "/api/kernels", body=b'{"name": "python3"}', Authorization="token wrong"
    )
    assert status == 401
    assert daemon.kube.leftovers() == []
