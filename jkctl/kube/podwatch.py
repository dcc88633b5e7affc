"""Following pods: what the daemon knows about its kernels' pods, kept current by a watch.

:func:`pod_state` reads what jkctl cares about from a pod (phase, container
states and their reasons, why it is not scheduled) into a :class:`PodState`.
:func:`follow_pods` keeps a set of pods current the way client-go's
reflector does: list, then watch from the list's resourceVersion; when the
watch says 410 Gone, or the connection drops, list again (after a back-off
if the API server is unreachable) and report the difference as events, so a
consumer that only applies events never misses a pod that came or went
while it was not looking. After every (re)list it also yields
:class:`PodsSynced` with the complete set: the daemon re-attaching after a
restart waits for the first one.

Errors that time will not fix (Forbidden, Unauthorized after re-login, a
namespace that does not exist) end the iteration by raising. Not here: what
a kernel makes of a pod's state (that is the kubernetes backend's).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from jkctl.errors import KubeGone, KubeUnavailable

from .client import KubeClient
from .objects import KubeObject, resource_version
from .resources import PODS

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ContainerState:
    name: str
    state: Literal["waiting", "running", "terminated", "unknown"]
    #: ContainerCreating, ErrImagePull, ImagePullBackOff, CrashLoopBackOff, OOMKilled, Error…
    reason: str | None = None
    message: str | None = None
    exit_code: int | None = None
    ready: bool = False
    restart_count: int = 0
    #: How the previous run ended (what a CrashLoopBackOff is about).
    last_reason: str | None = None
    last_exit_code: int | None = None


@dataclass(frozen=True, kw_only=True)
class PodCondition:
    type: str
    status: str
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class PodState:
    name: str
    namespace: str
    uid: str
    resource_version: str
    phase: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    node: str | None = None
    #: Pod-level reason and message (Evicted, DeadlineExceeded, …).
    reason: str | None = None
    message: str | None = None
    created: str | None = None
    deleting: bool = False
    conditions: tuple[PodCondition, ...] = ()
    init_containers: tuple[ContainerState, ...] = ()
    containers: tuple[ContainerState, ...] = ()
    raw: KubeObject = field(default_factory=dict, compare=False, repr=False)

    @property
    def unschedulable(self) -> str | None:
        """The scheduler's explanation ("0/2 nodes are available: 2 Insufficient memory")."""
        for condition in self.conditions:
            if condition.type == "PodScheduled" and condition.status == "False":
                return condition.message or condition.reason or "unschedulable"
        return None

    def container(self, name: str) -> ContainerState | None:
        for container in (*self.init_containers, *self.containers):
            if container.name == name:
                return container
        return None


class PodEventType(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True, kw_only=True)
class PodEvent:
    type: PodEventType
    pod: PodState


@dataclass(frozen=True, kw_only=True)
class PodsSynced:
    """The complete set of followed pods after a (re)list, keyed by (namespace, name)."""

    pods: Mapping[tuple[str, str], PodState]


@dataclass(frozen=True, kw_only=True)
class FollowSettings:
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    #: Each watch request's timeoutSeconds; the watch is renewed from where it was.
    watch_timeout: int = 300


def pod_state(obj: KubeObject) -> PodState:
    """What jkctl needs from a pod object (tolerant of missing fields, as pods often have)."""
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return PodState(
        name=str(metadata.get("name", "")),
        namespace=str(metadata.get("namespace", "")),
        uid=str(metadata.get("uid", "")),
        resource_version=resource_version(obj),
        phase=str(status.get("phase") or "Unknown"),
        labels=dict(metadata.get("labels") or {}),
        annotations=dict(metadata.get("annotations") or {}),
        node=spec.get("nodeName") or None,
        reason=status.get("reason") or None,
        message=status.get("message") or None,
        created=metadata.get("creationTimestamp") or None,
        deleting=bool(metadata.get("deletionTimestamp")),
        conditions=tuple(
            PodCondition(
                type=str(condition.get("type", "")),
                status=str(condition.get("status", "")),
                reason=condition.get("reason") or None,
                message=condition.get("message") or None,
            )
            for condition in status.get("conditions") or []
        ),
        init_containers=_containers(
            spec.get("initContainers") or [], status.get("initContainerStatuses") or []
        ),
        containers=_containers(spec.get("containers") or [], status.get("containerStatuses") or []),
        raw=obj,
    )


_STATES: dict[str, Literal["waiting", "running", "terminated"]] = {
    "waiting": "waiting",
    "running": "running",
    "terminated": "terminated",
}


def _containers(
    specs: list[dict[str, Any]], statuses: list[dict[str, Any]]
) -> tuple[ContainerState, ...]:
    """One state per container in the spec; those without a status yet are waiting."""
    by_name = {status.get("name"): status for status in statuses}
    states = []
    for spec in specs:
        name = str(spec.get("name", ""))
        status = by_name.get(name, {})
        current = status.get("state") or {}
        last = (status.get("lastState") or {}).get("terminated") or {}
        kind, found = next(iter(current.items()), ("waiting", None))
        detail: dict[str, Any] = found or {}
        states.append(
            ContainerState(
                name=name,
                state=_STATES.get(kind, "unknown"),
                reason=detail.get("reason") or None,
                message=detail.get("message") or None,
                exit_code=detail.get("exitCode"),
                ready=bool(status.get("ready", False)),
                restart_count=int(status.get("restartCount", 0)),
                last_reason=last.get("reason") or None,
                last_exit_code=last.get("exitCode"),
            )
        )
    return tuple(states)


async def list_pods(
    kube: KubeClient,
    *,
    namespace: str | None = None,
    all_namespaces: bool = False,
    label_selector: str | None = None,
) -> list[PodState]:
    """The pods matching ``label_selector``, once (for `jkctl kernels list` without a daemon)."""
    found = await kube.list(
        PODS, namespace=namespace, all_namespaces=all_namespaces, label_selector=label_selector
    )
    return [pod_state(item) for item in found["items"]]


@asynccontextmanager
async def follow_pods(
    kube: KubeClient,
    *,
    namespace: str | None = None,
    all_namespaces: bool = False,
    label_selector: str | None = None,
    settings: FollowSettings | None = None,
) -> AsyncIterator[AsyncIterator[PodEvent | PodsSynced]]:
    """``async with follow_pods(kube, label_selector=...) as events: async for e in events``."""
    events = _follow(
        kube,
        namespace=namespace,
        all_namespaces=all_namespaces,
        label_selector=label_selector,
        settings=settings or FollowSettings(),
    )
    try:
        yield events
    finally:
        await events.aclose()


async def _follow(
    kube: KubeClient,
    *,
    namespace: str | None,
    all_namespaces: bool,
    label_selector: str | None,
    settings: FollowSettings,
) -> AsyncGenerator[PodEvent | PodsSynced, None]:
    scope: dict[str, Any] = {
        "namespace": namespace,
        "all_namespaces": all_namespaces,
        "label_selector": label_selector,
    }
    known: dict[tuple[str, str], PodState] = {}
    failures = 0
    while True:
        if failures:
            await asyncio.sleep(_backoff(settings, failures))
        try:
            listing = await kube.list(PODS, **scope)
        except KubeUnavailable as exc:
            failures += 1
            logger.warning("listing pods failed (%d in a row): %s", failures, exc.message)
            continue
        failures = 0
        current = {(pod.namespace, pod.name): pod for pod in map(pod_state, listing["items"])}
        for event in _difference(known, current):
            yield event
        known = current
        yield PodsSynced(pods=dict(known))
        version = listing["metadata"].get("resourceVersion", "")
        loop = asyncio.get_running_loop()
        try:
            while True:  # one watch request after another, each from where the last ended
                started, heard = loop.time(), False
                async with kube.watch(
                    PODS,
                    resource_version=version,
                    timeout_seconds=settings.watch_timeout,
                    **scope,
                ) as watch:
                    async for change in watch:
                        heard = True
                        version = resource_version(change["object"]) or version
                        if change["type"] == "BOOKMARK":
                            continue
                        pod = pod_state(change["object"])
                        key = (pod.namespace, pod.name)
                        if change["type"] == "DELETED":
                            known.pop(key, None)
                        else:
                            known[key] = pod
                        yield PodEvent(type=PodEventType(change["type"]), pod=pod)
                if not heard and loop.time() - started < settings.watch_timeout / 2:
                    # A server that ends watches at once, silently, would make
                    # this a tight loop: list again, after a back-off.
                    failures = 1
                    logger.warning("pod watch ended early without a word; listing again")
                    break
        except KubeGone:
            logger.info("pod watch expired at resourceVersion %s; listing again", version)
        except KubeUnavailable as exc:
            failures = 1
            logger.warning("pod watch dropped (%s); listing again", exc.message)


def _difference(
    before: Mapping[tuple[str, str], PodState], after: Mapping[tuple[str, str], PodState]
) -> list[PodEvent]:
    """What changed between two lists, as the events a watch would have shown."""
    events = [
        PodEvent(type=PodEventType.DELETED, pod=pod)
        for key, pod in before.items()
        if key not in after
    ]
    for key, pod in after.items():
        old = before.get(key)
        if old is None:
            events.append(PodEvent(type=PodEventType.ADDED, pod=pod))
        elif old.resource_version != pod.resource_version:
            events.append(PodEvent(type=PodEventType.MODIFIED, pod=pod))
    return events


def _backoff(settings: FollowSettings, failures: int) -> float:
    delay: float = min(settings.backoff_max, settings.backoff_initial * 2 ** (failures - 1))
    return delay * random.uniform(0.8, 1.2)
