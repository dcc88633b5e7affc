"""Deleting a pod the way the API server does, for kubesim's own controllers.

A DELETE of a pod that is bound to a node and not finished only marks it
(`deletionTimestamp`, `deletionGracePeriodSeconds`); the kubelet then stops
it and removes the object. An unbound or finished pod, or grace 0, goes at
once. Controllers and the garbage collector call this rather than
`Store.delete`, so what they do looks like what a real controller's DELETE
would cause. (The API server applies the same rule to client requests.)
"""

from __future__ import annotations

import contextlib

from tests.kubesim import resources
from tests.kubesim.status import ApiError
from tests.kubesim.store import Obj, Store, now_rfc3339

DEFAULT_GRACE_SECONDS = 30


def delete_pod(store: Store, pod: Obj, *, grace: int | None = None) -> None:
    meta = pod["metadata"]
    namespace, name, uid = meta.get("namespace", "default"), meta["name"], meta["uid"]
    if grace is None:
        grace = pod["spec"].get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
    finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    with contextlib.suppress(ApiError):
        current = store.get(resources.PODS, namespace, name)
        if current["metadata"]["uid"] != uid:
            return
        if grace == 0 or finished or not current["spec"].get("nodeName"):
            store.delete(resources.PODS, namespace, name)
            return
        if current["metadata"].get("deletionTimestamp"):
            return

        def mark(obj: Obj) -> None:
            obj["metadata"]["deletionTimestamp"] = now_rfc3339()
            obj["metadata"]["deletionGracePeriodSeconds"] = grace

        store.mutate(resources.PODS, namespace, name, mark)


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
