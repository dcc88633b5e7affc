"""Kubernetes `Status` answers turned into jkctl errors a user can read.

When the API server says no it sends a `Status` object (reason, code,
message, details). This module is the one place that maps it onto
:mod:`jkctl.errors`:

    NotFound                      -> KubeNotFound
    AlreadyExists, Conflict       -> KubeConflict
    Invalid                       -> KubeInvalid (the causes in ``context``)
    Forbidden                     -> KubeForbidden, or QuotaExceeded for "exceeded quota"
    Unauthorized                  -> KubeUnauthorized
    Expired, Gone                 -> KubeGone
    5xx, 429, Timeout             -> KubeUnavailable
    anything else                 -> KubeError

Each message says in plain words what Kubernetes refused and why; the
server's own wording goes into ``context`` and the whole `Status` stays on
``error.status`` for callers that branch on it. Pure functions: no I/O.
Network failures (no answer at all) are :mod:`jkctl.kube.connection`'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict, cast

from jkctl.errors import (
    KubeConflict,
    KubeError,
    KubeForbidden,
    KubeGone,
    KubeInvalid,
    KubeNotFound,
    KubeUnauthorized,
    KubeUnavailable,
    QuotaExceeded,
)


class StatusCause(TypedDict, total=False):
    reason: str
    message: str
    field: str


class StatusDetails(TypedDict, total=False):
    name: str
    group: str
    kind: str
    uid: str
    causes: list[StatusCause]
    retryAfterSeconds: int


class Status(TypedDict, total=False):
    """`meta/v1 Status`, as the API server sends it with every failure."""

    kind: str
    apiVersion: str
    metadata: dict[str, Any]
    status: str
    message: str
    reason: str
    details: StatusDetails
    code: int


@dataclass(frozen=True, kw_only=True)
class Action:
    """What jkctl asked for, so that a refusal can say what was refused."""

    verb: str
    resource: str
    subresource: str | None = None
    name: str | None = None
    namespace: str | None = None

    def target(self, *, verb: str | None = None, resource: str | None = None) -> str:
        """`create pods/portforward "k-1" in namespace "geo"`, for messages."""
        what = resource or (
            f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        )
        named = f' "{self.name}"' if self.name else ""
        where = f' in namespace "{self.namespace}"' if self.namespace else ""
        return f"{verb or self.verb} {what}{named}{where}"


_REASON_BY_CODE = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}

_RBAC = re.compile(r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]*)"')
_QUOTA = re.compile(
    r"exceeded quota: (?P<quota>[^,]+), requested: (?P<requested>.*?), "
    r"used: (?P<used>.*?), limited: (?P<limited>.*)$"
)


def parse_status(code: int, body: bytes) -> Status:
    """The `Status` in an error response, or one made up from the HTTP code.

    Proxies and load balancers in front of an API server answer with HTML or
    plain text; those become a Status too, so callers handle one shape.
    """
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and decoded.get("kind") == "Status":
        status = cast(Status, decoded)
        status.setdefault("code", code)
        return status
    text = body.decode("utf-8", "replace").strip()
    if len(text) > 200:
        text = text[:200] + "…"
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": _REASON_BY_CODE.get(code, ""),
        "message": text or f"HTTP {code}",
    }


def error_from_status(status: Status, *, action: Action, server: str, context: str) -> KubeError:
    """The most specific jkctl error for a failed request.

    ``server`` and ``context`` name the API server and kubeconfig context, for
    the messages that are about the connection rather than the object.
    """
    code = status.get("code", 0)
    reason = status.get("reason") or _REASON_BY_CODE.get(code, "")
    if reason in _OBJECT_ERRORS:
        return _OBJECT_ERRORS[reason](status, action)
    said = status.get("message", "")
    if reason == "Unauthorized":
        return KubeUnauthorized(
            f"the Kubernetes API server at {server} rejected the credentials of context "
            f'"{context}"',
            hint="log in again (refresh the credentials in your kubeconfig, for example with "
            "your cloud's get-credentials command) and retry",
            context=said,
            status=status,
        )
    if reason in ("Expired", "Gone"):
        return KubeGone(
            f"Kubernetes no longer has the history needed to {action.target()}",
            hint="list again and watch from the new resourceVersion",
            context=said,
            status=status,
        )
    if code >= 500 or reason in ("ServerTimeout", "Timeout", "TooManyRequests"):
        return KubeUnavailable(
            f"the Kubernetes API server at {server} could not {action.target()} "
            f"({reason or 'HTTP ' + str(code)}: {said})",
            hint="wait a moment and retry; if it persists the cluster is overloaded or down",
            status=status,
        )
    return KubeError(
        f"Kubernetes rejected the request to {action.target()}: {said}",
        hint="this looks like a bug in jkctl; please report it with the --debug output",
        context=f"HTTP {code} {reason}".strip(),
        status=status,
    )


def _not_found(status: Status, action: Action) -> KubeNotFound:
    details = status.get("details", {})
    kind = details.get("kind") or action.resource
    name = details.get("name") or action.name
    if kind == "namespaces":
        message = f'namespace "{name}" does not exist'
        hint = "check the namespace (kubectl get namespaces) or pick another with --namespace"
    else:
        named = f' "{name}"' if name else ""
        where = f' in namespace "{action.namespace}"' if action.namespace else ""
        message = f"Kubernetes has no {kind}{named}{where}"
        hint = f"it may have been deleted; see what exists with kubectl get {kind}" + (
            f" -n {action.namespace}" if action.namespace else ""
        )
    return KubeNotFound(message, hint=hint, context=status.get("message"), status=status)


def _conflict(status: Status, action: Action) -> KubeConflict:
    details = status.get("details", {})
    kind = details.get("kind") or action.resource
    name = details.get("name") or action.name
    where = f' in namespace "{action.namespace}"' if action.namespace else ""
    if status.get("reason") == "AlreadyExists":
        message = f'{kind} "{name}" already exists{where}'
        hint = "pick another name, or delete the existing one first"
    else:
        message = f'{kind} "{name}"{where} was changed by someone else at the same time'
        hint = "read it again and retry the change"
    return KubeConflict(message, hint=hint, context=status.get("message"), status=status)


def _invalid(status: Status, action: Action) -> KubeInvalid:
    details = status.get("details", {})
    causes = details.get("causes", [])
    listed = "; ".join(
        f"{cause.get('field', '?')}: {cause.get('message', cause.get('reason', ''))}"
        for cause in causes
    )
    kind = details.get("kind") or action.resource
    name = details.get("name") or action.name
    named = f' "{name}"' if name else ""
    return KubeInvalid(
        f"Kubernetes rejected {kind}{named} as invalid: {listed or status.get('message', '')}",
        hint="fix the fields named above in the pod template or launch parameters",
        context=status.get("message"),
        status=status,
    )


def _forbidden(status: Status, action: Action) -> KubeForbidden:
    said = status.get("message", "")
    quota = _QUOTA.search(said)
    if quota is not None:
        return QuotaExceeded(
            f"Kubernetes refused to {action.target()}: it would exceed the ResourceQuota "
            f'"{quota["quota"]}" (requested {quota["requested"]}, used {quota["used"]}, '
            f"limited {quota['limited']})",
            hint="stop kernels you no longer need or ask for fewer resources; "
            "a namespace admin can raise the quota",
            context=said,
            status=status,
        )
    rbac = _RBAC.search(said)
    if rbac is not None:
        target = action.target(verb=rbac["verb"], resource=rbac["resource"])
        where = f" -n {action.namespace}" if action.namespace else ""
        return KubeForbidden(
            f'Kubernetes refused to {target}: user "{rbac["user"]}" lacks permission',
            hint=f"ask a cluster admin for a Role that allows it (check with: kubectl auth can-i "
            f"{rbac['verb']} {rbac['resource']}{where}), or use a namespace where you have it",
            context=said,
            status=status,
        )
    # Admission plugins (PodSecurity, policy engines) say why after "is forbidden: ".
    _, _, why = said.partition("is forbidden: ")
    return KubeForbidden(
        f"Kubernetes refused to {action.target()}: {why or said or 'you lack permission'}",
        hint="change the request to satisfy the namespace's policy, or ask its admin",
        context=said,
        status=status,
    )


_OBJECT_ERRORS: dict[str, Callable[[Status, Action], KubeError]] = {
    "NotFound": _not_found,
    "AlreadyExists": _conflict,
    "Conflict": _conflict,
    "Invalid": _invalid,
    "Forbidden": _forbidden,
}
