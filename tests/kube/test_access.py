"""SelfSubjectAccessReview checks, concurrently, and the one sentence about what is missing."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from jkctl import errors
from jkctl.kube.access import AccessCheck, describe_missing, missing_access, require_access
from jkctl.kube.client import KubeClient

from .fakeapi import FakeApi, status_response

SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

CONNECT_CHECKS = [
    AccessCheck(verb="create", resource="pods"),
    AccessCheck(verb="create", resource="secrets"),
    AccessCheck(verb="create", resource="pods", subresource="portforward"),
    AccessCheck(verb="get", resource="pods", subresource="log"),
    AccessCheck(verb="list", resource="events"),
]


def grant(api: FakeApi, allowed: set[str], *, together: int = 1) -> list[dict[str, str]]:
    """Answer reviews from ``allowed`` ("verb resource/sub"); wait until ``together`` arrive."""
    seen: list[dict[str, str]] = []
    arrived = asyncio.Event()

    async def review(request: web.Request) -> web.Response:
        body = await request.json()
        attributes = body["spec"]["resourceAttributes"]
        seen.append(attributes)
        if len(seen) >= together:
            arrived.set()
        async with asyncio.timeout(5):
            await arrived.wait()  # proves the reviews are in flight at the same time
        target = attributes["resource"] + (
            "/" + attributes["subresource"] if "subresource" in attributes else ""
        )
        body["status"] = {"allowed": f"{attributes['verb']} {target}" in allowed}
        return web.json_response(body, status=201)

    api.on("POST", SSAR, review)
    return seen


async def test_missing_ones_come_back_in_order_and_reviews_run_together(
    api: FakeApi, kube: KubeClient
) -> None:
    seen = grant(api, {"create pods", "create secrets", "list events"}, together=5)
    missing = await missing_access(kube, CONNECT_CHECKS)
    assert missing == [CONNECT_CHECKS[2], CONNECT_CHECKS[3]]
    assert {tuple(sorted(a.items())) for a in seen} >= {
        (
            ("namespace", "geo"),
            ("resource", "pods"),
            ("subresource", "portforward"),
            ("verb", "create"),
        )
    }
    body = json.loads(api.requests[0].body)
    assert body["kind"] == "SelfSubjectAccessReview"
    assert body["apiVersion"] == "authorization.k8s.io/v1"


async def test_everything_allowed(api: FakeApi, kube: KubeClient) -> None:
    grant(api, {str(check) for check in CONNECT_CHECKS})
    assert await missing_access(kube, CONNECT_CHECKS, namespace="other") == []
    await require_access(kube, CONNECT_CHECKS)


async def test_require_access_says_what_is_missing(api: FakeApi, kube: KubeClient) -> None:
    grant(api, {"create pods", "create secrets", "list events"})
    with pytest.raises(errors.KubeForbidden) as caught:
        await require_access(kube, CONNECT_CHECKS)
    assert caught.value.message == (
        "you may not create pods/portforward or get pods/log in namespace geo"
    )
    assert caught.value.hint is not None and "kubectl auth can-i --list -n geo" in caught.value.hint


async def test_a_failing_review_raises_one_jkctl_error(api: FakeApi, kube: KubeClient) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return status_response(500, "InternalError", "webhook down")

    api.on("POST", SSAR, refuse)
    with pytest.raises(errors.KubeUnavailable, match="webhook down"):
        await missing_access(kube, CONNECT_CHECKS)


@pytest.mark.parametrize(
    ("missing", "sentence"),
    [
        ([CONNECT_CHECKS[0]], "you may not create pods in namespace geo"),
        (
            CONNECT_CHECKS[:3],
            "you may not create pods, secrets or pods/portforward in namespace geo",
        ),
        (
            [CONNECT_CHECKS[2], CONNECT_CHECKS[3]],
            "you may not create pods/portforward or get pods/log in namespace geo",
        ),
        (
            [CONNECT_CHECKS[0], CONNECT_CHECKS[1], CONNECT_CHECKS[3], CONNECT_CHECKS[4]],
            "you may not create pods or secrets, get pods/log, or list events in namespace geo",
        ),
        (
            [AccessCheck(verb="create", resource="jobs", group="batch")],
            "you may not create jobs.batch in namespace geo",
        ),
    ],
)
def test_describe_missing(missing: list[AccessCheck], sentence: str) -> None:
    assert describe_missing(missing, namespace="geo") == sentence
