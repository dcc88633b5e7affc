"""The daemon's own API for the `jkctl` CLI, under ``/jkctl/v1/`` (token-protected like the rest).

The Jupyter gateway API (``/api/...``) is what JupyterLab needs; this is
what `jkctl status` and `jkctl kernels` need beyond it, answered by the
daemon so that the CLI never logs in to Kubernetes when a daemon runs:

- ``GET /jkctl/v1/status``: the daemon (pid, url, uptime, version, log),
  its backend, context and namespace, kernel counts by state, and the
  culling and lease settings;
- ``GET /jkctl/v1/kernels[?all_namespaces=true]``: one row per kernel
  (:class:`~jkctl.kernels.listing.KernelRow`): the daemon's kernels with
  their state, activity and connections, plus pods of this daemon it does
  not serve (ended ones; with ``all_namespaces``, those in other
  namespaces); and the team's quota usage when the namespace has a quota;
- ``GET /jkctl/v1/kernels/{id}[?log_lines=N]``: one kernel described
  (lease, recent Kubernetes events, last log lines, when it would be culled);
- ``GET /jkctl/v1/kernels/{id}/log[?follow=true&tail=N]``: its output as
  text, streamed while ``follow``;
- ``POST /jkctl/v1/kernels/stop`` ``{"ids": [...]}``: stop kernels
  concurrently; answers which stopped and which did not, and why;
- ``GET /jkctl/v1/quota``: the team's quota usage and whether a kernel of
  the default kernelspec would fit now (what `jkctl connect` says).

Kernel ids may be unique prefixes everywhere. Listing reads only what the
daemon knows (the pod watch keeps it current), so it answers during an API
outage; the quota line and ``all_namespaces`` ask the API, within
:data:`QUOTA_TIMEOUT`, and say so in ``notes`` when they could not.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from jkctl import __version__
from jkctl.backends.base import Placement
from jkctl.daemon.api_kernels import json_object, read_json
from jkctl.daemon.appkeys import CONTROL, INFO, MANAGER, SETTINGS
from jkctl.errors import JkctlError, KernelNotFound, UsageError
from jkctl.kernels.culler import cull_deadline
from jkctl.kernels.ids import resolve_kernel_id
from jkctl.kernels.kernel import Kernel
from jkctl.kernels.listing import (
    TeamModel,
    details_model,
    kernel_row,
    placement_row,
    stop_report,
    team_model,
    timestamp,
)

#: How long the optional reads of the API (quota, other namespaces) may take.
QUOTA_TIMEOUT = 3.0
#: Log lines `describe` shows unless asked otherwise.
DESCRIBE_LOG_LINES = 20

routes = web.RouteTableDef()


@routes.get("/jkctl/v1/status")
async def status(request: web.Request) -> web.Response:
    app = request.app
    settings, info, kernels = app[SETTINGS], app[INFO], app[MANAGER].list()
    cull = settings.cull_settings()
    return web.json_response(
        {
            "daemon": {
                "pid": info.pid,
                "url": info.url,
                "uptime_seconds": round(time.time() - info.started, 1),
                "started_at": timestamp(info.started),
                "backend": settings.backend,
                "version": __version__,
                "log_file": info.log_file,
            },
            "context": settings.context,
            "namespace": settings.namespace,
            "kernels": {
                "total": len(kernels),
                "by_state": dict(Counter(str(kernel.state) for kernel in kernels)),
            },
            "culling": {
                "idle_timeout_seconds": cull.idle_timeout,
                "disconnected_timeout_seconds": cull.disconnected_timeout,
            },
            "lease_seconds": settings.lease_seconds if settings.backend == "kubernetes" else None,
        }
    )


@routes.get("/jkctl/v1/kernels")
async def list_kernels(request: web.Request) -> web.Response:
    app = request.app
    settings, manager = app[SETTINGS], app[MANAGER]
    everywhere = _flag(request, "all_namespaces")
    notes: list[str] = []
    rows = [kernel_row(kernel, kernel.handle.placement()) for kernel in manager.list()]
    served = {row["id"] for row in rows}
    others, team = await asyncio.gather(
        _inventory(request, all_namespaces=everywhere, notes=notes), _team(request, notes)
    )
    rows += [placement_row(p) for p in others if p.kernel_id not in served]
    rows.sort(key=lambda row: (row["namespace"] or "", row["created"] or "", row["id"]))
    return web.json_response(
        {
            "source": "daemon",
            "backend": settings.backend,
            "context": settings.context,
            "namespace": None if everywhere else settings.namespace,
            "kernels": rows,
            "team": team,
            "notes": notes,
        }
    )


@routes.get("/jkctl/v1/kernels/{kernel_id}")
async def describe_kernel(request: web.Request) -> web.Response:
    app = request.app
    lines = _int(request, "log_lines", DESCRIBE_LOG_LINES)
    found = await _find(request, request.match_info["kernel_id"])
    if isinstance(found, Kernel):
        details = await found.handle.details(log_lines=lines)
        row = kernel_row(found, details.placement)
        model = details_model(row, details)
        model["cull_at"] = timestamp(cull_deadline(found, app[SETTINGS].cull_settings()))
        return web.json_response(model)
    details = await app[MANAGER].backend.describe(found, log_lines=lines)
    return web.json_response(details_model(placement_row(details.placement), details))


@routes.get("/jkctl/v1/kernels/{kernel_id}/log")
async def kernel_log(request: web.Request) -> web.StreamResponse:
    follow = _flag(request, "follow")
    tail = _int(request, "tail", -1)
    found = await _find(request, request.match_info["kernel_id"])
    last = tail if tail >= 0 else None
    if isinstance(found, Kernel):
        source = found.handle.log(follow=follow, tail=last)
    else:
        source = request.app[MANAGER].backend.log(found, follow=follow, tail=last)
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    async with source as lines:
        await response.prepare(request)
        stop = asyncio.ensure_future(request.app[CONTROL].stop_requested.wait())
        try:
            async for line in _until(lines, stop):
                await response.write(line.encode() + b"\n")
        except ConnectionError:
            return response  # the reader went away
        except JkctlError as error:  # too late for an error response: say it in the text
            await response.write(f"[jkctl] the log ended early: {error.message}\n".encode())
        finally:
            stop.cancel()
    await response.write_eof()
    return response


@routes.post("/jkctl/v1/kernels/stop")
async def stop_kernels(request: web.Request) -> web.Response:
    body = json_object(await read_json(request))
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise UsageError(
            "Say which kernels to stop as a list of ids.", hint='Send e.g. {"ids": ["3f2a"]}.'
        )
    targets = [await _find(request, kernel_id) for kernel_id in ids]
    backend = request.app[MANAGER].backend

    async def stop(target: Kernel | Placement) -> None:
        if isinstance(target, Kernel):
            await target.shutdown()
        else:
            await backend.remove(target)

    results = await asyncio.gather(*(stop(t) for t in targets), return_exceptions=True)
    ids = [target.id if isinstance(target, Kernel) else target.kernel_id for target in targets]
    return web.json_response(stop_report(ids, results))


@routes.get("/jkctl/v1/quota")
async def quota(request: web.Request) -> web.Response:
    """The team's usage, and whether a kernel of the default kernelspec fits now."""
    manager = request.app[MANAGER]
    specs = manager.specs
    spec = specs.get(specs.default(specs.all()))
    async with asyncio.timeout(QUOTA_TIMEOUT):
        usage = await manager.backend.team_usage()
    if usage is None:
        return web.json_response({"team": None, "kernelspec": spec.name, "shortfalls": []})
    resources = spec.pod.resources
    shortfalls = usage.shortfalls(requests=resources.requests, limits=resources.limits)
    return web.json_response(
        {"team": team_model(usage), "kernelspec": spec.name, "shortfalls": shortfalls}
    )


# -- helpers ---------------------------------------------------------------------------


async def _find(request: web.Request, prefix: str) -> Kernel | Placement:
    """A kernel the daemon serves, else one of its backend's inventory (other namespaces
    only with ``all_namespaces``), by unique id prefix."""
    manager = request.app[MANAGER]
    try:
        return manager.find(prefix)
    except KernelNotFound:
        pass
    notes: list[str] = []
    placements = await _inventory(
        request, all_namespaces=_flag(request, "all_namespaces"), notes=notes
    )
    by_id = {p.kernel_id: p for p in placements}
    where = "served by this daemon or found in the cluster"
    return by_id[resolve_kernel_id(prefix, by_id, where=where)]


async def _inventory(
    request: web.Request, *, all_namespaces: bool, notes: list[str]
) -> list[Placement]:
    backend = request.app[MANAGER].backend
    if not all_namespaces:
        return await backend.inventory(all_namespaces=False)
    try:
        async with asyncio.timeout(QUOTA_TIMEOUT * 2):
            return await backend.inventory(all_namespaces=True)
    except TimeoutError:
        notes.append("other namespaces: the Kubernetes API did not answer in time")
    except JkctlError as error:
        notes.append(f"other namespaces: {error.message}")
    return []


async def _team(request: web.Request, notes: list[str]) -> TeamModel | None:
    try:
        async with asyncio.timeout(QUOTA_TIMEOUT):
            usage = await request.app[MANAGER].backend.team_usage()
    except TimeoutError:
        notes.append("quota: the Kubernetes API did not answer in time")
        return None
    except JkctlError as error:
        notes.append(f"quota: {error.message}")
        return None
    return team_model(usage) if usage is not None else None


async def _until(lines: AsyncIterator[str], stop: asyncio.Future[Any]) -> AsyncIterator[str]:
    """``lines`` until they end or ``stop`` is done (the daemon is stopping)."""
    while True:
        line = asyncio.ensure_future(anext(lines))
        try:
            await asyncio.wait([line, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not line.done():
                line.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await line
        if not line.done() or line.cancelled():
            return
        try:
            yield line.result()
        except StopAsyncIteration:
            return


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


def _int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(
            f"The query parameter {name} must be a whole number, not {raw!r}.",
            hint=f"Send e.g. ?{name}=20.",
        ) from None
