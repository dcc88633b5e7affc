"""What DELETE does to an object, shared by the API and the namespace controller.

The rules are the real server's:

- a pod bound to a node and not yet Succeeded/Failed is deleted
  *gracefully*: `metadata.deletionTimestamp` (now + grace) and
  `deletionGracePeriodSeconds` are set and the object stays; the kubelet
  stops the containers and then removes it. The grace period is the
  request's `gracePeriodSeconds`, else the pod's
  `terminationGracePeriodSeconds`, else 30. A second DELETE may only
  shorten it;
- `gracePeriodSeconds=0`, an unscheduled pod or a terminal pod is removed
  at once (the kubelet reacts to DELETED by killing what runs);
- a namespace becomes Terminating; the namespace controller empties and
  removes it (`namespaces.py`). Deleting it again is a 409, and the
  system namespaces cannot be deleted;
- everything else is removed at once.

`Preconditions` (uid, resourceVersion) that do not match are a 409
Conflict, as on a real server.

Controllers (the garbage collector, DaemonSet and Job controllers) delete
pods with `delete_pod`, the same rule as a client's DELETE; `owned_by` and
`owner_reference` are the ownerReferences helpers they share.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from tests.kubesim import resources
from tests.kubesim.resources import ResourceType
from tests.kubesim.status import ApiError
from tests.kubesim.store import Obj, Store

DEFAULT_GRACE_SECONDS = 30
UNDELETABLE_NAMESPACES = ("default", "kube-system", "kube-public")
_TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True, kw_only=True)
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False


@dataclass(frozen=True)
class Outcome:
    obj: Obj
    finished: bool  # False while a graceful deletion is under way


def _timestamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _check_preconditions(rtype: ResourceType, current: Obj, options: DeleteOptions) -> None:
    meta = current["metadata"]
    qualified = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
    details = {"name": meta["name"], "kind": rtype.plural}
    if options.uid and options.uid != meta.get("uid"):
        raise ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {qualified} "{meta["name"]}": Precondition failed: '
            f"UID in precondition: {options.uid}, UID in object meta: {meta.get('uid')}",
            details=details,
        )
    if options.resource_version and options.resource_version != meta.get("resourceVersion"):
        raise ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {qualified} "{meta["name"]}": Precondition failed: '
            f"ResourceVersion in precondition: {options.resource_version}, ResourceVersion in "
            f"object meta: {meta.get('resourceVersion')}",
            details=details,
        )


def delete(
    store: Store,
    rtype: ResourceType,
    namespace: str | None,
    name: str,
    options: DeleteOptions,
) -> Outcome:
    current = store.get(rtype, namespace, name)
    _check_preconditions(rtype, current, options)
    if rtype is resources.NAMESPACES:
        return _delete_namespace(store, current, options)
    if rtype is resources.PODS:
        grace = _pod_grace(current, options)
        if grace > 0:
            return _delete_pod_gracefully(store, current, grace, options)
    if options.dry_run:
        return Outcome(current, True)
    return Outcome(store.delete(rtype, namespace, name), True)


def _pod_grace(pod: Obj, options: DeleteOptions) -> int:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in _TERMINAL:
        return 0
    if options.grace_period_seconds is not None:
        return max(options.grace_period_seconds, 0)
    grace = spec.get("terminationGracePeriodSeconds")
    return DEFAULT_GRACE_SECONDS if grace is None else max(int(grace), 0)


def _delete_pod_gracefully(store: Store, pod: Obj, grace: int, options: DeleteOptions) -> Outcome:
    meta = pod["metadata"]
    current_grace = meta.get("deletionGracePeriodSeconds")
    if current_grace is not None and grace >= current_grace:
        return Outcome(pod, False)  # already going, and a longer grace cannot extend it
    if options.dry_run:
        return Outcome(pod, False)

    def mark(obj: Obj) -> None:
        obj["metadata"]["deletionTimestamp"] = _timestamp(time.time() + grace)
        obj["metadata"]["deletionGracePeriodSeconds"] = grace

    return Outcome(store.mutate(resources.PODS, meta.get("namespace"), meta["name"], mark), False)


def _delete_namespace(store: Store, namespace: Obj, options: DeleteOptions) -> Outcome:
    name = namespace["metadata"]["name"]
    if name in UNDELETABLE_NAMESPACES:
        raise ApiError(
            403,
            "Forbidden",
            f'namespaces "{name}" is forbidden: this namespace may not be deleted',
            details={"name": name, "kind": "namespaces"},
        )
    if namespace["metadata"].get("deletionTimestamp"):
        raise ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on namespaces "{name}": The system is ensuring all '
            "content is removed from this namespace.  Upon completion, this namespace will "
            "automatically be purged by the system.",
            details={"name": name, "kind": "namespaces"},
        )
    if options.dry_run:
        return Outcome(namespace, False)

    def terminate(obj: Obj) -> None:
        obj["metadata"]["deletionTimestamp"] = _timestamp(time.time())
        obj.setdefault("status", {})["phase"] = "Terminating"

    return Outcome(store.mutate(resources.NAMESPACES, None, name, terminate), False)


def delete_pod(store: Store, pod: Obj, *, grace: int | None = None) -> None:
    """DELETE `pod` as a controller's client would: only if it is still the same object
    (uid precondition), with its own grace period unless `grace` is given; gone already
    is fine."""
    meta = pod["metadata"]
    options = DeleteOptions(grace_period_seconds=grace, uid=meta.get("uid"))
    with contextlib.suppress(ApiError):  # 404: already gone; 409: a newer pod of that name
        delete(store, resources.PODS, meta.get("namespace", "default"), meta["name"], options)


def owned_by(pod: Obj, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in pod["metadata"].get("ownerReferences") or [])


def owner_reference(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
