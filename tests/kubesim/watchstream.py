"""Watch over HTTP: newline-delimited JSON events on a chunked 200 response.

As the real server (watch cache) behaves:

- without `resourceVersion` (or with "0") the stream opens with an ADDED
  event per existing object, then follows changes;
- with a resourceVersion it replays what happened after it; one older than
  the history is answered with HTTP 200 and a single ERROR event carrying
  the 410 Expired Status, then the stream ends;
- `timeoutSeconds` ends the stream cleanly; without it the server ends it
  after its own timeout (`watch_timeout`);
- `allowWatchBookmarks=true` adds BOOKMARK events with the current
  resourceVersion every `bookmark_interval` seconds of quiet.

When kubectl asks for Tables (`kubectl get -w`), each event's object is a
one-row Table; the column definitions come with the first event only.

Not here: `sendInitialEvents` streaming lists.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from aiohttp import web

from tests.kubesim import tables
from tests.kubesim.requestinfo import is_true
from tests.kubesim.resources import ResourceType
from tests.kubesim.status import ApiError, bad_request
from tests.kubesim.store import Store


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


async def serve(
    request: web.Request,
    store: Store,
    rtype: ResourceType,
    namespace: str | None,
    *,
    bookmark_interval: float,
    watch_timeout: float,
) -> web.StreamResponse:
    query = request.query
    try:
        timeout = float(query["timeoutSeconds"]) if "timeoutSeconds" in query else watch_timeout
    except ValueError:
        raise bad_request(f"invalid timeoutSeconds: {query['timeoutSeconds']}") from None
    bookmarks = is_true(query.get("allowWatchBookmarks"))
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    try:
        watch = store.watch(
            rtype,
            namespace,
            resource_version=query.get("resourceVersion"),
            label_selector=query.get("labelSelector"),
            field_selector=query.get("fieldSelector"),
        )
    except ApiError as exc:
        if exc.code != 410:
            raise
        await response.prepare(request)
        await response.write(_line({"type": "ERROR", "object": exc.status()}))
        await response.write_eof()
        return response
    loop = asyncio.get_running_loop()
    as_table = tables.wants_table(request.headers.get("Accept", ""))
    include = query.get("includeObject") or "Metadata"
    first = True
    async with watch:
        await response.prepare(request)
        end = loop.time() + timeout
        next_bookmark = loop.time() + bookmark_interval if bookmarks else math.inf
        while (now := loop.time()) < end:
            if now >= next_bookmark:
                bookmark = {
                    "kind": rtype.kind,
                    "apiVersion": rtype.api_version,
                    "metadata": {"resourceVersion": str(store.resource_version)},
                }
                await response.write(_line({"type": "BOOKMARK", "object": bookmark}))
                next_bookmark = now + bookmark_interval
                continue
            try:
                async with asyncio.timeout_at(min(end, next_bookmark)):
                    event = await watch.next()
            except TimeoutError:
                continue
            if event is None:
                break
            body = event.to_json()
            if as_table:
                table = tables.to_table(
                    rtype, [body["object"]], str(event.resource_version), include
                )
                if not first:
                    table["columnDefinitions"] = []  # headers travel with the first event only
                body["object"], first = table, False
            await response.write(_line(body))
    await response.write_eof()
    return response
