"""kubesim's API server: HTTPS on 127.0.0.1, authentication, RBAC, routing, and its faults.

Every request goes the real server's way: authenticate the bearer token
(401), derive the request's attributes from its URL and authorize them with
RBAC (403) *before* looking at whether the resource exists, then route to
discovery, the REST verbs, watch, the reviews, the streaming pod
subresources, or `serviceaccounts/token` (`satokens.py`, whose tokens are
accepted beside the static ones). WebSocket upgrades of `pods/portforward`
and `pods/exec` are a GET and so authorized as `get`; like a 1.35 server
(`AuthorizePodWebsocketUpgradeCreatePermission`), kubesim then also
requires `create` on the subresource.

The listener is managed by hand rather than by an aiohttp site so that the
faults can act on it while the process lives:

- `refuse(seconds)`: close the listener and drop every connection; the port
  stays reserved (bound, not listening: connects are refused) and listens
  again after `seconds`;
- `restart()`: the same, reopening at once: every watch, log stream,
  port-forward and keep-alive connection is cut, as when a real API
  server restarts;
- `delay(seconds)`: for the next `seconds`, each request waits `seconds`
  before it is handled;
- `close_portforwards()`: close every port-forward websocket (with a close
  frame) and the pod connections behind it.

Not here: what the verbs do (`rest.py`, `watchstream.py`, `streams.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from tests.kubesim import (
    discovery,
    openapiv2,
    requestinfo,
    resources,
    reviews,
    satokens,
    streams,
    watchstream,
)
from tests.kubesim.certs import ServingCerts
from tests.kubesim.kubelet_protocol import PodStreams
from tests.kubesim.rbac import Attributes, Authorizer
from tests.kubesim.requestinfo import RequestInfo
from tests.kubesim.resources import ResourceType
from tests.kubesim.rest import Call, Rest, check_field_selector
from tests.kubesim.status import ApiError, bad_request, method_not_allowed
from tests.kubesim.store import Store
from tests.kubesim.users import User, Users
from tests.kubesim.wire import error_response, not_found_path, read_object, respond

logger = logging.getLogger(__name__)

_UPGRADE_NEEDS_CREATE = {"portforward", "exec", "attach"}
_HEALTH = {"/healthz", "/livez", "/readyz"}
_MAX_BODY = 3 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class ApiServerConfig:
    port: int = 0  # 0: the system picks one, kept across refuse/restart
    bookmark_interval: float = 60.0
    watch_timeout: float = 1800.0


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


class ApiServer:
    def __init__(
        self,
        *,
        store: Store,
        users: Users,
        certs: ServingCerts,
        kubelet: PodStreams | None,
        config: ApiServerConfig,
    ) -> None:
        self._store = store
        self._users = users
        self._kubelet = kubelet
        self._config = config
        self._authorizer = Authorizer(store)
        self._rest = Rest(store)
        self._tokens = satokens.ServiceAccountTokens(store)
        self._portforwards = streams.PortForwards()
        self._ssl = certs.server_context()
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        self._server: asyncio.Server | None = None
        self._held: socket.socket | None = None
        self._port = config.port
        self._delay_until = 0.0
        self._delay_seconds = 0.0
        self._group: asyncio.TaskGroup | None = None
        self._reopen: asyncio.Task[None] | None = None
        self.listening_changed = asyncio.Condition()  # notified when the listener opens or closes

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._port}"

    @property
    def listening(self) -> bool:
        return self._server is not None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ApiServer]:
        """Listen until the block ends; fault timers live in this block's task group."""
        await self._runner.setup()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                sock = _bind(self._config.port)
                self._port = sock.getsockname()[1]
                await self._listen(sock)
                try:
                    yield self
                finally:
                    if self._reopen is not None:
                        self._reopen.cancel()
                    self._stop_listening(hold=False)
                    self._drop_connections()
        finally:
            self._group = None
            await self._runner.cleanup()

    # -- faults ----------------------------------------------------------------

    async def restart(self) -> None:
        self._cancel_reopen()
        self._stop_listening(hold=True)
        self._drop_connections()
        await self._listen(self._take_held())

    def refuse(self, seconds: float) -> None:
        assert self._group is not None, "the API server is not running"
        self._cancel_reopen()
        self._stop_listening(hold=True)
        self._drop_connections()
        self._reopen = self._group.create_task(self._reopen_after(seconds))

    async def wait_listening(self) -> None:
        """Return once the listener is open (at once if it is; after a `refuse`, when it ends)."""
        async with self.listening_changed:
            await self.listening_changed.wait_for(lambda: self.listening)

    def delay(self, seconds: float) -> None:
        self._delay_seconds = seconds
        self._delay_until = asyncio.get_running_loop().time() + seconds

    def close_portforwards(self) -> int:
        return self._portforwards.close_all()

    @property
    def open_portforwards(self) -> int:
        return self._portforwards.open

    @property
    def portforwards_changed(self) -> asyncio.Condition:
        return self._portforwards.changed

    async def _reopen_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)  # the fault's duration, not a wait for a condition
        await self._listen(self._take_held())

    def _cancel_reopen(self) -> None:
        if self._reopen is not None and not self._reopen.done():
            self._reopen.cancel()
        self._reopen = None

    # -- the listener ----------------------------------------------------------

    async def _listen(self, sock: socket.socket) -> None:
        if self._server is not None:
            sock.close()
            return
        sock.listen(128)
        assert self._runner.server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._runner.server, sock=sock, ssl=self._ssl
        )
        async with self.listening_changed:
            self.listening_changed.notify_all()

    def _stop_listening(self, *, hold: bool) -> None:
        if self._server is not None:
            self._server.close()  # closes the listening socket now
            self._server = None
        if hold and self._held is None:
            self._held = _bind(self._port)  # keeps the port ours; connects are refused
        if not hold and self._held is not None:
            self._held.close()
            self._held = None

    def _take_held(self) -> socket.socket:
        sock, self._held = self._held, None
        return sock if sock is not None else _bind(self._port)

    def _drop_connections(self) -> None:
        if self._runner.server is None:
            return
        for handler in self._runner.server.connections:
            if handler.transport is not None:
                handler.transport.abort()

    # -- requests --------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            if asyncio.get_running_loop().time() < self._delay_until:
                await asyncio.sleep(self._delay_seconds)  # the injected delay itself
            authorization = request.headers.get("Authorization")
            user = self._tokens.authenticate(authorization) or self._users.authenticate(
                authorization
            )
            info = requestinfo.parse(request.method, request.path, request.query)
            self._authorize(request, user, info)
            if not info.is_resource:
                return self._non_resource(request)
            return await self._resource(request, info, user)
        except ApiError as exc:
            return error_response(exc)
        except ConnectionError:
            raise
        except Exception as exc:
            logger.exception("kubesim: %s %s failed", request.method, request.path)
            return error_response(ApiError(500, "InternalError", f"Internal error occurred: {exc}"))

    def _authorize(self, request: web.Request, user: User, info: RequestInfo) -> None:
        attrs = Attributes(
            user=user.name,
            groups=user.effective_groups,
            verb=info.verb,
            is_resource=info.is_resource,
            namespace=info.namespace,
            api_group=info.api_group,
            resource=info.resource,
            subresource=info.subresource,
            name=info.name,
            path=info.path,
        )
        self._authorizer.check(attrs)
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if upgrade and info.verb == "get" and info.subresource in _UPGRADE_NEEDS_CREATE:
            self._authorizer.check(dataclasses.replace(attrs, verb="create"))

    def _non_resource(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise method_not_allowed()
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        document = None
        if path in _HEALTH or path.startswith(tuple(f"{h}/" for h in _HEALTH)):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/version":
            document = discovery.VERSION_INFO
        elif path == "/api":
            document = discovery.api_versions(f"127.0.0.1:{self._port}")
        elif path == "/apis":
            document = discovery.api_group_list()
        elif parts[:1] == ["apis"] and len(parts) == 2:
            document = discovery.api_group(parts[1])
        elif parts[:1] == ["api"] and len(parts) == 2:
            document = discovery.api_resource_list("", parts[1])
        elif parts[:1] == ["apis"] and len(parts) == 3:
            document = discovery.api_resource_list(parts[1], parts[2])
        elif path == "/openapi/v2":
            return web.Response(
                body=openapiv2.document(discovery.openapi_v2_operations()),
                content_type=openapiv2.CONTENT_TYPE,
            )
        elif path == "/openapi/v3":
            document = discovery.openapi_v3_index()
        elif parts[:2] == ["openapi", "v3"] and parts[2:3] == ["api"] and len(parts) == 4:
            document = discovery.openapi_v3_document("", parts[3])
        elif parts[:2] == ["openapi", "v3"] and parts[2:3] == ["apis"] and len(parts) == 5:
            document = discovery.openapi_v3_document(parts[3], parts[4])
        if document is None:
            raise not_found_path()
        return respond(document)

    def _scope(self, rtype: ResourceType, info: RequestInfo) -> str | None:
        if len(info.parts) > 3:
            raise not_found_path()
        if rtype is resources.NAMESPACES:
            return None
        if not rtype.namespaced:
            if info.namespace:
                raise not_found_path()
            return None
        if not info.namespace and info.name:
            raise not_found_path()  # /api/v1/pods/NAME is not a route
        return info.namespace or None

    async def _resource(
        self, request: web.Request, info: RequestInfo, user: User
    ) -> web.StreamResponse:
        rtype = resources.by_plural(info.api_group, info.resource)
        if rtype is None or rtype.version != info.api_version:
            raise not_found_path()
        call = Call(request=request, info=info, rtype=rtype, namespace=self._scope(rtype, info))
        if rtype in resources.REVIEWS:
            if info.verb != "create":
                raise method_not_allowed()
            body = await read_object(request)
            return respond(reviews.review(self._authorizer, user, rtype, body), 201)
        if info.subresource:
            token = rtype is resources.SERVICEACCOUNTS and info.subresource == "token"
            return await (self._token_request if token else self._subresource)(call)
        if info.verb not in rtype.verbs:
            raise method_not_allowed()
        verb = info.verb
        if verb == "watch" or (verb == "list" and requestinfo.is_true(request.query.get("watch"))):
            check_field_selector(rtype, request.query.get("fieldSelector"))
            return await watchstream.serve(
                request,
                self._store,
                rtype,
                call.namespace,
                bookmark_interval=self._config.bookmark_interval,
                watch_timeout=self._config.watch_timeout,
            )
        if verb == "get":
            return self._rest.get(call)
        if verb == "list":
            return self._rest.list(call)
        writers = {
            "create": self._rest.create,
            "update": self._rest.update,
            "patch": self._rest.patch,
            "delete": self._rest.delete,
            "deletecollection": self._rest.deletecollection,
        }
        if verb not in writers:
            raise method_not_allowed()
        return await writers[verb](call)

    async def _token_request(self, call: Call) -> web.StreamResponse:
        if call.info.verb != "create" or call.namespace is None:
            raise method_not_allowed()
        body = await read_object(call.request)
        return respond(self._tokens.request_token(call.namespace, call.info.name, body), 201)

    async def _subresource(self, call: Call) -> web.StreamResponse:
        rtype, info = call.rtype, call.info
        sub, verb = info.subresource, info.verb
        if sub not in rtype.subresources:
            raise not_found_path()
        if sub == "status":
            if verb == "get":
                return self._rest.get(call)
            if verb == "update":
                return await self._rest.update(call)
            if verb == "patch":
                return await self._rest.patch(call)
            raise method_not_allowed()
        if rtype is not resources.PODS:
            raise not_found_path()
        pod = self._store.get(resources.PODS, call.namespace, info.name)
        if sub == "log" and verb == "get":
            return await streams.serve_log(call.request, pod, self._kubelet)
        if sub in ("portforward", "exec") and not (pod.get("spec") or {}).get("nodeName"):
            raise bad_request(f"pod {info.name} does not have a host assigned")
        if sub == "portforward" and verb == "get":
            return await self._portforwards.serve(call.request, pod, self._kubelet)
        if sub == "portforward" and verb == "create":
            raise bad_request("kubesim serves port-forward over websocket (v4.channel.k8s.io) only")
        if sub == "binding" and verb == "create":
            return self._rest.binding(call, await read_object(call.request))
        if sub == "exec":
            raise bad_request("kubesim does not implement pods/exec")
        raise method_not_allowed()
