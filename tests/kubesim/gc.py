"""Garbage collection: dependents whose owner is gone are deleted.

The real garbage collector deletes dependents whose owner (ownerReferences)
no longer exists, which is what background and foreground propagation
amount to for kubesim's purposes. A client that asks for the `Orphan`
policy (the API default for batch/v1 Jobs) gets its pods kept only if the
API server strips their ownerReferences before removing the owner, as the
real orphan finalizer does.

Two kinds of dependents are collected: pods owned by DaemonSets and Jobs,
and Secrets and ConfigMaps owned by pods (a kernel's connection Secret goes
with its pod). A dependent whose owner is already absent when it is created
or given its ownerReference is collected at once, as the real collector does
when it cannot find the owner's uid.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.kubesim import resources
from tests.kubesim.deletion import delete_pod, owned_by
from tests.kubesim.resources import ResourceType
from tests.kubesim.status import ApiError
from tests.kubesim.store import Obj, Store

#: Kinds collected when the pod that owns them is gone.
_POD_DEPENDENTS = (resources.SECRETS, resources.CONFIGMAPS)


class GarbageCollector:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for owner_type in (resources.DAEMONSETS, resources.JOBS):
                group.create_task(self._follow(owner_type))
            group.create_task(self._follow_pod_deletions())
            for dependent_type in _POD_DEPENDENTS:
                group.create_task(self._follow_pod_dependents(dependent_type))

    async def _follow(self, owner_type: resources.ResourceType) -> None:
        self.collect_orphans(owner_type)
        watch = self._store.watch(owner_type, resource_version=str(self._store.resource_version))
        try:
            async for event in watch:
                if event.type == "DELETED":
                    meta = event.object["metadata"]
                    pods, _ = self._store.list(resources.PODS, meta.get("namespace"))
                    for pod in pods:
                        if owned_by(pod, meta["uid"]):
                            delete_pod(self._store, pod)
        finally:
            watch.close()

    def collect_orphans(self, owner_type: resources.ResourceType) -> None:
        owners, _ = self._store.list(owner_type)
        alive = {owner["metadata"]["uid"] for owner in owners}
        pods, _ = self._store.list(resources.PODS)
        for pod in pods:
            for ref in pod["metadata"].get("ownerReferences") or []:
                if ref.get("kind") == owner_type.kind and ref.get("uid") not in alive:
                    delete_pod(self._store, pod)
                    break

    # -- Secrets and ConfigMaps owned by pods ----------------------------------

    async def _follow_pod_deletions(self) -> None:
        watch = self._store.watch(
            resources.PODS, resource_version=str(self._store.resource_version)
        )
        try:
            async for event in watch:
                if event.type == "DELETED":
                    meta = event.object["metadata"]
                    for dependent_type in _POD_DEPENDENTS:
                        for obj in list(self._store.scan(dependent_type, meta.get("namespace"))):
                            if owned_by(obj, meta["uid"]):
                                self._delete(dependent_type, obj)
        finally:
            watch.close()

    async def _follow_pod_dependents(self, dependent_type: ResourceType) -> None:
        for obj in list(self._store.scan(dependent_type)):
            self._collect_if_orphaned(dependent_type, obj)
        watch = self._store.watch(
            dependent_type, resource_version=str(self._store.resource_version)
        )
        try:
            async for event in watch:
                if event.type in ("ADDED", "MODIFIED"):
                    self._collect_if_orphaned(dependent_type, event.object)
        finally:
            watch.close()

    def _collect_if_orphaned(self, dependent_type: ResourceType, obj: Obj) -> None:
        """Delete `obj` if it names an owning pod that does not exist (any more)."""
        namespace = obj["metadata"].get("namespace")
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("kind") != "Pod" or ref.get("apiVersion") != "v1":
                continue
            pod = self._store.try_get(resources.PODS, namespace, str(ref.get("name", "")))
            if pod is None or pod["metadata"].get("uid") != ref.get("uid"):
                self._delete(dependent_type, obj)
                return

    def _delete(self, rtype: ResourceType, obj: Obj) -> None:
        meta = obj["metadata"]
        with contextlib.suppress(ApiError):  # already gone
            current = self._store.try_get(rtype, meta.get("namespace"), meta["name"])
            if current is not None and current["metadata"].get("uid") == meta.get("uid"):
                self._store.delete(rtype, meta.get("namespace"), meta["name"])
