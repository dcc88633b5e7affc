"""Reading pod state, and following pods through list, watch, 410 and disconnects."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from jkctl import errors
from jkctl.kube.client import KubeClient
from jkctl.kube.podwatch import (
    FollowSettings,
    PodEvent,
    PodsSynced,
    follow_pods,
    list_pods,
    pod_state,
)

from .fakeapi import FakeApi, status_response, watch_lines

FAST = FollowSettings(backoff_initial=0.05, backoff_max=0.1, watch_timeout=60)


def pod(name: str, version: str, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "geo",
            "uid": f"uid-{name}",
            "resourceVersion": version,
            "labels": {"jkctl.io/kernel": name},
        },
        "spec": {"containers": [{"name": "kernel"}]},
        "status": {"phase": "Pending", **status},
    }


# -- pod_state ------------------------------------------------------------------------


def test_unschedulable_pod() -> None:
    state = pod_state(
        pod(
            "k-1",
            "7",
            conditions=[
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/2 nodes are available: 2 Insufficient memory.",
                }
            ],
        )
    )
    assert state.phase == "Pending"
    assert state.unschedulable == "0/2 nodes are available: 2 Insufficient memory."
    assert state.node is None
    (kernel,) = state.containers
    assert (kernel.name, kernel.state, kernel.reason) == ("kernel", "waiting", None)


def test_image_pull_backoff_and_crash_loop() -> None:
    pulling = pod_state(
        pod(
            "k-1",
            "8",
            containerStatuses=[
                {
                    "name": "kernel",
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": 'Back-off pulling image "nope:1"',
                        }
                    },
                }
            ],
        )
    )
    assert pulling.container("kernel") == pulling.containers[0]
    assert pulling.containers[0].reason == "ImagePullBackOff"
    assert pulling.containers[0].message == 'Back-off pulling image "nope:1"'
    assert pulling.unschedulable is None

    crashing = pod_state(
        pod(
            "k-1",
            "9",
            phase="Running",
            containerStatuses=[
                {
                    "name": "kernel",
                    "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
                }
            ],
        )
    )
    kernel = crashing.containers[0]
    assert (kernel.reason, kernel.restart_count) == ("CrashLoopBackOff", 3)
    assert (kernel.last_reason, kernel.last_exit_code) == ("OOMKilled", 137)


def test_running_and_terminated_and_deleting() -> None:
    obj = pod(
        "k-1",
        "10",
        phase="Running",
        containerStatuses=[
            {"name": "kernel", "ready": True, "state": {"running": {"startedAt": "now"}}}
        ],
    )
    obj["spec"]["nodeName"] = "node-1"
    obj["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    running = pod_state(obj)
    assert (running.node, running.deleting, running.containers[0].ready) == ("node-1", True, True)
    assert running.containers[0].state == "running"
    assert running.raw is obj
    done = pod_state(
        pod(
            "k-1",
            "11",
            phase="Failed",
            reason="DeadlineExceeded",
            containerStatuses=[
                {"name": "kernel", "state": {"terminated": {"reason": "Error", "exitCode": 1}}}
            ],
        )
    )
    assert (done.phase, done.reason) == ("Failed", "DeadlineExceeded")
    assert (done.containers[0].state, done.containers[0].exit_code) == ("terminated", 1)


def test_a_bare_pod_parses() -> None:
    state = pod_state({"metadata": {"name": "x"}})
    assert (state.name, state.phase, state.containers) == ("x", "Unknown", ())


# -- following ------------------------------------------------------------------------


class Script:
    """Scripted list and watch answers for /api/v1/namespaces/geo/pods, in order."""

    def __init__(self, api: FakeApi) -> None:
        self.lists: list[web.Response] = []
        self.watches: list[list[dict[str, Any]] | str] = []
        self.watch_versions: list[str] = []
        self.listed = 0
        api.on("GET", "/api/v1/namespaces/geo/pods", self.answer)

    def list(self, *pods: dict[str, Any], version: str) -> None:
        body = {"kind": "PodList", "metadata": {"resourceVersion": version}, "items": pods}
        self.lists.append(web.json_response(body))

    async def answer(self, request: web.Request) -> web.StreamResponse:
        if "watch" not in request.query:
            self.listed += 1
            return self.lists.pop(0)
        self.watch_versions.append(request.query["resourceVersion"])
        script = self.watches.pop(0) if self.watches else "hang"
        response = web.StreamResponse()
        await response.prepare(request)
        if script == "hang":
            await asyncio.Event().wait()
        if script == "cut":
            assert request.transport is not None
            request.transport.close()
            return response
        assert isinstance(script, list)
        await response.write(watch_lines(*script))
        return response


async def take(events: AsyncIterator[PodEvent | PodsSynced], count: int) -> list[str]:
    """The next ``count`` events, each as "TYPE name@version" or "SYNCED a,b"."""
    seen = []
    async with asyncio.timeout(5):
        for _ in range(count):
            event = await anext(events)
            if isinstance(event, PodsSynced):
                seen.append("SYNCED " + ",".join(sorted(name for _, name in event.pods)))
            else:
                seen.append(f"{event.type} {event.pod.name}@{event.pod.resource_version}")
    return seen


async def test_list_then_watch_from_the_lists_version(api: FakeApi, kube: KubeClient) -> None:
    script = Script(api)
    script.list(pod("a", "5"), pod("b", "6"), version="10")
    script.watches.append(
        [
            {"type": "MODIFIED", "object": pod("a", "11", phase="Running")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}},
            {"type": "DELETED", "object": pod("b", "13")},
            {"type": "ADDED", "object": pod("c", "14")},
        ]
    )
    script.watches.append([{"type": "ADDED", "object": pod("d", "15")}])
    async with follow_pods(kube, label_selector="jkctl.io/kernel", settings=FAST) as events:
        assert await take(events, 6) == [
            "ADDED a@5",
            "ADDED b@6",
            "SYNCED a,b",
            "MODIFIED a@11",
            "DELETED b@13",
            "ADDED c@14",
        ]
        # The first watch ended (its timeout); the next continues from the last version seen.
        assert await take(events, 1) == ["ADDED d@15"]
    assert script.watch_versions == ["10", "14"]
    watch = next(r for r in api.requests if ("watch", "1") in r.query)
    assert ("labelSelector", "jkctl.io/kernel") in watch.query
    assert ("timeoutSeconds", "60") in watch.query


async def test_gone_lists_again_and_reports_the_difference(api: FakeApi, kube: KubeClient) -> None:
    script = Script(api)
    script.list(pod("a", "5"), pod("b", "6"), version="10")
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    script.watches.append([{"type": "ERROR", "object": gone}])
    script.list(pod("a", "5"), pod("c", "20", phase="Running"), version="30")
    script.list(pod("c", "21"), version="40")
    script.watches.append("cut")
    async with follow_pods(kube, settings=FAST) as events:
        assert await take(events, 3) == ["ADDED a@5", "ADDED b@6", "SYNCED a,b"]
        # 410: listed again at once; b went and c came while nobody watched.
        assert await take(events, 3) == ["DELETED b@6", "ADDED c@20", "SYNCED a,c"]
        # The connection dropped: listed again after a back-off.
        assert await take(events, 3) == ["DELETED a@5", "MODIFIED c@21", "SYNCED c"]
    assert script.watch_versions == ["10", "30"]
    assert script.listed == 3


async def test_unreachable_api_is_retried_with_back_off(api: FakeApi, kube: KubeClient) -> None:
    script = Script(api)
    script.lists.append(status_response(503, "ServiceUnavailable", "apiserver is starting"))
    script.lists.append(status_response(503, "ServiceUnavailable", "apiserver is starting"))
    script.list(pod("a", "5"), version="10")
    async with follow_pods(kube, settings=FAST) as events:
        assert await take(events, 2) == ["ADDED a@5", "SYNCED a"]
    assert script.listed == 3


async def test_forbidden_ends_the_iteration(api: FakeApi, kube: KubeClient) -> None:
    script = Script(api)
    script.lists.append(
        status_response(
            403,
            "Forbidden",
            'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the '
            'namespace "geo"',
        )
    )
    async with follow_pods(kube, settings=FAST) as events:
        with pytest.raises(errors.KubeForbidden, match="list pods"):
            await anext(events)


async def test_list_pods_once(api: FakeApi, kube: KubeClient) -> None:
    script = Script(api)
    first = pod("a", "5")
    script.list(first, copy.deepcopy(pod("b", "6")), version="10")
    pods = await list_pods(kube, label_selector="jkctl.io/kernel")
    assert [p.name for p in pods] == ["a", "b"]
    assert pods[0].labels == {"jkctl.io/kernel": "a"}


async def test_a_watch_that_ends_at_once_silently_does_not_spin(
    api: FakeApi, kube: KubeClient
) -> None:
    script = Script(api)
    script.list(pod("a", "5"), version="10")
    script.watches.append([])
    script.list(pod("a", "6"), version="20")
    async with follow_pods(kube, settings=FAST) as events:
        assert await take(events, 4) == ["ADDED a@5", "SYNCED a", "MODIFIED a@6", "SYNCED a"]
    assert script.listed == 2
    assert script.watch_versions == ["10"]
