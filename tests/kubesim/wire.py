"""JSON in and out of the API server: request bodies, object responses, Status errors.

Every response kubesim sends is `application/json` (kubectl and the
`kubernetes` client ask for protobuf or Tables first and accept JSON, as
they do from real servers that lack those). Request bodies may be JSON or
YAML, as the real server accepts both, or the protobuf review bodies
kubectl sends (`protobuf.py`).
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web

from tests.kubesim import protobuf
from tests.kubesim.status import ApiError, bad_request

JSON = "application/json"


def respond(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode() + b"\n",
        status=status,
        content_type=JSON,
    )


def error_response(error: ApiError) -> web.Response:
    return respond(error.status(), error.code)


def not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", details={})


async def read_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return None
    content_type = request.content_type
    if content_type == protobuf.CONTENT_TYPE:
        return protobuf.decode(raw)
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from None


async def read_object(request: web.Request) -> dict[str, Any]:
    body = await read_body(request)
    if not isinstance(body, dict):
        raise bad_request("the body of the request was in an unknown format - expected an object")
    return body
