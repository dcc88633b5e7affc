"""CRUD, lists, selectors, defaults and deletion through the official `kubernetes` client."""

from __future__ import annotations

import base64
import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.kubesim.fixture import Kubesim

pytestmark = pytest.mark.kubesim


# No scheduler serves this name, so these pods stay unscheduled, and untouched by a
# kubelet, however the cluster is set up: these tests are about the API alone.
UNSCHEDULED = "kubesim-api-tests"


def pod_body(name: str, *, image: str = "python:3.11", **labels: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "schedulerName": UNSCHEDULED,
            "containers": [{"name": "main", "image": image, "command": ["sleep", "60"]}],
        },
    }


def status_of(error: ApiException) -> dict[str, object]:
    body: dict[str, object] = json.loads(error.body)
    return body


def test_create_get_list_update_delete_a_configmap(
    admin: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    created = core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "settings"}, "data": {"a": "1"}}
    )
    assert created.metadata.uid and created.metadata.resource_version
    fetched = core.read_namespaced_config_map("settings", kube_namespace)
    assert fetched.data == {"a": "1"}
    fetched.data["b"] = "2"
    updated = core.replace_namespaced_config_map("settings", kube_namespace, fetched)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    listed = core.list_namespaced_config_map(kube_namespace)
    assert [cm.metadata.name for cm in listed.items] == ["settings"]
    assert int(listed.metadata.resource_version) >= int(updated.metadata.resource_version)
    deleted = core.delete_namespaced_config_map("settings", kube_namespace)
    assert deleted["status"] == "Success"
    assert deleted["details"]["name"] == "settings"
    assert deleted["details"]["kind"] == "configmaps"
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_config_map("settings", kube_namespace)
    assert raised.value.status == 404


def test_not_found_and_already_exist_are_real_statuses(
    admin: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod("nowhere", kube_namespace)
    assert raised.value.status == 404
    assert status_of(raised.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nowhere" not found',
        "reason": "NotFound",
        "details": {"name": "nowhere", "kind": "pods"},
        "code": 404,
    }
    core.create_namespaced_pod(kube_namespace, pod_body("twice"))
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod(kube_namespace, pod_body("twice"))
    assert raised.value.status == 409
    assert status_of(raised.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "twice" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "twice", "kind": "pods"},
        "code": 409,
    }


def test_a_pod_without_containers_is_invalid(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod(
            kube_namespace, {"metadata": {"name": "empty"}, "spec": {"containers": []}}
        )
    assert raised.value.status == 422
    assert status_of(raised.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Pod "empty" is invalid: spec.containers: Required value',
        "reason": "Invalid",
        "details": {
            "name": "empty",
            "kind": "Pod",
            "causes": [
                {
                    "reason": "FieldValueRequired",
                    "message": "Required value",
                    "field": "spec.containers",
                }
            ],
        },
        "code": 422,
    }


def test_validation_reports_every_cause(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    bad = {
        "metadata": {"name": "Bad_Name"},
        "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "a"}]},
    }
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod(kube_namespace, bad)
    assert raised.value.status == 422
    causes = {(c["field"], c["reason"]) for c in status_of(raised.value)["details"]["causes"]}  # type: ignore[index]
    assert causes == {
        ("metadata.name", "FieldValueInvalid"),
        ("spec.containers[1].name", "FieldValueDuplicate"),
        ("spec.containers[1].image", "FieldValueRequired"),
    }
    message = str(status_of(raised.value)["message"])
    assert message.startswith(
        'Pod "Bad_Name" is invalid: [metadata.name: Invalid value: "Bad_Name": '
    )
    assert 'spec.containers[1].name: Duplicate value: "a"' in message


def test_undecodable_quantity_and_base64_are_bad_requests(
    admin: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    body = pod_body("greedy")
    body["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "lots"}}  # type: ignore[index]
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod(kube_namespace, body)
    assert raised.value.status == 400
    assert status_of(raised.value)["message"] == (
        'Pod in version "v1" cannot be handled as a Pod: quantities must match the regular '
        "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_secret(
            kube_namespace, {"metadata": {"name": "s"}, "data": {"key": "not base64!"}}
        )
    assert raised.value.status == 400
    assert status_of(raised.value)["message"] == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'
    )


def test_quota_and_limit_range_quantities_are_stored_canonically(
    admin: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespaced_resource_quota(
        kube_namespace,
        {
            "metadata": {"name": "q"},
            "spec": {"hard": {"requests.cpu": "0.5", "requests.memory": "1024Mi", "pods": "1e1"}},
        },
    )
    quota = core.read_namespaced_resource_quota("q", kube_namespace)
    assert quota.spec.hard == {"requests.cpu": "500m", "requests.memory": "1Gi", "pods": "10"}
    core.create_namespaced_limit_range(
        kube_namespace,
        {
            "metadata": {"name": "l"},
            "spec": {"limits": [{"type": "Container", "default": {"cpu": "1000m"}}]},
        },
    )
    (item,) = core.read_namespaced_limit_range("l", kube_namespace).spec.limits
    assert (item.default, item.default_request, item.max) == ({"cpu": "1"}, {"cpu": "1"}, None)
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_limit_range(
            kube_namespace,
            {
                "metadata": {"name": "bad"},
                "spec": {"limits": [{"type": "Container", "max": {"cpu": "2 cores"}}]},
            },
        )
    assert raised.value.status == 400
    assert str(status_of(raised.value)["message"]).startswith(
        'LimitRange in version "v1" cannot be handled as a LimitRange: quantities must match'
    )


def test_pod_defaults_are_the_servers(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    body = pod_body("defaults")
    body["spec"]["containers"].append(  # type: ignore[index]
        {"name": "side", "image": "busybox", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
    )
    pod = admin.sanitize_for_serialization(core.create_namespaced_pod(kube_namespace, body))
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == UNSCHEDULED  # kept; the default is tested below
    assert spec["enableServiceLinks"] is True
    assert spec["serviceAccountName"] == "default"
    main, side = spec["containers"]
    assert main["imagePullPolicy"] == "IfNotPresent"
    assert side["imagePullPolicy"] == "Always"  # untagged means :latest
    assert main["terminationMessagePath"] == "/dev/termination-log"
    assert main["terminationMessagePolicy"] == "File"
    assert side["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}  # copied from limits
    assert pod["status"] == {"phase": "Pending", "qosClass": "Burstable"}
    body = pod_body("default-scheduler")
    del body["spec"]["schedulerName"]  # type: ignore[attr-defined]
    body["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1", "memory": "1Gi"}}  # type: ignore[index]
    created = core.create_namespaced_pod(kube_namespace, body)
    core.delete_namespaced_pod("default-scheduler", kube_namespace, grace_period_seconds=0)
    assert created.spec.scheduler_name == "default-scheduler"
    assert created.status.qos_class == "Guaranteed"


def test_secret_string_data_becomes_data(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    secret = core.create_namespaced_secret(
        kube_namespace,
        {"metadata": {"name": "conn"}, "stringData": {"key": "s3cret"}, "data": {"b": "Yg=="}},
    )
    assert secret.type == "Opaque"
    assert secret.string_data is None
    assert secret.data == {"b": "Yg==", "key": base64.b64encode(b"s3cret").decode()}


def test_label_and_field_selectors(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    for name, role in (("a", "kernel"), ("b", "kernel"), ("c", "other")):
        core.create_namespaced_pod(kube_namespace, pod_body(name, role=role))
    names = lambda pods: sorted(p.metadata.name for p in pods.items)  # noqa: E731
    assert names(core.list_namespaced_pod(kube_namespace, label_selector="role=kernel")) == [
        "a",
        "b",
    ]
    assert names(core.list_namespaced_pod(kube_namespace, label_selector="role in (other)")) == [
        "c"
    ]
    assert names(core.list_namespaced_pod(kube_namespace, label_selector="!role")) == []
    assert names(core.list_namespaced_pod(kube_namespace, field_selector="metadata.name=b")) == [
        "b"
    ]
    assert names(
        core.list_namespaced_pod(kube_namespace, field_selector="status.phase!=Running")
    ) == ["a", "b", "c"]
    with pytest.raises(ApiException) as raised:
        core.list_namespaced_pod(kube_namespace, field_selector="spec.image=x")
    assert raised.value.status == 400
    assert status_of(raised.value)["message"] == "field label not supported: spec.image"


def test_list_pages_with_limit_and_continue(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    for index in range(5):
        core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": f"cm{index}"}})
    first = core.list_namespaced_config_map(kube_namespace, limit=2)
    assert [cm.metadata.name for cm in first.items] == ["cm0", "cm1"]
    assert first.metadata.remaining_item_count == 3
    second = core.list_namespaced_config_map(
        kube_namespace, limit=2, _continue=first.metadata._continue
    )
    assert [cm.metadata.name for cm in second.items] == ["cm2", "cm3"]


def test_stale_update_is_a_conflict(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    first = core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "c"}})
    core.patch_namespaced_config_map("c", kube_namespace, {"data": {"x": "1"}})
    with pytest.raises(ApiException) as raised:
        core.replace_namespaced_config_map("c", kube_namespace, first)
    assert raised.value.status == 409
    assert status_of(raised.value)["reason"] == "Conflict"


def test_patch_kinds(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespaced_pod(kube_namespace, pod_body("p", app="x"))
    # The client sends a strategic merge patch for a dict body.
    patched = core.patch_namespaced_pod(
        "p", kube_namespace, {"metadata": {"annotations": {"lease": "t1"}, "labels": {"app": None}}}
    )
    assert patched.metadata.annotations == {"lease": "t1"}
    assert patched.metadata.labels is None
    # ... and a JSON patch for a list body.
    patched = core.patch_namespaced_pod(
        "p",
        kube_namespace,
        [{"op": "replace", "path": "/metadata/annotations/lease", "value": "t2"}],
    )
    assert patched.metadata.annotations == {"lease": "t2"}
    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_pod(
            "p",
            kube_namespace,
            [{"op": "test", "path": "/metadata/annotations/lease", "value": "no"}],
        )
    assert raised.value.status == 422


def test_pod_spec_is_immutable_but_for_images(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespaced_pod(kube_namespace, pod_body("p"))
    patched = core.patch_namespaced_pod(
        "p", kube_namespace, {"spec": {"containers": [{"name": "main", "image": "python:3.12"}]}}
    )
    assert patched.spec.containers[0].image == "python:3.12"
    assert patched.spec.containers[0].command == ["sleep", "60"]  # merged by name, not replaced
    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_pod("p", kube_namespace, {"spec": {"restartPolicy": "Never"}})
    assert raised.value.status == 422
    assert "pod updates may not change fields other than" in status_of(raised.value)["message"]  # type: ignore[operator]


def test_status_subresource_changes_only_status(
    admin: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespaced_pod(kube_namespace, pod_body("p"))
    core.patch_namespaced_pod_status(
        "p",
        kube_namespace,
        {"metadata": {"labels": {"ignored": "yes"}}, "status": {"phase": "Running"}},
    )
    pod = core.read_namespaced_pod("p", kube_namespace)
    assert pod.status.phase == "Running"
    assert not (pod.metadata.labels or {}).get("ignored")
    # ... and the main resource ignores status.
    stale = core.read_namespaced_pod("p", kube_namespace)
    core.patch_namespaced_pod("p", kube_namespace, {"status": {"phase": "Failed"}})
    assert core.read_namespaced_pod_status("p", kube_namespace).status.phase == "Running"
    core.patch_namespaced_pod("p", kube_namespace, {"metadata": {"labels": {"x": "1"}}})
    with pytest.raises(ApiException) as raised:
        core.replace_namespaced_pod_status("p", kube_namespace, stale)
    assert raised.value.status == 409


def test_unscheduled_pod_is_deleted_at_once(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespaced_pod(kube_namespace, pod_body("p"))
    deleted = core.delete_namespaced_pod("p", kube_namespace)
    assert deleted.metadata.name == "p"
    assert core.list_namespaced_pod(kube_namespace).items == []


def test_scheduled_pod_is_deleted_gracefully(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    body = pod_body("p")
    body["spec"]["terminationGracePeriodSeconds"] = 7  # type: ignore[index]
    core.create_namespaced_pod(kube_namespace, body)
    core.create_namespaced_pod_binding(
        "p",
        kube_namespace,
        {"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "kubesim-node-1"}},
        _preload_content=False,
    )
    marked = core.delete_namespaced_pod("p", kube_namespace)
    assert marked.metadata.deletion_timestamp is not None
    assert marked.metadata.deletion_grace_period_seconds == 7
    assert core.read_namespaced_pod("p", kube_namespace).metadata.deletion_timestamp is not None
    shorter = core.delete_namespaced_pod("p", kube_namespace, grace_period_seconds=2)
    assert shorter.metadata.deletion_grace_period_seconds == 2
    core.delete_namespaced_pod("p", kube_namespace, grace_period_seconds=0)
    assert core.list_namespaced_pod(kube_namespace).items == []


def test_delete_preconditions(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "c"}})
    with pytest.raises(ApiException) as raised:
        core.delete_namespaced_config_map(
            "c", kube_namespace, body=client.V1DeleteOptions(preconditions={"uid": "wrong"})
        )
    assert raised.value.status == 409
    assert "Precondition failed: UID in precondition: wrong" in status_of(raised.value)["message"]  # type: ignore[operator]


def test_deletecollection_by_label(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        core.create_namespaced_config_map(
            kube_namespace, {"metadata": {"name": name, "labels": {"team": team}}}
        )
    core.delete_collection_namespaced_config_map(kube_namespace, label_selector="team=x")
    assert [cm.metadata.name for cm in core.list_namespaced_config_map(kube_namespace).items] == [
        "c"
    ]


def test_namespaces_terminate_then_go(admin: client.ApiClient, kubesim: Kubesim) -> None:
    core = client.CoreV1Api(admin)
    name = kubesim.create_namespace("doomed")
    core.create_namespaced_config_map(name, {"metadata": {"name": "c"}})
    listed = core.list_namespace(field_selector=f"metadata.name={name}")
    watch_from = listed.metadata.resource_version
    marked = core.delete_namespace(name)
    assert marked["status"]["phase"] == "Terminating"
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_config_map(name, {"metadata": {"name": "late"}})
    assert raised.value.status in (403, 404)  # 404 once the controller has finished
    from kubernetes import watch

    seen = []
    for event in watch.Watch().stream(
        core.list_namespace,
        field_selector=f"metadata.name={name}",
        resource_version=watch_from,
        timeout_seconds=10,
    ):
        seen.append(event["type"])
        if event["type"] == "DELETED":
            break
    assert seen[-1] == "DELETED"
    with pytest.raises(ApiException) as raised:
        core.read_namespace(name)
    assert raised.value.status == 404
    with pytest.raises(ApiException) as raised:
        core.delete_namespace("default")
    assert raised.value.status == 403
    assert (
        status_of(raised.value)["message"]
        == 'namespaces "default" is forbidden: this namespace may not be deleted'
    )


def test_a_node_created_with_a_partial_status_reads_back_whole(admin: client.ApiClient) -> None:
    # What `kubectl create -f node.yaml` may send; the client itself refuses to.
    name = "partial-node"
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {
            "nodeInfo": {"kubeletVersion": "v1.35.0"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    method, url, headers, payload, _ = admin.param_serialize(
        "POST",
        "/api/v1/nodes",
        body=body,
        header_params={"Content-Type": "application/json"},
        auth_settings=["BearerToken"],
    )
    created = admin.call_api(method, url, header_params=headers, body=payload)
    created.read()
    assert created.status == 201
    core = client.CoreV1Api(admin)
    try:
        node = next(n for n in core.list_node().items if n.metadata.name == name)
        assert node.status.node_info.kubelet_version == "v1.35.0"
        assert node.status.node_info.machine_id == ""
        assert node.status.daemon_endpoints.kubelet_endpoint.port == 0
    finally:
        core.delete_node(name)
