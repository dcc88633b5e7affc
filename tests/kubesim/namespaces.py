"""The namespace controller: empties a Terminating namespace, then removes it.

DELETE on a namespace only marks it (`deletion.py`). As the real
controller does, this one then deletes everything in it (pods gracefully,
so the kubelet stops them), waits until the last pod is gone, and removes
the namespace; watchers see DELETED for each object and finally for the
namespace.

Not here: the namespace's status conditions during deletion
(NamespaceDeletionContentFailure ...).
"""

from __future__ import annotations

import asyncio
import logging

from tests.kubesim import deletion, resources
from tests.kubesim.status import ApiError
from tests.kubesim.store import Store

logger = logging.getLogger(__name__)


class NamespaceController:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._finalizing: set[str] = set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group, self._store.watch(resources.NAMESPACES) as watch:
            async for event in watch:
                meta = event.object["metadata"]
                name = meta["name"]
                terminating = event.type != "DELETED" and meta.get("deletionTimestamp")
                if terminating and name not in self._finalizing:
                    self._finalizing.add(name)
                    group.create_task(self._finalize(name))

    async def _finalize(self, namespace: str) -> None:
        try:
            self._delete_contents(namespace)
            await self._wait_for_no_pods(namespace)
            self._store.delete(resources.NAMESPACES, None, namespace)
        except ApiError as exc:
            if exc.code != 404:
                raise
        finally:
            self._finalizing.discard(namespace)

    def _delete_contents(self, namespace: str) -> None:
        options = deletion.DeleteOptions()
        for rtype in resources.RESOURCE_TYPES:
            if not rtype.namespaced or rtype in resources.REVIEWS:
                continue
            names = [obj["metadata"]["name"] for obj in self._store.scan(rtype, namespace)]
            for name in names:
                try:
                    deletion.delete(self._store, rtype, namespace, name, options)
                except ApiError as exc:
                    if exc.code != 404:
                        raise

    async def _wait_for_no_pods(self, namespace: str) -> None:
        async with self._store.watch(
            resources.PODS, namespace, resource_version=str(self._store.resource_version)
        ) as watch:
            while any(True for _ in self._store.scan(resources.PODS, namespace)):
                if await watch.next() is None:
                    return
