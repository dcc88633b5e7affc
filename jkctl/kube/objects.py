"""The wire shapes of Kubernetes objects, lists and watch events, and how a watch line parses.

Objects stay plain JSON dicts (:data:`KubeObject`): jkctl reads a handful of
fields from pods and writes whole objects it rendered itself, so a model
class per kind would be weight without safety. Lists and watch events get
TypedDicts, because their shape is what callers branch on.

A watch stream is one JSON event per line. :func:`parse_watch_line` turns a
line into a :class:`WatchEvent`; an ``ERROR`` event (the server's way of
saying "410 Gone: resourceVersion too old" mid-stream) becomes the matching
jkctl error, so consumers never see it as an event.
"""

from __future__ import annotations

import json
from typing import Any, Literal, NotRequired, TypedDict, cast

from jkctl.errors import KubeError

from .status import Action, Status, error_from_status

KubeObject = dict[str, Any]

WatchEventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]


class ListMeta(TypedDict, total=False):
    resourceVersion: str
    # `continue` is a keyword; read it with .get("continue").


class ObjectList(TypedDict):
    apiVersion: str
    kind: str
    metadata: ListMeta
    items: list[KubeObject]


class WatchEvent(TypedDict):
    """One change seen by a watch; for BOOKMARK only metadata.resourceVersion is meaningful."""

    type: WatchEventType
    object: KubeObject


class _RawEvent(TypedDict):
    type: str
    object: NotRequired[dict[str, Any]]


_EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})


def resource_version(obj: KubeObject) -> str:
    """The object's ``metadata.resourceVersion`` ("" if it has none)."""
    return str(obj.get("metadata", {}).get("resourceVersion", ""))


def parse_watch_line(line: bytes, *, action: Action, server: str, context: str) -> WatchEvent:
    """One event from one line of a watch stream; ERROR events raise instead."""
    try:
        raw = json.loads(line)
    except ValueError as exc:
        raise KubeError(
            f"the Kubernetes API server at {server} sent a watch event that is not JSON",
            hint="retry; if it keeps happening, a proxy between jkctl and the cluster may be "
            "rewriting responses",
            context=line[:200].decode("utf-8", "replace"),
        ) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise KubeError(
            f"the Kubernetes API server at {server} sent a malformed watch event",
            hint="retry; if it keeps happening, please report it with the --debug output",
            context=line[:200].decode("utf-8", "replace"),
        )
    event = cast(_RawEvent, raw)
    obj = event.get("object")
    if not isinstance(obj, dict):
        obj = {}
    if event["type"] == "ERROR":
        status = cast(Status, obj)
        raise error_from_status(status, action=action, server=server, context=context)
    if event["type"] not in _EVENT_TYPES:
        raise KubeError(
            f'the Kubernetes API server at {server} sent an unknown watch event "{event["type"]}"',
            hint="please report it with the --debug output",
        )
    return {"type": cast(WatchEventType, event["type"]), "object": obj}
