"""Admission through the official client: ResourceQuota, LimitRange, namespace lifecycle."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.kubesim

UNSCHEDULED = "kubesim-api-tests"  # no scheduler: pods stay put, whatever runs in the cluster


def status_of(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


def pod(
    name: str, *, requests: dict[str, str] | None = None, limits: dict[str, str] | None = None
) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if requests is not None:
        resources["requests"] = requests
    if limits is not None:
        resources["limits"] = limits
    return {
        "metadata": {"name": name},
        "spec": {
            "schedulerName": UNSCHEDULED,
            "containers": [{"name": "kernel", "image": "python:3.11", "resources": resources}],
        },
    }


def quota(core: client.CoreV1Api, namespace: str, name: str, hard: dict[str, str]) -> None:
    core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": name}, "spec": {"hard": hard}}
    )


def test_exceeding_a_quota_is_forbidden_with_the_real_message(
    admin: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    quota(
        core,
        kube_namespace,
        "compute",
        {"requests.memory": "1Gi", "requests.cpu": "2", "pods": "5"},
    )
    core.create_namespaced_pod(
        kube_namespace, pod("small", requests={"cpu": "500m", "memory": "512Mi"})
    )
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod(
            kube_namespace, pod("big", requests={"cpu": "500m", "memory": "1Gi"})
        )
    assert raised.value.status == 403
    body = status_of(raised.value)
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'pods "big" is forbidden: exceeded quota: compute, requested: requests.memory=1Gi, '
        "used: requests.memory=512Mi, limited: requests.memory=1Gi"
    )
    assert body["details"] == {"name": "big", "kind": "pods"}
    # What fits still fits.
    core.create_namespaced_pod(
        kube_namespace, pod("fits", requests={"cpu": "1", "memory": "512Mi"})
    )


def test_a_quotad_resource_must_be_requested(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    quota(core, kube_namespace, "compute", {"requests.cpu": "2", "limits.memory": "2Gi"})
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod(kube_namespace, pod("bare"))
    assert raised.value.status == 403
    assert status_of(raised.value)["message"] == (
        'pods "bare" is forbidden: failed quota: compute: must specify limits.memory for: kernel; '
        "requests.cpu for: kernel"
    )


def test_gpus_and_pod_counts(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    quota(core, kube_namespace, "gpus", {"requests.nvidia.com/gpu": "1", "count/pods": "2"})
    one_gpu = pod("g1", limits={"nvidia.com/gpu": "1"})
    core.create_namespaced_pod(kube_namespace, one_gpu)
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod(kube_namespace, pod("g2", limits={"nvidia.com/gpu": "1"}))
    assert status_of(raised.value)["message"] == (
        'pods "g2" is forbidden: exceeded quota: gpus, requested: requests.nvidia.com/gpu=1, '
        "used: requests.nvidia.com/gpu=1, limited: requests.nvidia.com/gpu=1"
    )
    core.create_namespaced_pod(kube_namespace, pod("plain"))
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod(kube_namespace, pod("third"))
    assert (
        "exceeded quota: gpus, requested: count/pods=1, used: count/pods=2"
        in status_of(raised.value)["message"]
    )


def test_terminal_pods_stop_counting(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    quota(core, kube_namespace, "pods", {"pods": "1"})
    core.create_namespaced_pod(kube_namespace, pod("done"))
    with pytest.raises(ApiException):
        core.create_namespaced_pod(kube_namespace, pod("next"))
    core.patch_namespaced_pod_status("done", kube_namespace, {"status": {"phase": "Succeeded"}})
    core.create_namespaced_pod(kube_namespace, pod("next"))


def test_quota_status_follows_usage(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    quota(core, kube_namespace, "compute", {"requests.cpu": "4", "pods": "10"})
    created = core.read_namespaced_resource_quota("compute", kube_namespace)
    assert created.status.hard == {"requests.cpu": "4", "pods": "10"}
    assert created.status.used == {"requests.cpu": "0", "pods": "0"}
    core.create_namespaced_pod(kube_namespace, pod("a", requests={"cpu": "1500m"}))
    wanted = {"requests.cpu": "1500m", "pods": "1"}
    for event in watch.Watch().stream(
        core.list_namespaced_resource_quota,
        kube_namespace,
        resource_version=created.metadata.resource_version,
        timeout_seconds=10,
    ):
        if event["raw_object"]["status"].get("used") == wanted:
            break
    assert core.read_namespaced_resource_quota("compute", kube_namespace).status.used == wanted


def test_limit_range_fills_in_container_defaults(
    admin: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespaced_limit_range(
        kube_namespace,
        {
            "metadata": {"name": "defaults"},
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "default": {"cpu": "1", "memory": "1Gi"},
                        "defaultRequest": {"cpu": "250m"},
                        "max": {"cpu": "2"},
                    }
                ]
            },
        },
    )
    stored = core.read_namespaced_limit_range("defaults", kube_namespace).spec.limits[0]
    assert stored.default_request == {"cpu": "250m", "memory": "1Gi"}  # defaulted from default
    created = core.create_namespaced_pod(kube_namespace, pod("k", requests={"memory": "256Mi"}))
    resources = created.spec.containers[0].resources
    assert resources.limits == {"cpu": "1", "memory": "1Gi"}
    assert resources.requests == {"cpu": "250m", "memory": "256Mi"}
    assert created.metadata.annotations["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu request for container kernel; "
        "cpu, memory limit for container kernel"
    )
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod(kube_namespace, pod("huge", limits={"cpu": "3"}))
    assert raised.value.status == 403
    assert status_of(raised.value)["message"] == (
        'pods "huge" is forbidden: maximum cpu usage per Container is 2, but limit is 3'
    )


def test_no_new_content_in_a_terminating_namespace(admin: client.ApiClient, kubesim: Any) -> None:
    core = client.CoreV1Api(admin)
    name = kubesim.create_namespace("terminating")
    core.create_namespaced_pod(name, pod("bound"))
    core.create_namespaced_pod_binding(
        "bound",
        name,
        {"metadata": {"name": "bound"}, "target": {"name": "kubesim-node-1"}},
        _preload_content=False,
    )
    core.delete_namespace(name)  # the bound pod keeps it Terminating: no kubelet removes it here
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_config_map(name, {"metadata": {"name": "late"}})
    assert raised.value.status == 403
    body = status_of(raised.value)
    assert body["message"] == (
        f'configmaps "late" is forbidden: unable to create new content in namespace {name} '
        "because it is being terminated"
    )
    assert body["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    with pytest.raises(ApiException) as raised:
        core.delete_namespace(name)
    assert raised.value.status == 409
    core.delete_namespaced_pod("bound", name, grace_period_seconds=0)
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_config_map("nowhere-at-all", {"metadata": {"name": "c"}})
    assert raised.value.status == 404
    assert status_of(raised.value)["message"] == 'namespaces "nowhere-at-all" not found'


def test_a_jobs_pods_meet_the_quota_and_defaults_of_a_client_create(
    admin: client.ApiClient, kube_namespace: str
) -> None:
    # The Job controller runs inside kubesim, but creates pods as a client of the API would.
    core = client.CoreV1Api(admin)
    quota(core, kube_namespace, "one-pod", {"pods": "1"})
    template = {
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "30"]}],
        }
    }
    client.BatchV1Api(admin).create_namespaced_job(
        kube_namespace,
        {
            "metadata": {"name": "wide"},
            "spec": {"parallelism": 3, "completions": 3, "template": template},
        },
    )
    for event in watch.Watch().stream(
        core.list_namespaced_event, kube_namespace, timeout_seconds=20
    ):
        if event["object"].reason == "FailedCreate":
            refused = event["object"]
            break
    else:
        pytest.fail("the Job controller never failed to create a pod")
    assert refused.involved_object.name == "wide"
    assert re.fullmatch(
        r'Error creating: pods "wide-[a-z0-9]{5}" is forbidden: exceeded quota: one-pod, '
        r"requested: pods=1, used: pods=1, limited: pods=1",
        refused.message,
    ), refused.message
    (created,) = core.list_namespaced_pod(kube_namespace).items
    assert created.spec.termination_grace_period_seconds == 30  # defaulted, as on any create
    assert created.spec.containers[0].image_pull_policy == "IfNotPresent"
