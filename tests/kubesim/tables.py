"""Server-side printing: `meta.k8s.io/v1` Tables for `kubectl get`.

kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints
the columns the server chose, so `kubectl get pods` shows READY, STATUS and
RESTARTS only if the server computes them. kubesim does for the types a
person looks at (pods, nodes, namespaces, events, secrets, configmaps,
resource quotas); every other type gets the real default convertor's
columns, Name and Created At.

Not here: `-o wide` columns beyond pods and nodes.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from typing import Any

from tests.kubesim.resources import ResourceType

Obj = dict[str, Any]
Column = tuple[str, str, str, int]  # name, type, format, priority
Row = list[Any]

_NAME: Column = ("Name", "string", "name", 0)
_AGE: Column = ("Age", "string", "", 0)


def wants_table(accept: str) -> bool:
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def human_duration(seconds: float) -> str:  # noqa: PLR0911 - mirrors Go branch for branch
    """`duration.HumanDuration`, the AGE column's format."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y{rest}d" if rest else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    created = calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ"))
    return human_duration(time.time() - created)


def _pod_status(pod: Obj) -> str:
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated"):
            terminated = state["terminated"]
            reason = terminated.get("reason") or (
                f"Signal:{terminated['signal']}"
                if terminated.get("signal")
                else f"ExitCode:{terminated.get('exitCode', 0)}"
            )
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _pod_row(pod: Obj) -> Row:
    status = pod.get("status") or {}
    containers = (pod.get("spec") or {}).get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(containers)}",
        _pod_status(pod),
        restarts,
        _age(pod["metadata"].get("creationTimestamp")),
        status.get("podIP") or "<none>",
        (pod.get("spec") or {}).get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        "<none>",
    ]


def _node_row(node: Obj) -> Row:
    conditions = {
        c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions") or []
    }
    state = {"True": "Ready", "False": "NotReady"}.get(conditions.get("Ready") or "", "Unknown")
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = node["metadata"].get("labels") or {}
    roles = sorted(
        key.removeprefix("node-role.kubernetes.io/")
        for key in labels
        if key.startswith("node-role.kubernetes.io/")
    )
    info = (node.get("status") or {}).get("nodeInfo") or {}
    addresses = {
        a.get("type"): a.get("address") for a in (node.get("status") or {}).get("addresses") or []
    }
    return [
        node["metadata"]["name"],
        state,
        ",".join(roles) or "<none>",
        _age(node["metadata"].get("creationTimestamp")),
        info.get("kubeletVersion") or "",
        addresses.get("InternalIP") or "<none>",
        addresses.get("ExternalIP") or "<none>",
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _event_row(event: Obj) -> Row:
    involved = event.get("involvedObject") or {}
    last = (
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event["metadata"].get("creationTimestamp")
    )
    return [
        _age(last[:19] + "Z" if last else None),
        event.get("type") or "",
        event.get("reason") or "",
        f"{(involved.get('kind') or '').lower()}/{involved.get('name') or ''}",
        event.get("message") or "",
    ]


def _quota_row(quota: Obj) -> Row:
    status = quota.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}

    def pairs(limits: bool) -> str:
        keys = sorted(k for k in hard if k.startswith("limits.") == limits)
        return ", ".join(f"{k}: {used.get(k, '0')}/{hard[k]}" for k in keys)

    return [
        quota["metadata"]["name"],
        _age(quota["metadata"].get("creationTimestamp")),
        pairs(limits=False),
        pairs(limits=True),
    ]


_Printer = tuple[list[Column], Callable[[Obj], Row]]

_PRINTERS: dict[str, _Printer] = {
    "pods": (
        [
            _NAME,
            ("Ready", "string", "", 0),
            ("Status", "string", "", 0),
            ("Restarts", "string", "", 0),
            _AGE,
            ("IP", "string", "", 1),
            ("Node", "string", "", 1),
            ("Nominated Node", "string", "", 1),
            ("Readiness Gates", "string", "", 1),
        ],
        _pod_row,
    ),
    "nodes": (
        [
            _NAME,
            ("Status", "string", "", 0),
            ("Roles", "string", "", 0),
            _AGE,
            ("Version", "string", "", 0),
            ("Internal-IP", "string", "", 1),
            ("External-IP", "string", "", 1),
            ("OS-Image", "string", "", 1),
            ("Kernel-Version", "string", "", 1),
            ("Container-Runtime", "string", "", 1),
        ],
        _node_row,
    ),
    "namespaces": (
        [_NAME, ("Status", "string", "", 0), _AGE],
        lambda ns: [
            ns["metadata"]["name"],
            (ns.get("status") or {}).get("phase") or "",
            _age(ns["metadata"].get("creationTimestamp")),
        ],
    ),
    "events": (
        [
            ("Last Seen", "string", "", 0),
            ("Type", "string", "", 0),
            ("Reason", "string", "", 0),
            ("Object", "string", "", 0),
            ("Message", "string", "", 0),
        ],
        _event_row,
    ),
    "secrets": (
        [_NAME, ("Type", "string", "", 0), ("Data", "string", "", 0), _AGE],
        lambda s: [
            s["metadata"]["name"],
            s.get("type") or "",
            len(s.get("data") or {}),
            _age(s["metadata"].get("creationTimestamp")),
        ],
    ),
    "configmaps": (
        [_NAME, ("Data", "string", "", 0), _AGE],
        lambda c: [
            c["metadata"]["name"],
            len(c.get("data") or {}) + len(c.get("binaryData") or {}),
            _age(c["metadata"].get("creationTimestamp")),
        ],
    ),
    "resourcequotas": (
        [_NAME, _AGE, ("Request", "string", "", 0), ("Limit", "string", "", 0)],
        _quota_row,
    ),
}

_DEFAULT: _Printer = (
    [_NAME, ("Created At", "date", "", 0)],
    lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp")],
)


def to_table(
    rtype: ResourceType, items: list[Obj], resource_version: str, include_object: str
) -> dict[str, Any]:
    columns, row = _PRINTERS.get(rtype.plural, _DEFAULT)
    rows = []
    for obj in items:
        entry: dict[str, Any] = {"cells": row(obj)}
        if include_object == "Object":
            entry["object"] = {"apiVersion": rtype.api_version, "kind": rtype.kind, **obj}
        elif include_object != "None":
            entry["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(entry)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {"name": name, "type": type_, "format": fmt, "description": "", "priority": priority}
            for name, type_, fmt, priority in columns
        ],
        "rows": rows,
    }
