"""Following one object (a DaemonSet, a Job) as it changes: list once, then watch.

:func:`follow_object` yields the object each time it changes, and None while
it does not exist (before it is created, after it is deleted), the way the
pre-puller waits for its DaemonSet and the cluster builder for its Job. It
lists with a ``metadata.name`` field selector to learn the collection's
resourceVersion, watches from there, renews the watch when the server ends
it, and lists again when the server says the version is too old (410), so
no change is missed and nothing polls. Other failures end the iteration by
raising, as jkctl errors.

For sets of pods, with their states parsed, see :mod:`.podwatch`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

from jkctl.errors import KubeGone

from .client import KubeClient
from .objects import KubeObject, resource_version
from .resources import Resource


@asynccontextmanager
async def follow_object(
    kube: KubeClient,
    resource: Resource,
    name: str,
    *,
    namespace: str,
    watch_timeout: int = 300,
) -> AsyncIterator[AsyncIterator[KubeObject | None]]:
    """``async with follow_object(kube, JOBS, name, namespace=ns) as changes: ...``."""
    changes = _follow(kube, resource, name, namespace=namespace, watch_timeout=watch_timeout)
    try:
        yield changes
    finally:
        await changes.aclose()


async def _follow(
    kube: KubeClient, resource: Resource, name: str, *, namespace: str, watch_timeout: int
) -> AsyncGenerator[KubeObject | None, None]:
    selector = f"metadata.name={name}"
    while True:
        listing = await kube.list(resource, namespace=namespace, field_selector=selector)
        items = listing["items"]
        yield items[0] if items else None
        version = listing["metadata"].get("resourceVersion", "")
        try:
            while True:  # one watch request after another, each from where the last ended
                async with kube.watch(
                    resource,
                    namespace=namespace,
                    field_selector=selector,
                    resource_version=version,
                    timeout_seconds=watch_timeout,
                ) as events:
                    async for event in events:
                        version = resource_version(event["object"]) or version
                        if event["type"] == "BOOKMARK":
                            continue
                        yield None if event["type"] == "DELETED" else event["object"]
        except KubeGone:
            continue
