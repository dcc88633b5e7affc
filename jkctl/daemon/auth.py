"""Who may talk to the daemon: Host, token and Origin checks on every request.

- **Host** must be ``127.0.0.1:PORT`` or ``localhost:PORT``: a web page that
  rebinds a DNS name to 127.0.0.1 sends its own name and is refused (403).
- **Token** on every request and websocket upgrade, as Jupyter sends it:
  ``Authorization: token T`` (or ``Bearer T``), or ``?token=T``. Missing or
  wrong: 401. Compared in constant time; never logged.
- **Origin**, when present (browsers always send it on websockets and
  cross-site requests), must be the daemon's own origin or allow-listed
  (``allow_origins``): 403 otherwise, so no other site can drive a kernel.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Collection

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from jkctl.errors import DaemonRefused, DaemonUnauthorized

_AUTH_HEADER = re.compile(r"^(?:token|bearer)\s+(\S+)\s*$", re.IGNORECASE)


def request_token(request: web.Request) -> str | None:
    match = _AUTH_HEADER.match(request.headers.get("Authorization", ""))
    if match:
        return match.group(1)
    return request.query.get("token")


def guard(*, token: str, port: int, allow_origins: Collection[str]) -> Middleware:
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
    origins = {f"http://{host}" for host in hosts} | set(allow_origins)
    expected = token.encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Host", "").lower() not in hosts:
            raise DaemonRefused(
                "This daemon only answers requests addressed to 127.0.0.1 or localhost.",
                hint=f"Use http://127.0.0.1:{port}.",
            )
        given = request_token(request)
        if given is None or not hmac.compare_digest(given.encode(), expected):
            raise DaemonUnauthorized(
                "The request has no valid jkctl token.",
                hint="Send `Authorization: token TOKEN`; `jkctl connect` prints the token "
                "in its `jupyter lab` line.",
            )
        origin = request.headers.get("Origin")
        if origin is not None and origin not in origins:
            raise DaemonRefused(
                f"Requests from the origin {origin} are not allowed.",
                hint="Add it to the daemon's allow_origins setting (JKCTL_ALLOW_ORIGINS) "
                "if you trust it.",
            )
        return await handler(request)

    return check
