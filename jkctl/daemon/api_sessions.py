"""The sessions REST API (``/api/sessions``), as Jupyter Server's session handlers.

``GET /api/sessions``, ``POST /api/sessions`` (201; the existing session when
one exists for the path), ``GET|PATCH|DELETE /api/sessions/{id}``. The
storage and rules are in :mod:`jkctl.daemon.sessions`.
"""

from __future__ import annotations

from aiohttp import web

from jkctl.daemon.api_kernels import json_object, read_json
from jkctl.daemon.appkeys import SESSIONS
from jkctl.errors import UsageError

routes = web.RouteTableDef()


@routes.get("/api/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    return web.json_response(request.app[SESSIONS].list())


@routes.post("/api/sessions")
async def create_session(request: web.Request) -> web.Response:
    body = await read_json(request)
    if body is None:
        raise UsageError("No JSON data provided.", hint="Send a session model with path and type.")
    model = json_object(body)
    notebook = model.get("notebook")
    if isinstance(notebook, dict):  # the deprecated form
        model.setdefault("type", "notebook")
        model.setdefault("path", notebook.get("path") or notebook.get("name"))
    path, type_ = model.get("path"), model.get("type")
    for field, value in (("path", path), ("type", type_)):
        if not isinstance(value, str):
            raise UsageError(
                f"Missing field in JSON data: {field}.",
                hint="A session needs a path and a type (notebook, console or file).",
            )
    kernel = model.get("kernel") or {}
    if not isinstance(kernel, dict):
        raise UsageError(
            "The session's kernel must be a JSON object.", hint='Send e.g. {"name": "python3"}.'
        )
    name = model.get("name")
    session = await request.app[SESSIONS].create(
        path=str(path),
        type=str(type_),
        name=name if isinstance(name, str) else None,
        kernel_name=kernel.get("name") or None,
        kernel_id=kernel.get("id") or None,
        env=kernel.get("env"),
    )
    return web.json_response(
        session, status=201, headers={"Location": f"/api/sessions/{session['id']}"}
    )


@routes.get("/api/sessions/{session_id}")
async def get_session(request: web.Request) -> web.Response:
    return web.json_response(request.app[SESSIONS].get(request.match_info["session_id"]))


@routes.patch("/api/sessions/{session_id}")
async def update_session(request: web.Request) -> web.Response:
    body = await read_json(request)
    if body is None:
        raise UsageError("No JSON data provided.", hint="Send the fields to change.")
    changes = json_object(body)
    notebook = changes.get("notebook")
    if isinstance(notebook, dict) and "path" in notebook:
        changes["path"] = notebook["path"]
        changes["type"] = "notebook"
    session = await request.app[SESSIONS].update(request.match_info["session_id"], changes)
    return web.json_response(session)


@routes.delete("/api/sessions/{session_id}")
async def delete_session(request: web.Request) -> web.Response:
    await request.app[SESSIONS].delete(request.match_info["session_id"])
    return web.Response(status=204)
