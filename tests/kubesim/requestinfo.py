"""What a request is about, read from its method and URL the way the API server reads it.

Authorization happens before routing on a real server, so the verb, API
group, resource, subresource, namespace and name are derived from the URL
alone (`RequestInfoFactory.NewRequestInfo`): GET of a collection is `list`,
GET with `watch=true` is `watch`, DELETE of a collection is
`deletecollection`, and a list with `fieldSelector=metadata.name=x` is
authorized against the name `x`. Everything outside `/api` and `/apis` is a
non-resource request whose verb is the lowercase method.

Not here: whether the resource exists (routing decides, after authorization).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_NAMESPACE_SUBRESOURCES = {"status", "finalize"}
_EXACT_NAME = re.compile(r"^metadata\.name==?([^,]+)$")
_TRUE = {"1", "t", "T", "true", "TRUE", "True"}


@dataclass(frozen=True, kw_only=True)
class RequestInfo:
    is_resource: bool
    path: str
    verb: str
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()

    @property
    def is_collection(self) -> bool:
        return len(self.parts) == 1


def is_true(value: str | None) -> bool:
    """Query-parameter booleans as the server's conversion reads them."""
    return value in _TRUE


def parse(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    segments = [segment for segment in path.strip("/").split("/") if segment]
    non_resource = RequestInfo(is_resource=False, path=path, verb=method.lower())
    if not segments or segments[0] not in ("api", "apis"):
        return non_resource
    prefix = segments[0]
    if prefix == "apis":
        if len(segments) < 3:
            return non_resource
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        if len(segments) < 2:
            return non_resource
        group, version, rest = "", segments[1], segments[2:]
    if not rest:
        return non_resource  # /api/v1 and /apis/g/v are discovery documents
    verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 else ""
    if not name and verb == "get":
        verb = "watch" if is_true(query.get("watch")) else "list"
        if match := _EXACT_NAME.match(query.get("fieldSelector", "")):
            name = match.group(1)
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestInfo(
        is_resource=True,
        path=path,
        verb=verb,
        api_prefix=prefix,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
        parts=tuple(rest),
    )
