"""Acceptance: the ways a pod can fail to run, or be stopped, through the API with the real kubelet.

An image that cannot be pulled (ErrImagePull, then ImagePullBackOff), a
pod that fits no node (Pending, FailedScheduling) and a container that
keeps exiting 1 (CrashLoopBackOff): the status and the events a client
sees, worded as a real cluster words them. And deletion as the API server
and the kubelet share it: a second DELETE may shorten the grace period,
down to 0 (force), and the kubelet keeps to the shorter one. The back-off paths run on
`kubesim_short_backoff` so they take a fraction of a second; scheduling
needs no back-off and runs on the session cluster.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.kubesim.conftest import api_client
from tests.kubesim.fixture import POD_UID_ENV, Kubesim, pod_processes, wait_exited
from tests.kubesim.watching import phase, wait_for_event, wait_for_pod, waiting

pytestmark = pytest.mark.kubesim


@pytest.fixture
def short(kubesim_short_backoff: Kubesim) -> Iterator[tuple[client.CoreV1Api, str]]:
    """The short back-off cluster's API and a namespace of this test's there."""
    namespace = kubesim_short_backoff.create_namespace("pods")
    try:
        with api_client(kubesim_short_backoff.kubeconfig) as api:
            yield client.CoreV1Api(api), namespace
    finally:
        kubesim_short_backoff.delete_namespace(namespace)


def pod(name: str, image: str, *command: str, **spec: object) -> dict[str, object]:
    container: dict[str, object] = {"name": "main", "image": image}
    if command:
        container["command"] = list(command)
    return {
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [container], **spec},
    }


def events_of(core: client.CoreV1Api, namespace: str, name: str) -> set[tuple[str, str, str]]:
    return {
        (e.type, e.reason, e.message)
        for e in core.list_namespaced_event(namespace).items
        if e.involved_object.name == name
    }


def test_an_unknown_image_goes_err_image_pull_then_image_pull_back_off(
    kubesim_short_backoff: Kubesim, short: tuple[client.CoreV1Api, str]
) -> None:
    core, namespace = short
    image = "registry.example.com/jupyter/missing:1.0"
    kubesim_short_backoff.fail_images(image)
    core.create_namespaced_pod(namespace, pod("nowhere", image, "sleep", "60"))
    _, failing = wait_for_pod(core, namespace, "nowhere", waiting("ErrImagePull"))
    not_found = (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": '
        f'failed to resolve reference "{image}": {image}: not found'
    )
    assert failing.status.container_statuses[0].state.waiting.message == not_found
    _, backing_off = wait_for_pod(core, namespace, "nowhere", waiting("ImagePullBackOff"))
    (status,) = backing_off.status.container_statuses
    assert status.state.waiting.message == f'Back-off pulling image "{image}"'
    assert (status.ready, status.restart_count, backing_off.status.phase) == (False, 0, "Pending")
    assert {
        ("Normal", "Pulling", f'Pulling image "{image}"'),
        ("Warning", "Failed", f'Failed to pull image "{image}": {not_found}'),
        ("Warning", "Failed", "Error: ErrImagePull"),
        ("Normal", "BackOff", f'Back-off pulling image "{image}"'),
        ("Warning", "Failed", "Error: ImagePullBackOff"),
    } <= events_of(core, namespace, "nowhere")


def test_a_pod_bigger_than_every_node_stays_pending_with_failed_scheduling(
    admin: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    huge = pod(
        "huge",
        "busybox:1.36",
        "sleep",
        "60",
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists"}],  # both nodes in play
    )
    huge["spec"]["containers"][0]["resources"] = {"requests": {"memory": "64Gi"}}  # type: ignore[index]
    core.create_namespaced_pod(kube_namespace, huge)
    event = wait_for_event(core, kube_namespace, "huge", "FailedScheduling")
    message = (
        "0/2 nodes are available: 2 Insufficient memory. preemption: 0/2 nodes are available: "
        "2 No preemption victims found for incoming pod."
    )
    assert (event.type, event.message, event.source.component) == (
        "Warning",
        message,
        "default-scheduler",
    )
    pending = core.read_namespaced_pod("huge", kube_namespace)
    assert (pending.status.phase, pending.spec.node_name) == ("Pending", None)
    (scheduled,) = [c for c in pending.status.conditions if c.type == "PodScheduled"]
    assert (scheduled.status, scheduled.reason, scheduled.message) == (
        "False",
        "Unschedulable",
        message,
    )


def test_a_container_exiting_1_under_restart_policy_always_crash_loops(
    short: tuple[client.CoreV1Api, str],
) -> None:
    core, namespace = short
    core.create_namespaced_pod(
        namespace, pod("crashes", "busybox:1.36", "sh", "-c", "echo giving up; exit 1")
    )
    _, looping = wait_for_pod(core, namespace, "crashes", waiting("CrashLoopBackOff"))
    assert looping.spec.restart_policy == "Always"
    (status,) = looping.status.container_statuses
    assert status.restart_count >= 1
    assert (status.last_state.terminated.exit_code, status.last_state.terminated.reason) == (
        1,
        "Error",
    )
    described = f"crashes_{namespace}({looping.metadata.uid})"
    assert re.fullmatch(
        rf"back-off \d+(\.\d+)?m?s restarting failed container=main pod={re.escape(described)}",
        status.state.waiting.message,
    ), status.state.waiting.message
    event = wait_for_event(core, namespace, "crashes", "BackOff")
    assert (event.type, event.message) == (
        "Warning",
        f"Back-off restarting failed container main in pod {described}",
    )
    assert core.read_namespaced_pod_log("crashes", namespace, previous=True) == "giving up\n"
    assert looping.status.phase == "Running"  # as a real crash-looping pod shows


def test_pulls_take_the_pull_delay(
    kubesim_short_backoff: Kubesim, short: tuple[client.CoreV1Api, str]
) -> None:
    core, namespace = short
    image = f"registry.example.com/slow/{namespace}:1.0"  # new to every node
    kubesim_short_backoff.set_pull_delay(0.3)
    try:
        core.create_namespaced_pod(namespace, pod("slow", image, "sleep", "60"))
        wait_for_pod(core, namespace, "slow", phase("Running"))
    finally:
        kubesim_short_backoff.set_pull_delay(0)
    pulled = wait_for_event(core, namespace, "slow", "Pulled")
    took = re.match(rf'Successfully pulled image "{re.escape(image)}" in (\d+)ms', pulled.message)
    assert took is not None, pulled.message
    assert int(took.group(1)) >= 300


def test_a_second_delete_shortens_the_grace_the_kubelet_gives(
    kubesim: Kubesim, admin: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    pods = {}
    for name in ("shortened", "forced"):
        # `sleep` is pid 1 and so ignores SIGTERM: only the grace period's end stops it.
        body = pod(name, "busybox:1.36", "sleep", "300", terminationGracePeriodSeconds=60)
        body["spec"]["containers"][0]["env"] = [POD_UID_ENV]  # type: ignore[index]
        core.create_namespaced_pod(kube_namespace, body)
        _, pods[name] = wait_for_pod(core, kube_namespace, name, phase("Running"))
    (forced_pid,) = pod_processes(kubesim, pods["forced"].metadata.uid)
    forced_fd = os.pidfd_open(forced_pid)
    try:
        for name in pods:
            marked = core.delete_namespaced_pod(name, kube_namespace)
            assert marked.metadata.deletion_grace_period_seconds == 60
        core.delete_namespaced_pod("shortened", kube_namespace, grace_period_seconds=1)
        core.delete_namespaced_pod("forced", kube_namespace, grace_period_seconds=0)
        with pytest.raises(ApiException) as raised:
            core.read_namespaced_pod("forced", kube_namespace)
        assert raised.value.status == 404  # a force delete removes the object at once ...
        assert wait_exited(forced_fd, 10)  # ... and the kubelet kills at once, not in 60 s
    finally:
        os.close(forced_fd)
    kind, _ = wait_for_pod(
        core,
        kube_namespace,
        "shortened",
        lambda kind, _: kind == "DELETED",
        resource_version=pods["shortened"].metadata.resource_version,
        timeout=10,
    )
    assert kind == "DELETED"


def test_an_image_can_carry_paths_of_its_own(kubesim: Kubesim, kube_namespace: str) -> None:
    """A test stands in for an image's contents (a conda env's python) without touching the host."""
    image = f"registry.example.com/team/{kube_namespace}:1"
    interpreter = "/opt/conda/envs/geo/bin/python"
    kubesim.provide_image_paths(image, {interpreter: sys.executable})
    code = "import sys; print('running', sys.argv[0] or 'python')"
    with api_client(kubesim.kubeconfig) as api:
        core = client.CoreV1Api(api)
        spec = {"restartPolicy": "Never"}
        core.create_namespaced_pod(
            kube_namespace, pod("carries", image, interpreter, "-c", code, **spec)
        )
        core.create_namespaced_pod(
            kube_namespace, pod("lacks", "busybox:1", interpreter, "-c", code, **spec)
        )
        wait_for_pod(core, kube_namespace, "carries", phase("Succeeded"))
        assert "running" in core.read_namespaced_pod_log("carries", kube_namespace)
        _, lacks = wait_for_pod(core, kube_namespace, "lacks", phase("Failed"))
    (status,) = lacks.status.container_statuses
    assert status.state.terminated.reason == "StartError"
    assert not os.path.exists(interpreter), "the host's filesystem must not change"
