"""Kubernetes `Status` errors, with the reasons, codes and wording the real API server uses.

Clients (the `kubernetes` package, kubectl, jkctl) branch on `reason` and
`code` and show `message` to users, so each constructor here copies the real
server's phrasing. Raise :class:`ApiError` anywhere in kubesim; the API server
turns it into the HTTP response.
"""

from __future__ import annotations

from typing import Any

from tests.kubesim.resources import ResourceType


class ApiError(Exception):
    """An API failure that becomes a `Status` object on the wire."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(rtype: ResourceType, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": rtype.plural}
    if name:
        details["name"] = name
    if rtype.group:
        details["group"] = rtype.group
    return details


def _qualified(rtype: ResourceType) -> str:
    """`pods` for core types, `daemonsets.apps` for the others, as the server prints them."""
    return f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{_qualified(rtype)} "{name}" not found', details=_details(rtype, name)
    )


def already_exists(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{_qualified(rtype)} "{name}" already exists',
        details=_details(rtype, name),
    )


def conflict(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(rtype)} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        details=_details(rtype, name),
    )


def invalid(rtype: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid; each cause is (field, reason, message), e.g.
    ("spec.containers", "FieldValueRequired", "Required value")."""
    summary = ", ".join(f"{field}: {message}" for field, _, message in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    details = {
        "name": name,
        "kind": rtype.kind,
        "causes": [
            {"reason": reason, "message": message, "field": field}
            for field, reason, message in causes
        ],
    }
    if rtype.group:
        details["group"] = rtype.group
    return ApiError(422, "Invalid", f'{rtype.kind} "{name}" is invalid: {summary}', details=details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(
    user: str,
    verb: str,
    rtype: ResourceType,
    namespace: str | None,
    *,
    name: str | None = None,
    subresource: str | None = None,
) -> ApiError:
    resource = rtype.plural + (f"/{subresource}" if subresource else "")
    target = f'{_qualified(rtype)} "{name}"' if name else _qualified(rtype)
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    message = (
        f'{target} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{rtype.group}"{scope}'
    )
    return ApiError(403, "Forbidden", message, details=_details(rtype, name))


def quota_exceeded(
    rtype: ResourceType, name: str, *, quota: str, requested: str, used: str, limited: str
) -> ApiError:
    message = (
        f'{_qualified(rtype)} "{name}" is forbidden: exceeded quota: {quota}, '
        f"requested: {requested}, used: {used}, limited: {limited}"
    )
    return ApiError(403, "Forbidden", message, details=_details(rtype, name))


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def gone(requested: int, compacted: int) -> ApiError:
    """The watch cache's 410: `compacted` is the newest resourceVersion it can no longer replay
    (its oldest event's, minus one)."""
    return ApiError(410, "Expired", f"too old resource version: {requested} ({compacted})")


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> ApiError:
    accepted = (
        "application/json-patch+json, application/merge-patch+json, "
        "application/apply-patch+yaml, application/strategic-merge-patch+json"
    )
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        f"{accepted} (got {content_type})",
    )
