"""The gateway REST API for kernelspecs and kernels, as Jupyter Server serves it.

``GET /api``, ``GET /api/kernelspecs``, ``GET /api/kernelspecs/{name}``,
``GET /kernelspecs/{name}/{file}`` (logos), ``GET|POST /api/kernels``,
``GET|DELETE /api/kernels/{id}``, ``POST /api/kernels/{id}/interrupt`` and
``/restart``. ``POST /api/kernels`` answers once the kernel has answered
``kernel_info``, or with a JSON error saying why it could not start.

The websocket (``/api/kernels/{id}/channels``) is in
:mod:`jkctl.daemon.websocket`, sessions in :mod:`jkctl.daemon.api_sessions`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from jkctl import __version__
from jkctl.daemon.appkeys import CONTROL, MANAGER
from jkctl.daemon.models import KernelspecsModel, kernel_model, kernelspec_model
from jkctl.errors import KernelspecNotFound, UsageError

#: The Jupyter Server REST API level this daemon implements, reported by GET /api.
JUPYTER_SERVER_API_VERSION = "2.14.0"

routes = web.RouteTableDef()


async def read_json(request: web.Request) -> Any:
    """The request's JSON body, or None when it has none; 400 when it is not JSON."""
    body = await request.read()
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"The request body is not valid JSON: {exc}.",
            hint="Send a JSON object, with Content-Type: application/json.",
        ) from exc


def json_object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise UsageError(
            "The request body must be a JSON object.", hint='Send e.g. {"name": "python3"}.'
        )
    return body


@routes.get("/api")
async def api_version(_request: web.Request) -> web.Response:
    return web.json_response({"version": JUPYTER_SERVER_API_VERSION, "jkctl": __version__})


@routes.get("/api/kernelspecs")
async def list_kernelspecs(request: web.Request) -> web.Response:
    source = request.app[MANAGER].specs
    specs = source.all()
    model: KernelspecsModel = {
        "default": source.default(specs),
        "kernelspecs": {name: kernelspec_model(spec) for name, spec in specs.items()},
    }
    return web.json_response(model)


@routes.get("/api/kernelspecs/{name}")
async def get_kernelspec(request: web.Request) -> web.Response:
    spec = request.app[MANAGER].specs.get(request.match_info["name"])
    return web.json_response(kernelspec_model(spec))


@routes.get("/kernelspecs/{name}/{file}")
async def get_kernelspec_resource(request: web.Request) -> web.FileResponse:
    spec = request.app[MANAGER].specs.get(request.match_info["name"])
    path = spec.resource_path(request.match_info["file"])
    if path is None:
        raise KernelspecNotFound(
            f"Kernelspec '{spec.name}' has no resource '{request.match_info['file']}'.",
            hint=f"GET /api/kernelspecs/{spec.name} lists its resources.",
        )
    response = web.FileResponse(path)
    if path.suffix == ".png":
        response.headers["Cache-Control"] = f"max-age={60 * 60 * 24 * 30}"
    return response


@routes.get("/api/kernels")
async def list_kernels(request: web.Request) -> web.Response:
    return web.json_response([kernel_model(kernel) for kernel in request.app[MANAGER].list()])


@routes.post("/api/kernels")
async def start_kernel(request: web.Request) -> web.Response:
    body = json_object(await read_json(request))
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise UsageError(
            "The kernel's name must be a string.", hint='Send e.g. {"name": "python3"}.'
        )
    kernel = await request.app[MANAGER].start_kernel(name=name or None, env=body.get("env"))
    return web.json_response(
        kernel_model(kernel), status=201, headers={"Location": f"/api/kernels/{kernel.id}"}
    )


@routes.get("/api/kernels/{kernel_id}")
async def get_kernel(request: web.Request) -> web.Response:
    kernel = request.app[MANAGER].get(request.match_info["kernel_id"])
    return web.json_response(kernel_model(kernel))


@routes.delete("/api/kernels/{kernel_id}")
async def delete_kernel(request: web.Request) -> web.Response:
    kernel = request.app[MANAGER].get(request.match_info["kernel_id"])
    await kernel.shutdown()
    return web.Response(status=204)


@routes.post("/api/kernels/{kernel_id}/interrupt")
async def interrupt_kernel(request: web.Request) -> web.Response:
    kernel = request.app[MANAGER].get(request.match_info["kernel_id"])
    await kernel.interrupt()
    return web.Response(status=204)


@routes.post("/api/kernels/{kernel_id}/restart")
async def restart_kernel(request: web.Request) -> web.Response:
    kernel = request.app[MANAGER].get(request.match_info["kernel_id"])
    await kernel.restart()
    return web.json_response(kernel_model(kernel))


@routes.post("/jkctl/shutdown")
async def shutdown_daemon(request: web.Request) -> web.Response:
    """Stop the daemon (``jkctl disconnect``); ``{"stop_kernels": true}`` stops kernels too."""
    body = json_object(await read_json(request))
    request.app[CONTROL].stop(stop_kernels=bool(body.get("stop_kernels")))
    return web.json_response({"stopping": True}, status=202)
