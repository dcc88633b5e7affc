"""KubeClient against a real (fake) API server: verbs, streams, re-login, error mapping."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from jkctl import errors
from jkctl.kube.client import KubeClient, PatchType, Propagation
from jkctl.kube.login import KubeconfigLogin
from jkctl.kube.resources import NAMESPACES, PODS

from .fakeapi import CountingLogin, FakeApi, status_response, watch_lines
from .kubeconfigs import b64, exec_plugin, exec_user, kubeconfig, plugin_calls, write

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "k-1", "namespace": "geo"}}


async def test_get_uses_the_context_namespace_and_token(api: FakeApi, kube: KubeClient) -> None:
    api.json("GET", "/api/v1/namespaces/geo/pods/k-1", POD)
    assert await kube.get(PODS, "k-1") == POD
    (request,) = api.requests
    assert request.headers["Authorization"] == "Bearer t0k3n"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("jkctl/")


async def test_list_with_selectors_fills_in_kind(api: FakeApi, kube: KubeClient) -> None:
    api.json(
        "GET",
        "/api/v1/namespaces/other/pods",
        {
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "42"},
            "items": [{"metadata": {"name": "a"}}],
        },
    )
    found = await kube.list(
        PODS, namespace="other", label_selector="jkctl.io/kernel", field_selector="metadata.name=a"
    )
    assert found["metadata"]["resourceVersion"] == "42"
    assert found["items"] == [{"metadata": {"name": "a"}, "kind": "Pod", "apiVersion": "v1"}]
    assert api.requests[0].query == [
        ("labelSelector", "jkctl.io/kernel"),
        ("fieldSelector", "metadata.name=a"),
    ]


async def test_list_all_namespaces_and_cluster_scoped(api: FakeApi, kube: KubeClient) -> None:
    api.json("GET", "/api/v1/pods", {"kind": "PodList", "items": []})
    api.json("GET", "/api/v1/namespaces", {"kind": "NamespaceList", "items": []})
    assert (await kube.list(PODS, all_namespaces=True))["items"] == []
    assert (await kube.list(NAMESPACES, namespace="ignored"))["items"] == []
    assert [r.path for r in api.requests] == ["/api/v1/pods", "/api/v1/namespaces"]


async def test_create_replace_patch_delete_send_the_right_bodies(
    api: FakeApi, kube: KubeClient
) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"echo": await request.json()})

    collection, item = "/api/v1/namespaces/geo/pods", "/api/v1/namespaces/geo/pods/k-1"
    for method, path in [("POST", collection), ("PUT", item), ("PATCH", item), ("DELETE", item)]:
        api.on(method, path, echo)
    assert await kube.create(PODS, POD) == {"echo": POD}
    assert await kube.replace(PODS, "k-1", POD) == {"echo": POD}
    patch = {"metadata": {"annotations": {"a": "b"}}}
    assert await kube.patch(PODS, "k-1", patch) == {"echo": patch}
    await kube.patch(PODS, "k-1", patch, patch_type=PatchType.STRATEGIC)
    ops = [{"op": "add", "path": "/metadata/labels/x", "value": "y"}]
    await kube.patch(PODS, "k-1", ops, patch_type=PatchType.JSON)
    deleted = await kube.delete(
        PODS, "k-1", grace_period_seconds=0, propagation=Propagation.BACKGROUND
    )
    assert deleted["echo"] == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "gracePeriodSeconds": 0,
        "propagationPolicy": "Background",
    }
    content_types = [r.headers.get("Content-Type") for r in api.requests]
    assert content_types == [
        "application/json",
        "application/json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
        "application/json",
    ]
    assert json.loads(api.requests[4].body) == ops


async def test_status_answers_become_jkctl_errors(api: FakeApi, kube: KubeClient) -> None:
    async def forbidden(request: web.Request) -> web.Response:
        return status_response(
            403,
            "Forbidden",
            'pods is forbidden: User "alice" cannot create resource "pods" in API group "" in '
            'the namespace "geo"',
            kind="pods",
        )

    api.on("POST", "/api/v1/namespaces/geo/pods", forbidden)
    with pytest.raises(errors.KubeForbidden) as caught:
        await kube.create(PODS, {"metadata": {}})
    assert caught.value.message == (
        'Kubernetes refused to create pods in namespace "geo": user "alice" lacks permission'
    )
    assert caught.value.status is not None and caught.value.status["code"] == 403
    with pytest.raises(errors.KubeNotFound):
        await kube.get(PODS, "nope")


async def test_not_json_is_a_clear_error(api: FakeApi, kube: KubeClient) -> None:
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>login page</html>", content_type="text/html")

    api.on("GET", "/version", html)
    with pytest.raises(errors.KubeError, match="not a JSON object") as caught:
        await kube.version()
    assert caught.value.context == "<html>login page</html>"


async def test_client_certificate_from_kubeconfig_data_passes_mutual_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    ca.configure_trust(server_tls)
    server_tls.verify_mode = ssl.CERT_REQUIRED
    client = ca.issue_cert("alice@example.test")
    user = {
        "client-certificate-data": b64(client.cert_chain_pems[0].bytes()),
        "client-key-data": b64(client.private_key_pem.bytes()),
    }
    cluster = {"certificate-authority-data": b64(ca.cert_pem.bytes())}
    async with FakeApi(tls=server_tls) as api:
        api.json("GET", "/version", {"gitVersion": "v1.31.0"})
        config = write(tmp_path / "config", kubeconfig(server=api.url, user=user, cluster=cluster))
        async with KubeClient(KubeconfigLogin(paths=(config,))) as kube:
            assert (await kube.version())["gitVersion"] == "v1.31.0"
    assert "Authorization" not in api.requests[0].headers


# -- re-login -------------------------------------------------------------------------


async def test_a_401_logs_in_again_once_and_retries(api: FakeApi, tmp_path: Path) -> None:
    """The exec plugin's first token is already revoked; its second one works."""
    plugin = exec_plugin(tmp_path)
    config = write(tmp_path / "config", kubeconfig(server=api.url, user=exec_user(plugin)))
    api.tokens = {"exec-token-2"}
    api.json("GET", "/version", {"gitVersion": "v1.31.0"})
    async with KubeClient(KubeconfigLogin(paths=(config,))) as kube:
        assert kube.credentials.authorization == "Bearer exec-token-1"
        assert (await kube.version())["gitVersion"] == "v1.31.0"
        assert kube.credentials.authorization == "Bearer exec-token-2"
        assert (await kube.version())["gitVersion"] == "v1.31.0"
    assert plugin_calls(tmp_path) == 2
    assert [r.headers["Authorization"] for r in api.requests] == [
        "Bearer exec-token-1",
        "Bearer exec-token-2",
        "Bearer exec-token-2",
    ]


async def test_concurrent_401s_log_in_again_only_once(api: FakeApi) -> None:
    login = CountingLogin(lambda n: api.credentials(token=f"token-{n}"))
    api.tokens = {"token-2"}
    api.json("GET", "/version", {})
    async with KubeClient(login) as kube:
        await asyncio.gather(*(kube.version() for _ in range(5)))
    assert login.calls == 2


async def test_a_second_401_is_kube_unauthorized(api: FakeApi) -> None:
    login = CountingLogin(lambda n: api.credentials(token=f"token-{n}"))
    api.tokens = {"never"}
    async with KubeClient(login) as kube:
        with pytest.raises(errors.KubeUnauthorized) as caught:
            await kube.version()
    assert login.calls == 2
    assert api.url in caught.value.message and '"fake"' in caught.value.message


async def test_an_expired_exec_credential_is_renewed_before_use(
    api: FakeApi, tmp_path: Path
) -> None:
    plugin = exec_plugin(tmp_path, expires="2001-01-01T00:00:00Z")
    config = write(tmp_path / "config", kubeconfig(server=api.url, user=exec_user(plugin)))
    api.json("GET", "/version", {})
    async with KubeClient(KubeconfigLogin(paths=(config,))) as kube:
        await kube.version()
    assert api.requests[0].headers["Authorization"] == "Bearer exec-token-2"


# -- streams --------------------------------------------------------------------------


async def test_watch_yields_typed_events_and_ends_with_the_stream(
    api: FakeApi, kube: KubeClient
) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(
            watch_lines(
                {"type": "ADDED", "object": POD},
                {"type": "MODIFIED", "object": POD},
            )
        )
        await response.write(b'{"type": "BOOKMARK", "object": {"metadata": ')
        await response.write(b'{"resourceVersion": "9"}}}\n')
        return response

    api.on("GET", "/api/v1/namespaces/geo/pods", stream)
    async with kube.watch(
        PODS, resource_version="5", label_selector="a=b", timeout_seconds=60
    ) as events:
        seen = [event async for event in events]
    assert [event["type"] for event in seen] == ["ADDED", "MODIFIED", "BOOKMARK"]
    assert seen[2]["object"]["metadata"]["resourceVersion"] == "9"
    assert api.requests[0].query == [
        ("watch", "1"),
        ("timeoutSeconds", "60"),
        ("allowWatchBookmarks", "true"),
        ("resourceVersion", "5"),
        ("labelSelector", "a=b"),
    ]


async def test_watch_error_event_is_kube_gone(api: FakeApi, kube: KubeClient) -> None:
    gone = {
        "kind": "Status",
        "code": 410,
        "reason": "Expired",
        "message": "too old resource version: 1 (5)",
    }

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(watch_lines({"type": "ERROR", "object": gone}))
        return response

    api.on("GET", "/api/v1/namespaces/geo/pods", stream)
    async with kube.watch(PODS, resource_version="1") as events:
        with pytest.raises(errors.KubeGone) as caught:
            await anext(events)
    assert caught.value.status == gone


async def test_watch_refused_at_the_start(api: FakeApi, kube: KubeClient) -> None:
    async def gone(request: web.Request) -> web.Response:
        return status_response(410, "Gone", "too old resource version")

    api.on("GET", "/api/v1/namespaces/geo/pods", gone)
    with pytest.raises(errors.KubeGone):
        async with kube.watch(PODS, resource_version="1"):
            pytest.fail("the watch should not open")


async def test_follow_log_streams_lines_and_stops_when_the_caller_does(
    api: FakeApi, kube: KubeClient
) -> None:
    disconnected = asyncio.Event()

    async def log(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first line\nsecond ")
        await response.write(b"line\n")
        try:
            await asyncio.Event().wait()  # follow: never ends by itself
        finally:
            disconnected.set()
        return response

    api.on("GET", "/api/v1/namespaces/geo/pods/k-1/log", log)
    async with kube.pod_log("k-1", follow=True, tail_lines=10, container="kernel") as lines:
        assert await anext(lines) == "first line"
        assert await anext(lines) == "second line"
    async with asyncio.timeout(5):
        await disconnected.wait()
    assert api.requests[0].query == [
        ("container", "kernel"),
        ("follow", "true"),
        ("tailLines", "10"),
    ]


async def test_log_without_follow_ends(api: FakeApi, kube: KubeClient) -> None:
    async def log(request: web.Request) -> web.Response:
        return web.Response(text="a\nb\nlast without newline")

    api.on("GET", "/api/v1/namespaces/geo/pods/k-1/log", log)
    async with kube.pod_log("k-1") as lines:
        assert [line async for line in lines] == ["a", "b", "last without newline"]


# -- websockets -----------------------------------------------------------------------


async def test_websocket_carries_auth_and_protocol(api: FakeApi, kube: KubeClient) -> None:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=["v4.channel.k8s.io"])
        await ws.prepare(request)
        async for message in ws:
            await ws.send_bytes(message.data[::-1])
        return ws

    api.on("GET", "/api/v1/namespaces/geo/pods/k-1/exec", echo)
    async with kube.websocket(PODS, "k-1", subresource="exec", params=[("command", "ls")]) as ws:
        assert ws.protocol == "v4.channel.k8s.io"
        await ws.send(b"\x00abc")
        assert await ws.receive() == b"cba\x00"
    assert api.requests[0].headers["Authorization"] == "Bearer t0k3n"
    assert api.requests[0].query == [("command", "ls")]


async def test_websocket_refusals(api: FakeApi) -> None:
    async def forbidden(request: web.Request) -> web.Response:
        return status_response(403, "Forbidden", "no")

    api.on("GET", "/api/v1/namespaces/geo/pods/k-1/portforward", forbidden)
    login = CountingLogin(lambda n: api.credentials(token=f"token-{n}"))
    api.tokens = {"token-2"}
    async with KubeClient(login) as kube:
        with pytest.raises(errors.KubeForbidden) as caught:
            async with kube.websocket(PODS, "k-1", subresource="portforward"):
                pytest.fail("the websocket should not open")
    assert login.calls == 2, "the 401 made it log in again before the 403"
    assert caught.value.message.startswith(
        'Kubernetes refused to create pods/portforward "k-1" in namespace "geo"'
    )
