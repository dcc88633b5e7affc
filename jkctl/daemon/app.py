"""The daemon's aiohttp application: routes, middlewares, and what lives as long as it does.

- Middlewares, outermost first: errors (every failure becomes the JSON error
  model; a :class:`~jkctl.errors.JkctlError` keeps its status, message and
  hint; anything else is a 500 logged with its traceback), then the
  Host/token/Origin guard.
- The cleanup context owns the kernel manager and the culler's task: built
  at startup around the backend it is given (re-attaching the kernels an
  earlier daemon left), and closed at cleanup, which stops the kernels (or
  detaches them, on a backend whose kernels may outlive the daemon, unless
  ``jkctl disconnect --stop-kernels`` asked to stop them).
- On shutdown every open websocket is closed first, so clients hear
  "going away" rather than a reset.

What this module does not do: bind sockets or write state files
(:mod:`jkctl.daemon.server`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web
from aiohttp.typedefs import Handler

from jkctl import paths
from jkctl.backends.base import Backend
from jkctl.daemon import api_jkctl, api_kernels, api_pool, api_sessions, websocket
from jkctl.daemon.appkeys import (
    CONTROL,
    INFO,
    MANAGER,
    SESSIONS,
    SETTINGS,
    WEBSOCKETS,
    DaemonControl,
    DaemonInfo,
)
from jkctl.daemon.auth import guard
from jkctl.daemon.models import error_model
from jkctl.daemon.sessions import SessionStore
from jkctl.daemon.settings import DaemonSettings
from jkctl.errors import JkctlError
from jkctl.kernels.culler import Culler
from jkctl.kernels.manager import KernelManager
from jkctl.kernels.specs import KernelSpecSource

logger = logging.getLogger(__name__)


def make_app(
    *,
    settings: DaemonSettings,
    backend: Backend,
    token: str,
    port: int,
    control: DaemonControl,
    info: DaemonInfo,
) -> web.Application:
    app = web.Application(
        middlewares=[
            errors,
            guard(token=token, port=port, allow_origins=settings.allow_origins),
        ],
        client_max_size=settings.max_message_bytes,
    )
    app[SETTINGS] = settings
    app[CONTROL] = control
    app[INFO] = info
    app[WEBSOCKETS] = weakref.WeakSet()
    app.add_routes(api_jkctl.routes)
    app.add_routes(api_kernels.routes)
    app.add_routes(api_sessions.routes)
    app.add_routes(api_pool.routes)
    app.add_routes(websocket.routes)

    async def kernels(app: web.Application) -> AsyncIterator[None]:
        manager = KernelManager(
            backend=backend,
            specs=KernelSpecSource.standard(
                extra=settings.kernel_templates,
                user_dir=settings.user_kernels_dir,
                bundled_dir=paths.bundled("kernel-templates"),
            ),
            settings=settings.kernel_settings(),
        )
        app[MANAGER] = manager
        app[SESSIONS] = SessionStore(manager)
        culler: asyncio.Task[None] | None = None
        try:
            await manager.open()
            culler = asyncio.create_task(
                Culler(manager.list, settings.cull_settings()).run(), name="culler"
            )
            yield
        finally:
            if culler is not None:
                culler.cancel()
                await asyncio.wait([culler])
                if not culler.cancelled() and culler.exception() is not None:
                    logger.error("the culler failed", exc_info=culler.exception())
            await manager.aclose(stop_kernels=app[CONTROL].stop_kernels)

    app.cleanup_ctx.append(kernels)
    app.on_shutdown.append(_close_websockets)
    return app


async def _close_websockets(app: web.Application) -> None:
    open_sockets = app[WEBSOCKETS]
    for ws in list(open_sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"jkctl daemon shutting down")


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except JkctlError as error:
        if error.http_status >= 500:
            logger.warning("%s %s failed: %s", request.method, request.path, error)
        return web.json_response(error_model(error), status=error.http_status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response(
            {"message": f"{exc.reason}: {request.method} {request.path}.", "reason": exc.reason},
            status=exc.status,
            headers={k: v for k, v in exc.headers.items() if k.lower() == "allow"},
        )
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        problem = JkctlError(
            f"The jkctl daemon failed to handle {request.method} {request.path}.",
            hint="The daemon log (`jkctl status` shows where) has the details.",
        )
        return web.json_response(error_model(problem), status=500)
