"""Kernel pods as `jkctl kernels` shows them: found by label, read into placements and details.

The same reading serves two callers:

- the daemon, whose kernels already know their pod (the pod watch keeps
  :attr:`KubeKernel.pod_state <.kernel.KubeKernel.pod_state>` current), so
  listing costs no API call; describing and logs ask the API;
- `jkctl kernels` when no daemon runs: it logs in itself and finds the pods
  by their labels (:func:`find_kernel_pods`), because the cluster holds
  everything a kernel is: its labels, annotations and Secret.

A pod is read into a :class:`~jkctl.backends.base.Placement` by
:func:`placement_of`: node, phase, what it waits for or why it ended (in the
words of :mod:`.podfacts`), the kernel container's image and requests, the
lease, the last activity recorded by its daemon. :func:`pod_details` adds
the pod's recent events and last log lines; what cannot be read (the API is
down, a permission is missing) becomes a note, not a failure.

What this module does not do: decide about kernels (stop, re-attach); the
callers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from jkctl.backends.base import KernelDetails, KernelEvent, Lease, Placement
from jkctl.errors import JkctlError, KubeNotFound
from jkctl.kube.client import KubeClient
from jkctl.kube.podtemplate import KERNEL_CONTAINER
from jkctl.kube.podwatch import PodState, list_pods
from jkctl.kube.resources import EVENTS, PODS, SECRETS

from . import manifests
from .podfacts import Outlook, judge

#: The pods `jkctl kernels` looks at: every kernel pod jkctl made.
KERNEL_PODS = f"{manifests.MANAGED_BY}=jkctl,{manifests.COMPONENT}=kernel"
#: How many of a pod's events describe shows (the latest).
EVENT_COUNT = 10
#: How long reading events or a log tail may take before describe goes on without it.
READ_TIMEOUT = 10.0


def kernel_selector(daemon_id: str | None) -> str:
    """The label selector for the kernel pods of one daemon (or of every daemon)."""
    return KERNEL_PODS + (f",{manifests.DAEMON}={daemon_id}" if daemon_id else "")


def placement_of(pod: PodState) -> Placement:
    """What `jkctl kernels list` shows about a kernel, read from its pod."""
    container = _kernel_container(pod.raw)
    resources = container.get("resources") or {}
    verdict = judge(pod)
    ended = pod.phase in ("Failed", "Succeeded")
    if verdict.outlook is Outlook.PENDING:
        condition = f"pending: {verdict.reason}"
    elif verdict.outlook is Outlook.FAILED:
        condition = "ended: " + _why_ended(pod, verdict.reason)
    else:
        condition = ""
    return Placement(
        kernel_id=pod.labels.get(manifests.KERNEL_ID, ""),
        kernelspec=pod.annotations.get(manifests.KERNELSPEC)
        or pod.labels.get(manifests.KERNELSPEC, "?"),
        backend="kubernetes",
        namespace=pod.namespace,
        pod=pod.name,
        node=pod.node,
        phase=pod.phase,
        condition=condition,
        created=parse_time(pod.created),
        image=container.get("image"),
        requests=_strings(resources.get("requests")),
        limits=_strings(resources.get("limits")),
        owner=pod.annotations.get(manifests.USERNAME) or pod.labels.get(manifests.OWNER),
        last_activity=parse_time(pod.annotations.get(manifests.LAST_ACTIVITY)),
        ended=ended,
    )


def lease_of(pod: PodState) -> Lease | None:
    seconds = pod.annotations.get(manifests.LEASE_SECONDS, "")
    if not seconds.isdigit():
        return None
    return Lease(seconds=int(seconds), renewed=pod.annotations.get(manifests.LEASE_RENEWED))


async def find_kernel_pods(
    kube: KubeClient, *, namespace: str, all_namespaces: bool, daemon_id: str | None
) -> list[PodState]:
    """The kernel pods of one daemon (or of all), newest generation of each kernel only."""
    pods = await list_pods(
        kube,
        namespace=namespace,
        all_namespaces=all_namespaces,
        label_selector=kernel_selector(daemon_id),
    )
    return newest_generations(pods)


def newest_generations(pods: Iterable[PodState]) -> list[PodState]:
    """One pod per kernel, its newest generation (an old one may linger while it is deleted);
    none of a warm pool's, which are no one's kernels yet."""
    newest: dict[tuple[str, str], PodState] = {}
    for pod in pods:
        if manifests.POOL in pod.labels:
            continue
        key = (pod.namespace, pod.labels.get(manifests.KERNEL_ID, pod.name))
        if key not in newest or _generation(pod) > _generation(newest[key]):
            newest[key] = pod
    return sorted(newest.values(), key=lambda pod: (pod.namespace, pod.created or "", pod.name))


async def pod_details(kube: KubeClient, pod: PodState, *, log_lines: int) -> KernelDetails:
    """Placement, lease, the pod's latest events and last log lines; gaps become notes."""
    notes: list[str] = []
    events: tuple[KernelEvent, ...] = ()
    lines: tuple[str, ...] = ()
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            events = await pod_events(kube, pod)
    except (JkctlError, TimeoutError) as error:
        notes.append(f"events: {_said(error)}")
    if log_lines > 0:
        try:
            async with (
                asyncio.timeout(READ_TIMEOUT),
                pod_log(kube, pod, follow=False, tail=log_lines) as log,
            ):
                lines = tuple([line async for line in log])
        except (JkctlError, TimeoutError) as error:
            notes.append(f"log: {_said(error)}")
    return KernelDetails(
        placement=placement_of(pod),
        lease=lease_of(pod),
        events=events,
        log=lines,
        notes=tuple(notes),
    )


async def pod_events(kube: KubeClient, pod: PodState) -> tuple[KernelEvent, ...]:
    """The latest events about ``pod`` (this incarnation of the name), oldest first."""
    listed = await kube.list(
        EVENTS, namespace=pod.namespace, field_selector=f"involvedObject.name={pod.name}"
    )
    found = [
        event
        for event in listed["items"]
        if (event.get("involvedObject") or {}).get("uid") in (None, pod.uid)
    ]
    found.sort(key=_event_time)
    return tuple(
        KernelEvent(
            time=_event_time(event) or None,
            type=str(event.get("type") or ""),
            reason=str(event.get("reason") or ""),
            message=str(event.get("message") or ""),
            count=int(event.get("count") or 1),
        )
        for event in found[-EVENT_COUNT:]
    )


@contextlib.asynccontextmanager
async def pod_log(
    kube: KubeClient, pod: PodState, *, follow: bool, tail: int | None
) -> AsyncIterator[AsyncIterator[str]]:
    """The kernel container's log, line by line."""
    async with kube.pod_log(
        pod.name,
        namespace=pod.namespace,
        container=KERNEL_CONTAINER,
        follow=follow,
        tail_lines=tail,
    ) as lines:
        yield lines


async def delete_kernel_pod(kube: KubeClient, pod: PodState) -> None:
    """Delete a kernel's pod and its Secret (what `jkctl kernels stop` does without a daemon)."""
    with contextlib.suppress(KubeNotFound):
        await kube.delete(PODS, pod.name, namespace=pod.namespace)
    with contextlib.suppress(KubeNotFound):
        await kube.delete(SECRETS, pod.name, namespace=pod.namespace)


def parse_time(text: str | None) -> float | None:
    """An RFC 3339 time (as Kubernetes and jkctl's annotations write them), in epoch seconds."""
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _why_ended(pod: PodState, reason: str) -> str:
    """The wrapper exits 0 only when the lease lapsed (a clean kernel exit is relaunched)."""
    kernel = pod.container(KERNEL_CONTAINER)
    if (
        pod.phase == "Succeeded"
        and kernel is not None
        and kernel.state == "terminated"
        and kernel.exit_code == 0
    ):
        return "its lease lapsed (no daemon renewed it), so the kernel stopped itself"
    return reason


def _kernel_container(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    for container in (raw.get("spec") or {}).get("containers") or []:
        if container.get("name") == KERNEL_CONTAINER:
            found: Mapping[str, Any] = container
            return found
    return {}


def _strings(amounts: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in amounts.items()} if isinstance(amounts, Mapping) else {}


def _generation(pod: PodState) -> int:
    value = pod.annotations.get(manifests.GENERATION, "0")
    return int(value) if value.isdigit() else 0


def _event_time(event: Mapping[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def _said(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"the API did not answer within {READ_TIMEOUT:.0f} seconds"
    return error.message if isinstance(error, JkctlError) else str(error)
