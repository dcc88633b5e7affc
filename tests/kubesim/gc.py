"""Garbage collection of pods whose owning DaemonSet or Job is gone.

The real garbage collector deletes dependents whose owner (ownerReferences)
no longer exists, which is what background and foreground propagation
amount to for kubesim's purposes. A client that asks for the `Orphan`
policy (the API default for batch/v1 Jobs) gets its pods kept only if the
API server strips their ownerReferences before removing the owner, as the
real orphan finalizer does. Only pods are collected.
"""

from __future__ import annotations

import asyncio

from tests.kubesim import resources
from tests.kubesim.deletion import delete_pod, owned_by
from tests.kubesim.store import Store


class GarbageCollector:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for owner_type in (resources.DAEMONSETS, resources.JOBS):
                group.create_task(self._follow(owner_type))

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
