"""Kernels as `jkctl kernels` shows them: one JSON row per kernel, the same from both sources.

A row is built either from a kernel the daemon serves (:func:`kernel_row`:
its state, activity and connections, plus where its backend says it runs) or,
when no daemon runs, from what the cluster says alone (:func:`placement_row`:
a pod's labels, annotations and status). Both give a :class:`KernelRow`, so
the CLI renders one shape, and ``-o json`` gives scripts that same shape.
Fields the source cannot know are null (connections without a daemon; pod,
node and resources on the local backend).

``state`` is one word: ``starting``, ``idle``, ``busy``, ``restarting``,
``dead`` (the daemon's), ``running`` (a pod without a daemon watching it),
``pending`` or ``ended``, with ``reason`` saying why ("pulling image ...",
"its lease lapsed ...").

What this module does not do: HTTP, or reading the cluster; it shapes data.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NotRequired, TypedDict, cast

from jkctl.errors import JkctlError

if TYPE_CHECKING:
    from jkctl.backends.base import KernelDetails, Placement
    from jkctl.kernels.kernel import Kernel
    from jkctl.kube.quota import QuotaLine, TeamUsage

GPU = "nvidia.com/gpu"


class Requested(TypedDict):
    cpu: str | None
    memory: str | None
    gpu: str | None


class KernelRow(TypedDict):
    id: str
    kernelspec: str
    state: str
    reason: str
    backend: str
    namespace: str | None
    pod: str | None
    node: str | None
    phase: str | None
    created: str | None
    last_activity: str | None
    connections: int | None
    requests: Requested
    image: str | None
    owner: str | None
    pid: int | None
    #: Whether the running daemon serves this kernel (False: found in the cluster only).
    attached: bool
    #: How often the daemon's connection to the kernel dropped (only from a daemon).
    drops: NotRequired[int]


class EventModel(TypedDict):
    time: str | None
    type: str
    reason: str
    message: str
    count: int


class LeaseModel(TypedDict):
    seconds: int
    renewed: str | None


class KernelDetailsModel(KernelRow):
    limits: dict[str, str]
    lease: LeaseModel | None
    events: list[EventModel]
    log: list[str]
    notes: list[str]
    #: When the daemon will cull the kernel if it stays idle (null: never); only from a daemon.
    cull_at: NotRequired[str | None]


class Amount(TypedDict):
    used: float
    hard: float


class TeamModel(TypedDict):
    team: str
    namespace: str
    summary: str
    cpu: Amount | None
    memory_bytes: Amount | None
    gpu: Amount | None
    kernels: Amount | None


def timestamp(seconds: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (``2025-01-31T12:00:00Z``), None as None."""
    if seconds is None:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def kernel_row(kernel: Kernel, placement: Placement) -> KernelRow:
    """A kernel the daemon serves: its own state and activity, its backend's placement."""
    row = placement_row(placement, attached=True)
    state, reason = str(kernel.state), kernel.reason
    if state == "starting" and placement.condition.startswith("pending: "):
        state, reason = "pending", placement.condition.removeprefix("pending: ")
    elif kernel.link_down_since is not None and state in ("idle", "busy"):
        reason = f"{state}; the connection to the kernel dropped and is being re-established"
        state = "reconnecting"
    row["state"], row["reason"] = state, reason
    row["last_activity"] = timestamp(kernel.last_activity)
    row["connections"] = kernel.connections
    row["drops"] = kernel.link.drops
    return row


def placement_row(placement: Placement, *, attached: bool = False) -> KernelRow:
    """A kernel known only from its backend's view (a pod no daemon serves)."""
    condition = placement.condition
    if condition.startswith("pending: "):
        state, reason = "pending", condition.removeprefix("pending: ")
    elif condition.startswith("ended: ") or placement.ended:
        state, reason = "ended", condition.removeprefix("ended: ")
    else:
        state, reason = "running", ""
    requests = placement.requests
    return {
        "id": placement.kernel_id,
        "kernelspec": placement.kernelspec,
        "state": state,
        "reason": reason,
        "backend": placement.backend,
        "namespace": placement.namespace,
        "pod": placement.pod,
        "node": placement.node,
        "phase": placement.phase,
        "created": timestamp(placement.created),
        "last_activity": timestamp(placement.last_activity),
        "connections": None,
        "requests": {
            "cpu": requests.get("cpu"),
            "memory": requests.get("memory"),
            "gpu": requests.get(GPU) or placement.limits.get(GPU),
        },
        "image": placement.image,
        "owner": placement.owner,
        "pid": placement.pid,
        "attached": attached,
    }


def details_model(row: KernelRow, details: KernelDetails) -> KernelDetailsModel:
    """What `jkctl kernels describe` shows: the row, plus lease, events and log."""
    lease = details.lease
    extra = {
        "limits": dict(details.placement.limits),
        "lease": {"seconds": lease.seconds, "renewed": lease.renewed} if lease else None,
        "events": [
            {
                "time": event.time,
                "type": event.type,
                "reason": event.reason,
                "message": event.message,
                "count": event.count,
            }
            for event in details.events
        ],
        "log": list(details.log),
        "notes": list(details.notes),
    }
    return cast(KernelDetailsModel, {**row, **extra})


def team_model(usage: TeamUsage) -> TeamModel:
    """A team's quota usage, as numbers and as the one line `jkctl connect` prints."""

    def amount(dimension: str) -> Amount | None:
        line: QuotaLine | None = usage.line(dimension)
        return None if line is None else {"used": float(line.used), "hard": float(line.hard)}

    return {
        "team": usage.team,
        "namespace": usage.namespace,
        "summary": usage.summary(),
        "cpu": amount("cpu"),
        "memory_bytes": amount("memory"),
        "gpu": amount("gpu"),
        "kernels": amount("kernels"),
    }


def requests_of(resources: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """A kernelspec's requests, with a GPU limit counted as its request (as Kubernetes does)."""
    requests = dict(resources.get("requests") or {})
    limits = resources.get("limits") or {}
    if GPU in limits:
        requests.setdefault(GPU, limits[GPU])
    return requests


class StopReport(TypedDict):
    stopped: list[str]
    failed: list[dict[str, object]]


def stop_report(kernel_ids: Sequence[str], results: Sequence[object]) -> StopReport:
    """What ``jkctl kernels stop`` prints, from one result per kernel (as
    ``asyncio.gather(..., return_exceptions=True)`` gives them): a JkctlError says why
    that kernel was not stopped; any other exception is a bug and raised."""
    report: StopReport = {"stopped": [], "failed": []}
    for kernel_id, result in zip(kernel_ids, results, strict=True):
        if isinstance(result, JkctlError):
            report["failed"].append({"id": kernel_id, "error": dict(result.to_payload())})
        elif isinstance(result, BaseException):
            raise result
        else:
            report["stopped"].append(kernel_id)
    return report
