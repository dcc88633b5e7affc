"""Every way talking to Kubernetes can fail surfaces as a jkctl error, never a library's.

Each case provokes one failure kind for real (a closed port, a name that
does not resolve, a certificate from another CA, a server that hangs or
hangs up) and checks that what escapes jkctl.kube is a JkctlError of the
expected type, with a one-sentence message, a hint, and the library's
exception chained as its cause.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web

from jkctl import errors
from jkctl.kube.client import KubeClient, KubeSettings
from jkctl.kube.login import Credentials, KubeconfigLogin
from jkctl.kube.resources import PODS

from .fakeapi import CountingLogin, FakeApi, status_response
from .kubeconfigs import b64, exec_plugin, exec_user, kubeconfig, write

Scenario = Callable[[Path], Awaitable[object]]

SETTINGS = KubeSettings(request_timeout=0.5, connect_timeout=0.5, max_line_bytes=1024)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def get_pod(credentials: Credentials) -> object:
    async with KubeClient(CountingLogin(lambda _: credentials), settings=SETTINGS) as kube:
        return await kube.get(PODS, "k-1")


async def against(
    api: FakeApi, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> object:
    api.on("GET", "/api/v1/namespaces/geo/pods/k-1", handler)
    return await get_pod(api.credentials())


def tls_server(ca: trustme.CA, *, require_client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if require_client_cert:
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def refused(tmp_path: Path) -> object:
    async with FakeApi() as api:
        return await get_pod(api.credentials(server=f"http://127.0.0.1:{closed_port()}"))


async def stopped_listening(tmp_path: Path) -> object:
    api = FakeApi()
    await api.__aenter__()
    api.json("GET", "/api/v1/namespaces/geo/pods/k-1", {})
    async with KubeClient(CountingLogin(lambda _: api.credentials()), settings=SETTINGS) as kube:
        await kube.get(PODS, "k-1")
        await api.stop()
        return await kube.get(PODS, "k-1")


async def unresolvable(tmp_path: Path) -> object:
    async with FakeApi() as api:
        return await get_pod(api.credentials(server="https://no-such-host.invalid:6443"))


async def untrusted_certificate(tmp_path: Path) -> object:
    async with FakeApi(tls=tls_server(trustme.CA())) as api:
        return await get_pod(api.credentials(tls=trusting(trustme.CA())))


async def client_certificate_missing(tmp_path: Path) -> object:
    ca = trustme.CA()
    async with FakeApi(tls=tls_server(ca, require_client_cert=True)) as api:
        return await get_pod(api.credentials(tls=trusting(ca)))


async def hangs(tmp_path: Path) -> object:
    async def never(request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with FakeApi() as api:
        return await against(api, never)


async def hangs_up_before_answering(tmp_path: Path) -> object:
    async def hang_up(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    async with FakeApi() as api:
        return await against(api, hang_up)


async def hangs_up_mid_body(tmp_path: Path) -> object:
    async def half(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b'{"kind": "Po')
        assert request.transport is not None
        request.transport.close()
        return response

    async with FakeApi() as api:
        return await against(api, half)


async def not_json(tmp_path: Path) -> object:
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>")

    async with FakeApi() as api:
        return await against(api, html)


def status_scenario(code: int, reason: str) -> Scenario:
    async def scenario(tmp_path: Path) -> object:
        async def answer(request: web.Request) -> web.Response:
            return status_response(code, reason, f"{reason} says the server")

        async with FakeApi() as api:
            return await against(api, answer)

    return scenario


async def watch_cut_mid_stream(tmp_path: Path) -> object:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b'{"type": "ADDED", "object": {}}\n{"type": "MOD')
        assert request.transport is not None
        request.transport.close()
        return response

    async with FakeApi() as api:
        api.on("GET", "/api/v1/namespaces/geo/pods", stream)
        async with (
            KubeClient(CountingLogin(lambda _: api.credentials()), settings=SETTINGS) as kube,
            kube.watch(PODS) as events,
        ):
            return [event async for event in events]


async def watch_line_too_long(tmp_path: Path) -> object:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b'{"type": "ADDED", "object": {"x": "' + b"y" * 4096 + b'"}}\n')
        return response

    async with FakeApi() as api:
        api.on("GET", "/api/v1/namespaces/geo/pods", stream)
        async with (
            KubeClient(CountingLogin(lambda _: api.credentials()), settings=SETTINGS) as kube,
            kube.watch(PODS) as events,
        ):
            return [event async for event in events]


async def websocket_send_after_hang_up(tmp_path: Path) -> object:
    async def hang_up(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=["v4.channel.k8s.io"])
        await ws.prepare(request)
        await ws.close()
        return ws

    async with FakeApi() as api:
        api.on("GET", "/api/v1/namespaces/geo/pods/k-1/portforward", hang_up)
        async with (
            KubeClient(CountingLogin(lambda _: api.credentials()), settings=SETTINGS) as kube,
            kube.websocket(PODS, "k-1", subresource="portforward") as ws,
        ):
            assert await ws.receive() is None
            return await ws.send(b"\x00late")


async def websocket_refused(tmp_path: Path) -> object:
    async with FakeApi() as api:
        credentials = api.credentials(server=f"http://127.0.0.1:{closed_port()}")
        login = CountingLogin(lambda _: credentials)
        async with (
            KubeClient(login, settings=SETTINGS) as kube,
            kube.websocket(PODS, "k-1", subresource="portforward"),
        ):
            raise AssertionError("unreachable")


async def exec_plugin_fails(tmp_path: Path) -> object:
    plugin = exec_plugin(tmp_path, fail_with="token expired")
    config = write(tmp_path / "config", kubeconfig(user=exec_user(plugin)))
    async with KubeClient(KubeconfigLogin(paths=(config,))):
        raise AssertionError("unreachable")


async def bad_certificate_data(tmp_path: Path) -> object:
    cluster = {"certificate-authority-data": b64(b"not a certificate")}
    config = write(tmp_path / "config", kubeconfig(cluster=cluster))
    async with KubeClient(KubeconfigLogin(paths=(config,))):
        raise AssertionError("unreachable")


#: name -> (scenario, the error expected, whether a library exception is its cause)
CASES: dict[str, tuple[Scenario, type[errors.JkctlError], bool]] = {
    "connection refused": (refused, errors.KubeUnavailable, True),
    "server stopped listening": (stopped_listening, errors.KubeUnavailable, True),
    "host does not resolve": (unresolvable, errors.KubeUnavailable, True),
    "untrusted server certificate": (untrusted_certificate, errors.KubeUnavailable, True),
    "client certificate missing": (client_certificate_missing, errors.KubeUnavailable, True),
    "server hangs": (hangs, errors.KubeUnavailable, True),
    "hangs up before answering": (hangs_up_before_answering, errors.KubeUnavailable, True),
    "hangs up mid-body": (hangs_up_mid_body, errors.KubeUnavailable, True),
    "answer is not JSON": (not_json, errors.KubeError, False),
    "401": (status_scenario(401, "Unauthorized"), errors.KubeUnauthorized, False),
    "403": (status_scenario(403, "Forbidden"), errors.KubeForbidden, False),
    "404": (status_scenario(404, "NotFound"), errors.KubeNotFound, False),
    "409": (status_scenario(409, "AlreadyExists"), errors.KubeConflict, False),
    "410": (status_scenario(410, "Expired"), errors.KubeGone, False),
    "422": (status_scenario(422, "Invalid"), errors.KubeInvalid, False),
    "500": (status_scenario(500, "InternalError"), errors.KubeUnavailable, False),
    "watch cut mid-stream": (watch_cut_mid_stream, errors.KubeUnavailable, True),
    "watch line too long": (watch_line_too_long, errors.KubeError, False),
    "websocket send after hang-up": (websocket_send_after_hang_up, errors.KubeUnavailable, True),
    "websocket refused": (websocket_refused, errors.KubeUnavailable, True),
    "exec plugin fails": (exec_plugin_fails, errors.ConfigError, False),
    "bad certificate data": (bad_certificate_data, errors.ConfigError, True),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_no_library_exception_escapes(case: str, tmp_path: Path) -> None:
    scenario, expected, chained = CASES[case]
    with pytest.raises(Exception) as caught:  # noqa: PT011 -- the point is to see *any* exception
        async with asyncio.timeout(10):
            await scenario(tmp_path)
    error = caught.value
    assert isinstance(error, errors.JkctlError), f"{type(error).__module__}.{type(error).__name__}"
    assert not isinstance(error, aiohttp.ClientError | ssl.SSLError | OSError | TimeoutError)
    assert type(error) is expected, repr(error)
    assert error.message and "\n" not in error.message
    assert error.message == error.message.strip() and not error.message.endswith(".")
    assert error.hint
    if chained:
        assert error.__cause__ is not None
        assert not isinstance(error.__cause__, errors.JkctlError)
