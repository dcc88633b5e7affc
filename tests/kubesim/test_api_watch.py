"""Watch through the official client: replay from a resourceVersion, selectors, bookmarks, 410."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.kubesim.conftest import InProcess

pytestmark = pytest.mark.kubesim


def cm(name: str, **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": labels}}


def events(stream: Iterator[dict[str, object]], count: int) -> list[tuple[str, str]]:
    seen = []
    for event in stream:
        obj = event["raw_object"]
        seen.append((str(event["type"]), obj["metadata"]["name"]))  # type: ignore[index]
        if len(seen) == count:
            break
    return seen


def test_watch_replays_from_a_list_and_follows(
    admin: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespaced_config_map(kube_namespace, cm("before"))
    listed = core.list_namespaced_config_map(kube_namespace)
    core.create_namespaced_config_map(kube_namespace, cm("a"))
    core.patch_namespaced_config_map("a", kube_namespace, {"data": {"k": "v"}})
    core.delete_namespaced_config_map("a", kube_namespace)
    watcher = watch.Watch()
    stream = watcher.stream(
        core.list_namespaced_config_map,
        kube_namespace,
        resource_version=listed.metadata.resource_version,
        timeout_seconds=10,
    )
    assert events(stream, 3) == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    watcher.stop()


def test_watch_without_resource_version_starts_with_the_current_state(
    admin: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespaced_config_map(kube_namespace, cm("one"))
    core.create_namespaced_config_map(kube_namespace, cm("two"))
    stream = watch.Watch().stream(
        core.list_namespaced_config_map, kube_namespace, timeout_seconds=10
    )
    assert events(stream, 2) == [("ADDED", "one"), ("ADDED", "two")]


def test_watch_with_a_label_selector_sees_objects_leave_it(
    admin: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    start = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    core.create_namespaced_config_map(kube_namespace, cm("k", role="kernel"))
    core.create_namespaced_config_map(kube_namespace, cm("other"))
    core.patch_namespaced_config_map("k", kube_namespace, {"metadata": {"labels": {"role": "x"}}})
    stream = watch.Watch().stream(
        core.list_namespaced_config_map,
        kube_namespace,
        label_selector="role=kernel",
        resource_version=start,
        timeout_seconds=10,
    )
    assert events(stream, 2) == [("ADDED", "k"), ("DELETED", "k")]


def test_watch_timeout_ends_the_stream(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    seen = list(
        watch.Watch().stream(core.list_namespaced_config_map, kube_namespace, timeout_seconds=1)
    )
    assert seen == []


def test_bookmarks_carry_the_current_resource_version(
    sim: InProcess, sim_admin: client.ApiClient
) -> None:
    core = client.CoreV1Api(sim_admin)
    namespace = sim.handle.create_namespace("bookmarks")
    response = core.list_namespaced_config_map(
        namespace, watch=True, allow_watch_bookmarks=True, timeout_seconds=5, _preload_content=False
    )
    try:
        line = response.readline()  # the cluster's bookmark interval is 0.2 s
    finally:
        response.close()
        response.release_conn()
    event = json.loads(line)
    assert event["type"] == "BOOKMARK"
    assert event["object"]["kind"] == "ConfigMap"
    assert (
        int(event["object"]["metadata"]["resourceVersion"])
        >= int(core.list_namespaced_config_map(namespace).metadata.resource_version) - 1
    )


@pytest.fixture
def short_history(tmp_path: pytest.TempPathFactory) -> Iterator[InProcess]:
    from tests.kubesim.conftest import cluster_in_thread

    with cluster_in_thread(tmp_path, watch_history=5) as running:  # type: ignore[arg-type]
        yield running


def test_too_old_resource_version_is_gone(short_history: InProcess) -> None:
    from tests.kubesim.conftest import api_client

    with api_client(short_history.handle.kubeconfig) as api:
        core = client.CoreV1Api(api)
        namespace = short_history.handle.create_namespace("gone")
        start = core.list_namespaced_config_map(namespace).metadata.resource_version
        for index in range(10):
            core.create_namespaced_config_map(namespace, cm(f"c{index}"))
        # On the wire: HTTP 200 and a single ERROR event with the 410 Status, as the watch cache.
        response = core.list_namespaced_config_map(
            namespace, watch=True, resource_version=start, _preload_content=False
        )
        try:
            assert response.status == 200
            lines = response.read().splitlines()
        finally:
            response.release_conn()
        assert len(lines) == 1
        event = json.loads(lines[0])
        assert event["type"] == "ERROR"
        current = core.list_namespaced_config_map(namespace).metadata.resource_version
        assert event["object"] == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            # The history holds the last 5 changes; the one before them is the newest lost.
            "message": f"too old resource version: {start} ({int(current) - 5})",
            "reason": "Expired",
            "code": 410,
        }
        # The client turns it into an ApiException with status 410.
        with pytest.raises(ApiException) as raised:
            for _ in watch.Watch().stream(
                core.list_namespaced_config_map,
                namespace,
                resource_version=start,
                timeout_seconds=5,
            ):
                pass
        assert raised.value.status == 410


def test_watch_as_table_for_kubectl_get_w(admin: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespaced_config_map(kube_namespace, cm("one"))
    core.create_namespaced_config_map(kube_namespace, cm("two"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    method, url, headers, *_ = admin.param_serialize(
        "GET",
        f"/api/v1/namespaces/{kube_namespace}/configmaps",
        query_params=[("watch", "true"), ("timeoutSeconds", "5")],
        header_params={"Accept": accept},
        auth_settings=["BearerToken"],
    )
    response = admin.call_api(method, url, header_params=headers)
    try:
        first, second = (json.loads(response.response.readline()) for _ in range(2))
    finally:
        response.response.release_conn()
    assert first["object"]["kind"] == "Table"
    assert [c["name"] for c in first["object"]["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert first["object"]["rows"][0]["cells"][0] == "one"
    assert second["object"]["columnDefinitions"] == []
    assert second["object"]["rows"][0]["cells"][0] == "two"
