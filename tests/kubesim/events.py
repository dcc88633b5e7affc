"""Event recording as the kubelet, scheduler and controllers do it (core/v1 Events).

Each component records through its own `EventRecorder` with its `source`
(`kubelet` on a host, `default-scheduler`, `daemonset-controller`, ...). Like
client-go's event correlator, a repeat of the same (object, reason, message,
type, source) bumps `count` and `lastTimestamp` of the existing Event instead
of writing a new one, which is what `kubectl describe` shows as "(x3 over 2m)".
Recording never fails the caller: an object whose namespace is gone simply
gets no event.
"""

from __future__ import annotations

import time
from typing import Any

from tests.kubesim import resources
from tests.kubesim.status import ApiError
from tests.kubesim.store import Obj, Store, now_rfc3339

NORMAL = "Normal"
WARNING = "Warning"


class EventRecorder:
    def __init__(self, store: Store, *, component: str, host: str | None = None) -> None:
        self._store = store
        self._component = component
        self._host = host
        self._seen: dict[tuple[str, ...], tuple[str, str]] = {}  # key -> (namespace, name)

    def record(
        self,
        obj: Obj,
        event_type: str,
        reason: str,
        message: str,
        *,
        field_path: str | None = None,
    ) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        key = (meta["uid"], field_path or "", event_type, reason, message)
        now = now_rfc3339()
        known = self._seen.get(key)
        if known is not None:
            try:
                self._store.mutate(resources.EVENTS, *known, lambda event: _bump(event, now))
            except ApiError:
                pass
            else:
                return
        involved: dict[str, Any] = {
            "kind": obj.get("kind", "Pod"),
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": obj.get("apiVersion", "v1"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if field_path:
            involved["fieldPath"] = field_path
        source: dict[str, str] = {"component": self._component}
        if self._host:
            source["host"] = self._host
        event = {
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": {k: v for k, v in involved.items() if v is not None},
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": event_type,
            "eventTime": None,
            "reportingComponent": self._component,
            "reportingInstance": self._host or self._component,
        }
        try:
            created = self._store.create(resources.EVENTS, event, namespace=namespace)
        except ApiError:
            return
        self._seen[key] = (namespace, created["metadata"]["name"])


def _bump(event: Obj, now: str) -> None:
    event["count"] = event.get("count", 1) + 1
    event["lastTimestamp"] = now
