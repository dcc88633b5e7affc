"""``GET /jkctl/v1/pool``: the warm pool's state, and a way to wait until it is full.

Answers ``{"kernelspecs": {NAME: {"size": N, "ready": R, "starting": S}}, "full": bool}``.
With ``?wait=full`` the answer waits until every pool has all its kernels ready,
at most ``timeout`` seconds (default 60, at most 600), and is a 504 if they are
not by then: scripts and benchmarks wait on the event rather than polling. The
pooled kernels' ids are not shown: no client may reach a kernel before it is
handed out.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from aiohttp import web

from jkctl.daemon.appkeys import MANAGER
from jkctl.errors import UsageError
from jkctl.kernels.pool import WarmPool

_WAIT_DEFAULT = 60.0
_WAIT_MAX = 600.0

routes = web.RouteTableDef()


def pool_model(pool: WarmPool) -> dict[str, Any]:
    return {
        "kernelspecs": {name: dataclasses.asdict(status) for name, status in pool.status().items()},
        "full": pool.full,
    }


@routes.get("/jkctl/v1/pool")
async def get_pool(request: web.Request) -> web.Response:
    pool = request.app[MANAGER].pool
    wait = request.query.get("wait")
    if wait is None:
        return web.json_response(pool_model(pool))
    if wait != "full":
        raise UsageError(f"Cannot wait for {wait!r}.", hint="Use ?wait=full.")
    try:
        limit = min(float(request.query.get("timeout", _WAIT_DEFAULT)), _WAIT_MAX)
    except ValueError:
        raise UsageError(
            "The timeout must be a number of seconds.", hint="Use e.g. ?wait=full&timeout=30."
        ) from None
    try:
        async with asyncio.timeout(limit):
            await pool.wait_full()
    except TimeoutError:
        return web.json_response(pool_model(pool), status=504)
    return web.json_response(pool_model(pool))
