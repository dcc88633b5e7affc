from __future__ import annotations

import asyncio

import pytest

from tests.kubesim import resources
from tests.kubesim.selectors import field_matcher, label_matcher
from tests.kubesim.status import ApiError
from tests.kubesim.store import Store


def make_store() -> Store:
    store = Store(history_size=5)
    store.create(resources.NAMESPACES, {"metadata": {"name": "default"}})
    return store


def pod(name: str, **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"containers": []}}


def test_create_stamps_metadata_and_refuses_duplicates() -> None:
    store = make_store()
    created = store.create(resources.PODS, pod("a"))
    meta = created["metadata"]
    assert meta["namespace"] == "default"
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) == store.resource_version
    assert created["kind"] == "Pod" and created["apiVersion"] == "v1"
    with pytest.raises(ApiError) as raised:
        store.create(resources.PODS, pod("a"))
    assert (raised.value.code, raised.value.reason) == (409, "AlreadyExists")
    assert raised.value.message == 'pods "a" already exists'


def test_namespaced_create_needs_the_namespace() -> None:
    store = make_store()
    with pytest.raises(ApiError) as raised:
        store.create(resources.PODS, pod("a"), namespace="nowhere")
    assert raised.value.code == 404
    assert raised.value.message == 'namespaces "nowhere" not found'


def test_generate_name() -> None:
    store = make_store()
    created = store.create(resources.PODS, {"metadata": {"generateName": "kernel-"}})
    assert created["metadata"]["name"].startswith("kernel-")
    assert len(created["metadata"]["name"]) == len("kernel-") + 5


def test_stale_replace_is_a_conflict() -> None:
    store = make_store()
    created = store.create(resources.PODS, pod("a"))
    created["metadata"]["labels"] = {"x": "1"}
    store.replace(resources.PODS, created)
    with pytest.raises(ApiError) as raised:
        store.replace(resources.PODS, created)  # still carries the old resourceVersion
    assert (raised.value.code, raised.value.reason) == (409, "Conflict")


async def test_watch_replays_from_a_resource_version_and_follows() -> None:
    store = make_store()
    first = store.create(resources.PODS, pod("a"))
    store.create(resources.PODS, pod("b"))
    watch = store.watch(
        resources.PODS, "default", resource_version=first["metadata"]["resourceVersion"]
    )
    store.delete(resources.PODS, "default", "a")
    async with asyncio.timeout(5):
        events = [await watch.next() for _ in range(2)]
    assert [(e.type, e.object["metadata"]["name"]) for e in events if e] == [
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]
    watch.close()
    async with asyncio.timeout(5):
        assert await watch.next() is None


async def test_watch_without_resource_version_starts_with_current_objects() -> None:
    store = make_store()
    store.create(resources.PODS, pod("a"))
    watch = store.watch(resources.PODS, "default")
    async with asyncio.timeout(5):
        event = await watch.next()
    assert event is not None
    assert (event.type, event.object["metadata"]["name"]) == ("ADDED", "a")


def test_watch_too_old_is_gone() -> None:
    store = make_store()
    for index in range(10):
        store.create(resources.PODS, pod(f"p{index}"))
    with pytest.raises(ApiError) as raised:
        store.watch(resources.PODS, "default", resource_version="2")
    assert (raised.value.code, raised.value.reason) == (410, "Expired")
    assert raised.value.message.startswith("too old resource version: 2 (")


async def test_selector_watch_sees_objects_enter_and_leave() -> None:
    store = make_store()
    store.create(resources.PODS, pod("a", app="x"))
    watch = store.watch(
        resources.PODS,
        "default",
        resource_version=str(store.resource_version),
        label_selector="app=y",
    )
    store.mutate(
        resources.PODS, "default", "a", lambda obj: obj["metadata"]["labels"].update(app="y")
    )
    store.mutate(
        resources.PODS, "default", "a", lambda obj: obj["metadata"]["labels"].update(app="z")
    )
    async with asyncio.timeout(5):
        types = [await watch.next() for _ in range(2)]
    assert [event.type for event in types if event] == ["ADDED", "DELETED"]


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=x", {"app": "x"}, True),
        ("app==x", {"app": "y"}, False),
        ("app!=x", {}, True),
        ("app in (x, y),tier", {"app": "y", "tier": "a"}, True),
        ("app notin (x)", {"app": "x"}, False),
        ("!app", {"app": "x"}, False),
        ("!app", {}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert label_matcher(selector)({"metadata": {"labels": labels}}) is expected


def test_field_selectors() -> None:
    obj = {"metadata": {"name": "a"}, "status": {"phase": "Running"}}
    assert field_matcher("metadata.name=a,status.phase!=Pending")(obj)
    assert not field_matcher("metadata.name=b")(obj)
    with pytest.raises(ApiError):
        field_matcher("metadata.name~a")
