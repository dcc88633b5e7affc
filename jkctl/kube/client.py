"""The async Kubernetes API client: JSON verbs, watches, log streams and websockets.

One :class:`KubeClient` owns one aiohttp session for one cluster (`async
with KubeClient(login) as kube:`). It logs in through a
:class:`~jkctl.kube.login.Login` (in a thread, since plugins block), sends
every request with those credentials, and on a 401 logs in again once and
retries — expired exec-plugin and OIDC tokens renew themselves that way. An
exec credential that says when it expires is renewed before it does.

Failures leave this module only as :mod:`jkctl.errors` types: API answers
through :func:`.status.error_from_status`, network trouble through
:func:`.connection.unavailable_error`. Timeouts are per request (connect +
answer for JSON verbs; connect + headers for streams); a stream's own
lifetime is the caller's business (watches end with ``timeoutSeconds``).

Not here: retries of anything but 401 (callers decide what is safe to
repeat), discovery, object models, pagination (jkctl's lists are small).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self, cast

import aiohttp

from jkctl import __version__
from jkctl.errors import KubeError

from .connection import TRANSPORT_ERRORS, unavailable_error
from .lines import read_lines
from .login import Credentials, Login
from .objects import KubeObject, ObjectList, WatchEvent, parse_watch_line
from .resources import PODS, Resource
from .status import Action, error_from_status, parse_status
from .websocket import KubeWebSocket

Params = Sequence[tuple[str, str]]
#: A JSON patch (RFC 6902): a list of operations.
JsonPatch = list[KubeObject]


@dataclass(frozen=True, kw_only=True)
class KubeSettings:
    """How patient the client is; the defaults suit a laptop on a corporate network."""

    #: A whole JSON request (connect, send, answer), and the opening of a stream.
    request_timeout: float = 30.0
    #: Reaching the server (TCP + TLS), for every connection.
    connect_timeout: float = 10.0
    #: ``timeoutSeconds`` for watches whose caller gives none.
    watch_timeout: int = 300
    #: A watch that stays silent this much longer than its timeoutSeconds is dead.
    watch_grace: float = 30.0
    #: Websocket pings, so idle tunnels survive load balancers; None disables them.
    websocket_heartbeat: float | None = 30.0
    #: How long closing a websocket waits for the server's close frame.
    websocket_close_timeout: float = 2.0
    #: Largest watch event or log line accepted.
    max_line_bytes: int = 16 * 1024 * 1024
    user_agent: str = f"jkctl/{__version__}"


class PatchType(StrEnum):
    MERGE = "application/merge-patch+json"
    STRATEGIC = "application/strategic-merge-patch+json"
    JSON = "application/json-patch+json"


class Propagation(StrEnum):
    FOREGROUND = "Foreground"
    BACKGROUND = "Background"
    ORPHAN = "Orphan"


class KubeClient:
    """An async client for one cluster; use it as ``async with``."""

    def __init__(self, login: Login, *, settings: KubeSettings | None = None) -> None:
        self._login = login
        self._settings = settings or KubeSettings()
        self._credentials: Credentials | None = None
        self._session: aiohttp.ClientSession | None = None
        self._login_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        self._credentials = await asyncio.to_thread(self._login.credentials)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._settings.connect_timeout),
            headers={"User-Agent": self._settings.user_agent},
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            raise RuntimeError("KubeClient is used outside `async with`")
        return self._credentials

    @property
    def namespace(self) -> str:
        """The kubeconfig context's namespace: the default for namespaced calls."""
        return self.credentials.namespace

    # -- JSON verbs --------------------------------------------------------------------

    async def version(self) -> KubeObject:
        """`/version`: the cheapest request that proves the server answers and knows us."""
        return await self.request(Action(verb="get", resource="version"), "GET", "/version")

    async def get(
        self, resource: Resource, name: str, *, namespace: str | None = None
    ) -> KubeObject:
        action, path = self._locate("get", resource, name=name, namespace=namespace)
        return await self.request(action, "GET", path)

    async def list(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        action, path = self._locate(
            "list", resource, namespace=namespace, all_namespaces=all_namespaces
        )
        params = _selectors(label_selector, field_selector)
        found = await self.request(action, "GET", path, params=params)
        kind = str(found.get("kind", "")).removesuffix("List")
        for item in found.get("items") or []:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", resource.api_version)
        found.setdefault("items", [])
        found.setdefault("metadata", {})
        return cast(ObjectList, found)

    async def create(
        self, resource: Resource, body: KubeObject, *, namespace: str | None = None
    ) -> KubeObject:
        name = body.get("metadata", {}).get("name")
        action, path = self._locate("create", resource, namespace=namespace)
        if name:
            action = Action(
                verb="create", resource=resource.plural, name=name, namespace=action.namespace
            )
        return await self.request(action, "POST", path, body=body)

    async def replace(
        self, resource: Resource, name: str, body: KubeObject, *, namespace: str | None = None
    ) -> KubeObject:
        action, path = self._locate("update", resource, name=name, namespace=namespace)
        return await self.request(action, "PUT", path, body=body)

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: KubeObject | JsonPatch,
        *,
        namespace: str | None = None,
        patch_type: PatchType = PatchType.MERGE,
        subresource: str | None = None,
    ) -> KubeObject:
        action, path = self._locate(
            "patch", resource, name=name, namespace=namespace, subresource=subresource
        )
        return await self.request(action, "PATCH", path, body=patch, content_type=patch_type)

    async def delete(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        grace_period_seconds: int | None = None,
        propagation: Propagation | None = None,
    ) -> KubeObject:
        """Delete one object; returns what the server returns (the object, or a Status)."""
        action, path = self._locate("delete", resource, name=name, namespace=namespace)
        options: KubeObject = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation is not None:
            options["propagationPolicy"] = str(propagation)
        return await self.request(action, "DELETE", path, body=options)

    async def request(
        self,
        action: Action,
        method: str,
        path: str,
        *,
        params: Params = (),
        body: object = None,
        content_type: str = "application/json",
    ) -> KubeObject:
        """One JSON request; the verbs above are this with the path worked out."""
        data = None if body is None else json.dumps(body).encode()
        session = self._open_session()
        timeout = self._settings.request_timeout
        for attempt in range(2):
            credentials = await self._fresh_credentials()
            try:
                async with (
                    asyncio.timeout(timeout),
                    session.request(
                        method,
                        credentials.server.rstrip("/") + path,
                        params=params,
                        data=data,
                        headers=_headers(credentials, content_type if data is not None else None),
                        **_transport(credentials),
                    ) as response,
                ):
                    code = response.status
                    answer = await response.read()
            except TRANSPORT_ERRORS as exc:
                raise unavailable_error(
                    exc, server=credentials.server, action=action, timeout=timeout
                ) from exc
            if code == 401 and attempt == 0:
                await self._relogin(credentials)
                continue
            if code >= 400:
                raise self._refusal(parse_status(code, answer), action, credentials)
            return _json_object(answer, credentials=credentials, action=action)
        raise AssertionError("unreachable: the second attempt always returns or raises")

    # -- streams -----------------------------------------------------------------------

    @asynccontextmanager
    async def watch(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncIterator[AsyncIterator[WatchEvent]]:
        """Watch a collection: ``async with kube.watch(PODS) as events: async for e in events``.

        The iteration ends when the server ends the watch (after
        ``timeoutSeconds``); a too-old ``resource_version`` raises KubeGone.
        """
        action, path = self._locate(
            "watch", resource, namespace=namespace, all_namespaces=all_namespaces
        )
        seconds = timeout_seconds or self._settings.watch_timeout
        params = [("watch", "1"), ("timeoutSeconds", str(seconds))]
        if allow_bookmarks:
            params.append(("allowWatchBookmarks", "true"))
        if resource_version is not None:
            params.append(("resourceVersion", resource_version))
        params.extend(_selectors(label_selector, field_selector))
        idle = seconds + self._settings.watch_grace
        async with self._stream(action, path, params) as (response, credentials):
            lines = read_lines(
                response.content,
                limit=self._settings.max_line_bytes,
                idle=idle,
                server=credentials.server,
                action=action,
            )
            events = _events(lines, action=action, credentials=credentials)
            try:
                yield events
            finally:
                await events.aclose()
                await lines.aclose()

    @asynccontextmanager
    async def pod_log(
        self,
        name: str,
        *,
        namespace: str | None = None,
        container: str | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
        previous: bool = False,
    ) -> AsyncIterator[AsyncIterator[str]]:
        """A pod's log, line by line (without the newline); ``follow`` keeps it open."""
        action, path = self._locate("get", PODS, name=name, namespace=namespace, subresource="log")
        params: list[tuple[str, str]] = []
        if container is not None:
            params.append(("container", container))
        if follow:
            params.append(("follow", "true"))
        if tail_lines is not None:
            params.append(("tailLines", str(tail_lines)))
        if previous:
            params.append(("previous", "true"))
        async with self._stream(action, path, params) as (response, credentials):
            lines = read_lines(
                response.content,
                limit=self._settings.max_line_bytes,
                idle=None,
                server=credentials.server,
                action=action,
            )
            text = _decoded(lines)
            try:
                yield text
            finally:
                await text.aclose()
                await lines.aclose()

    @asynccontextmanager
    async def websocket(
        self,
        resource: Resource,
        name: str,
        *,
        subresource: str,
        namespace: str | None = None,
        params: Params = (),
        protocols: Sequence[str] = ("v4.channel.k8s.io",),
    ) -> AsyncIterator[KubeWebSocket]:
        """A websocket to a subresource (`pods/portforward`, `pods/exec`), closed on exit."""
        action, path = self._locate(
            "create", resource, name=name, namespace=namespace, subresource=subresource
        )
        session = self._open_session()
        timeout = self._settings.request_timeout
        for attempt in range(2):
            credentials = await self._fresh_credentials()
            try:
                async with asyncio.timeout(timeout):
                    ws = await session.ws_connect(
                        credentials.server.rstrip("/") + path,
                        params=params,
                        protocols=protocols,
                        headers=_headers(credentials, None),
                        heartbeat=self._settings.websocket_heartbeat,
                        timeout=aiohttp.ClientWSTimeout(
                            ws_receive=None, ws_close=self._settings.websocket_close_timeout
                        ),
                        max_msg_size=self._settings.max_line_bytes,
                        **_transport(credentials),
                    )
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status == 401 and attempt == 0:
                    await self._relogin(credentials)
                    continue
                status = parse_status(exc.status, b"")
                raise self._refusal(status, action, credentials) from exc
            except TRANSPORT_ERRORS as exc:
                raise unavailable_error(
                    exc, server=credentials.server, action=action, timeout=timeout
                ) from exc
            wrapped = KubeWebSocket(ws, server=credentials.server, action=action)
            try:
                yield wrapped
            finally:
                await wrapped.close()
            return

    @asynccontextmanager
    async def _stream(
        self, action: Action, path: str, params: Params
    ) -> AsyncIterator[tuple[aiohttp.ClientResponse, Credentials]]:
        """An open streaming GET whose status was 2xx; the body is the caller's to read."""
        session = self._open_session()
        timeout = self._settings.request_timeout
        for attempt in range(2):
            credentials = await self._fresh_credentials()
            answer = b""
            try:
                async with asyncio.timeout(timeout):
                    response = await session.get(
                        credentials.server.rstrip("/") + path,
                        params=params,
                        headers=_headers(credentials, None),
                        **_transport(credentials),
                    )
                    if response.status >= 400:
                        try:
                            answer = await response.read()
                        finally:
                            response.release()
            except TRANSPORT_ERRORS as exc:
                raise unavailable_error(
                    exc, server=credentials.server, action=action, timeout=timeout
                ) from exc
            if response.status == 401 and attempt == 0:
                await self._relogin(credentials)
                continue
            if response.status >= 400:
                raise self._refusal(parse_status(response.status, answer), action, credentials)
            try:
                yield response, credentials
            finally:
                response.close()
            return

    # -- credentials -------------------------------------------------------------------

    async def _fresh_credentials(self) -> Credentials:
        credentials = self.credentials
        if credentials.expired():
            credentials = await self._relogin(credentials)
        return credentials

    async def _relogin(self, stale: Credentials) -> Credentials:
        """Log in again, once for all requests that found ``stale`` rejected or expired."""
        async with self._login_lock:
            if self._credentials is stale:
                self._credentials = await asyncio.to_thread(self._login.credentials)
            return self.credentials

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("KubeClient is used outside `async with`")
        return self._session

    def _refusal(self, status: Any, action: Action, credentials: Credentials) -> KubeError:
        return error_from_status(
            status, action=action, server=credentials.server, context=credentials.context
        )

    def _locate(
        self,
        verb: str,
        resource: Resource,
        *,
        name: str | None = None,
        namespace: str | None = None,
        all_namespaces: bool = False,
        subresource: str | None = None,
    ) -> tuple[Action, str]:
        if not resource.namespaced or all_namespaces:
            namespace = None
        else:
            namespace = namespace or self.namespace
        action = Action(
            verb=verb,
            resource=resource.plural,
            subresource=subresource,
            name=name,
            namespace=namespace,
        )
        return action, resource.path(namespace=namespace, name=name, subresource=subresource)


def _headers(credentials: Credentials, content_type: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if credentials.authorization:
        headers["Authorization"] = credentials.authorization
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


def _transport(credentials: Credentials) -> dict[str, Any]:
    """TLS, SNI override and proxy for one request, from the current credentials."""
    options: dict[str, Any] = {"ssl": credentials.tls if credentials.tls is not None else True}
    if credentials.tls_server_name:
        options["server_hostname"] = credentials.tls_server_name
    if credentials.proxy:
        options["proxy"] = credentials.proxy
    return options


def _selectors(label_selector: str | None, field_selector: str | None) -> list[tuple[str, str]]:
    params = []
    if label_selector:
        params.append(("labelSelector", label_selector))
    if field_selector:
        params.append(("fieldSelector", field_selector))
    return params


def _json_object(answer: bytes, *, credentials: Credentials, action: Action) -> KubeObject:
    try:
        decoded = json.loads(answer)
    except ValueError as exc:
        decoded = exc
    if not isinstance(decoded, dict):
        raise KubeError(
            f"the Kubernetes API server at {credentials.server} answered a request to "
            f"{action.target()} with something that is not a JSON object",
            hint="check that the kubeconfig's server URL is the API server's, not a web page",
            context=answer[:200].decode("utf-8", "replace"),
        )
    return decoded


async def _events(
    lines: AsyncIterator[bytes], *, action: Action, credentials: Credentials
) -> AsyncGenerator[WatchEvent, None]:
    async for line in lines:
        yield parse_watch_line(
            line, action=action, server=credentials.server, context=credentials.context
        )


async def _decoded(lines: AsyncIterator[bytes]) -> AsyncGenerator[str, None]:
    async for line in lines:
        yield line.decode("utf-8", "replace")
