"""Admission on create: the plugins a default API server runs that jkctl's requests meet.

In the real server's order:

1. NamespaceLifecycle: the namespace must exist (404 `namespaces "x" not
   found`) and not be terminating (403 "unable to create new content in
   namespace x because it is being terminated");
2. LimitRanger, mutating: a LimitRange of type Container fills in missing
   container limits (`default`) and requests (`defaultRequest`), and
   records what it set in the `kubernetes.io/limit-ranger` annotation;
3. (validation, in `validation.py`);
4. LimitRanger, validating: `min` and `max` per container, with the real
   messages ("maximum cpu usage per Container is 1, but limit is 2");
5. ResourceQuota (`quota.py`).

`admit_create` runs them all for a create request (`rest.py`). `create`
is the same path for the controllers that run inside kubesim (Job,
DaemonSet): a real controller creates its pods through the API server, so
its pods get the same defaults and meet the same quota and limits (a Job
over its namespace's pod quota gets 403s, as FailedCreate events).

Not here: LimitRange types Pod and PersistentVolumeClaim, maxLimitRequestRatio.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.kubesim import defaults, quota, resources, validation
from tests.kubesim.quantity import parse
from tests.kubesim.resources import ResourceType
from tests.kubesim.status import ApiError, not_found
from tests.kubesim.store import Obj, Store

LIMIT_RANGER_ANNOTATION = "kubernetes.io/limit-ranger"


def _qualified(rtype: ResourceType) -> str:
    return f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural


def _forbidden(rtype: ResourceType, name: str, message: str, **extra: Any) -> ApiError:
    details: dict[str, Any] = {"name": name, "kind": rtype.plural, **extra}
    if rtype.group:
        details["group"] = rtype.group
    return ApiError(
        403, "Forbidden", f'{_qualified(rtype)} "{name}" is forbidden: {message}', details=details
    )


def check_namespace(store: Store, rtype: ResourceType, namespace: str, name: str) -> None:
    """NamespaceLifecycle for a create in `namespace`."""
    found = store.try_get(resources.NAMESPACES, None, namespace)
    if found is None:
        raise not_found(resources.NAMESPACES, namespace)
    if (
        found["metadata"].get("deletionTimestamp")
        or (found.get("status") or {}).get("phase") == "Terminating"
    ):
        raise _forbidden(
            rtype,
            name,
            f"unable to create new content in namespace {namespace} because it is being terminated",
            causes=[
                {
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace",
                }
            ],
        )


def _container_items(store: Store, namespace: str) -> list[Mapping[str, Any]]:
    items = []
    for limit_range in store.scan(resources.LIMITRANGES, namespace):
        for item in (limit_range.get("spec") or {}).get("limits") or []:
            if item.get("type") == "Container":
                items.append(item)
    return items


def _containers(pod: Obj) -> list[tuple[str, Obj]]:
    spec = pod.get("spec") or {}
    return [
        *(("init container", c) for c in spec.get("initContainers") or []),
        *(("container", c) for c in spec.get("containers") or []),
    ]


def apply_limit_ranges(store: Store, pod: Obj, namespace: str) -> None:
    """LimitRanger's defaults for each container, and its annotation."""
    items = _container_items(store, namespace)
    if not items:
        return
    notes: list[str] = []
    for label, container in _containers(pod):
        res = container.setdefault("resources", {})
        limits = res.setdefault("limits", {})
        requests = res.setdefault("requests", {})
        set_limits: list[str] = []
        set_requests: list[str] = []
        for item in items:
            for name, value in (item.get("default") or {}).items():
                if name not in limits:
                    limits[name] = value
                    set_limits.append(name)
            for name, value in (item.get("defaultRequest") or {}).items():
                if name not in requests:
                    requests[name] = value
                    set_requests.append(name)
        if set_requests:
            notes.append(
                f"{', '.join(sorted(set_requests))} request for {label} {container.get('name')}"
            )
        if set_limits:
            notes.append(
                f"{', '.join(sorted(set_limits))} limit for {label} {container.get('name')}"
            )
        if not limits:
            res.pop("limits")
        if not requests:
            res.pop("requests")
    if notes:
        annotations = pod.setdefault("metadata", {}).setdefault("annotations", {})
        annotations[LIMIT_RANGER_ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)


def check_limit_ranges(store: Store, pod: Obj, namespace: str) -> None:
    """LimitRanger's min/max per container."""
    problems: list[str] = []
    for item in _container_items(store, namespace):
        for _, container in _containers(pod):
            res = container.get("resources") or {}
            requests, limits = res.get("requests") or {}, res.get("limits") or {}
            for name, bound in (item.get("min") or {}).items():
                enforced = parse(bound)
                if name not in requests:
                    problems.append(
                        f"minimum {name} usage per Container is {enforced}.  "
                        "No request is specified"
                    )
                elif parse(requests[name]) < enforced:
                    problems.append(
                        f"minimum {name} usage per Container is {enforced}, but request is "
                        f"{parse(requests[name])}"
                    )
                elif name in limits and parse(limits[name]) < enforced:
                    problems.append(
                        f"minimum {name} usage per Container is {enforced}, but limit is "
                        f"{parse(limits[name])}"
                    )
            for name, bound in (item.get("max") or {}).items():
                enforced = parse(bound)
                if name not in limits:
                    problems.append(
                        f"maximum {name} usage per Container is {enforced}.  No limit is specified"
                    )
                elif parse(limits[name]) > enforced:
                    problems.append(
                        f"maximum {name} usage per Container is {enforced}, but limit is "
                        f"{parse(limits[name])}"
                    )
                elif name in requests and parse(requests[name]) > enforced:
                    problems.append(
                        f"maximum {name} usage per Container is {enforced}, but request is "
                        f"{parse(requests[name])}"
                    )
    if problems:
        message = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        raise _forbidden(resources.PODS, pod["metadata"].get("name") or "", message)


def admit_create(store: Store, rtype: ResourceType, obj: Obj, namespace: str | None) -> None:
    """What a decoded, defaulted create meets before it is stored, in the server's order.

    Fills in a `generateName` name and, for pods, the LimitRanger defaults and the
    initial status; raises `ApiError` as the API would.
    """
    meta = obj["metadata"]
    if namespace is not None:
        check_namespace(store, rtype, namespace, meta.get("name") or "")
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = store.generate_name(rtype, namespace, meta["generateName"])
    if rtype is resources.PODS:
        apply_limit_ranges(store, obj, namespace or "default")
        defaults.pod_initial_status(obj)
    validation.validate(rtype, obj)
    if rtype is resources.PODS:
        check_limit_ranges(store, obj, namespace or "default")
    if namespace is not None:
        quota.admit(store, rtype, obj, namespace)


def create(store: Store, rtype: ResourceType, obj: Obj) -> Obj:
    """Create `obj` as a client inside the cluster would through the API: defaulted, admitted."""
    obj = {**obj, "apiVersion": rtype.api_version, "kind": rtype.kind}
    defaults.apply(rtype, obj)
    namespace = obj["metadata"].get("namespace", "default") if rtype.namespaced else None
    admit_create(store, rtype, obj, namespace)
    return store.create(rtype, obj, namespace=namespace)
