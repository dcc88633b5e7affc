"""kubesim's default-scheduler: binds pods to nodes the way kube-scheduler's filters decide.

Filters, in the real plugin order, the first failure naming the node's
reason: NodeUnschedulable, NodeName, TaintToleration (NoSchedule/NoExecute
taints need a toleration), NodeAffinity (nodeSelector and required node
affinity, including matchFields on metadata.name as DaemonSet pods use),
NodeResourcesFit (requests - limits where no request is given - against
allocatable minus what bound, non-terminal pods request; "Too many pods").
Among the nodes that fit it takes the least requested one. A pod that fits
nowhere gets PodScheduled=False/Unschedulable and a FailedScheduling event
worded like the real one, and is retried only when something that could
help changes: a node, or a pod leaving or finishing (no polling).
Not done: scoring beyond least-requested, preemption, pod (anti-)affinity,
topology spread, volumes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from typing import Any

from tests.kubesim import resources
from tests.kubesim.events import NORMAL, WARNING, EventRecorder
from tests.kubesim.quantity import parse_cpu, parse_memory
from tests.kubesim.status import ApiError
from tests.kubesim.store import Obj, Store, WatchEvent, now_rfc3339

SCHEDULER_NAME = "default-scheduler"
_UNRESOLVABLE = "Preemption is not helpful for scheduling"
_NO_VICTIMS = "No preemption victims found for incoming pod"


def pod_requests(pod: Obj) -> dict[str, int]:
    """Effective requests: the sum over containers, at least the largest init container."""

    def of(container: Obj) -> dict[str, int]:
        res = container.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        found: dict[str, int] = {}
        for name, value in merged.items():
            if name == "cpu":
                found[name] = parse_cpu(value)
            elif name in ("memory", "ephemeral-storage") or "/" in name:
                found[name] = parse_memory(value)
        return found

    total: Counter[str] = Counter()
    for container in pod["spec"].get("containers") or []:
        total.update(of(container))
    for container in pod["spec"].get("initContainers") or []:
        for name, value in of(container).items():
            total[name] = max(total[name], value)
    return dict(total)


def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _tolerates(tolerations: list[Obj], taint: Mapping[str, Any]) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
            continue
        key, operator = toleration.get("key", ""), toleration.get("operator", "Equal")
        if key and key != taint.get("key"):
            continue
        if not key and operator != "Exists":
            continue
        if operator == "Exists" or toleration.get("value", "") == taint.get("value", ""):
            return True
    return False


def _match_expression(expression: Obj, value: str | None) -> bool:
    operator, values = expression["operator"], expression.get("values") or []
    if operator == "In":
        return value in values
    if operator == "NotIn":
        return value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and values:
        return int(value) > int(values[0]) if operator == "Gt" else int(value) < int(values[0])
    return False


def _affinity_matches(pod: Obj, node: Obj) -> bool:
    labels = node["metadata"].get("labels") or {}
    for key, value in (pod["spec"].get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    return any(
        all(_match_expression(e, labels.get(e["key"])) for e in term.get("matchExpressions") or [])
        and all(_match_expression(e, fields.get(e["key"])) for e in term.get("matchFields") or [])
        for term in terms
    )


def _taint_text(taint: Mapping[str, Any]) -> str:
    return f"{{{taint.get('key')}: {taint.get('value', '')}}}"


def filter_node(pod: Obj, node: Obj, used: Mapping[str, int], pod_count: int) -> list[str]:
    """Why the pod cannot go to this node ([] if it can), in the scheduler's words."""
    spec = node.get("spec") or {}
    if spec.get("unschedulable") and not _tolerates(
        pod["spec"].get("tolerations") or [],
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
    ):
        return ["node(s) were unschedulable"]
    wanted = pod["spec"].get("nodeName")
    if wanted and wanted != node["metadata"]["name"]:
        return ["node(s) didn't match the requested node name"]
    tolerations = pod["spec"].get("tolerations") or []
    for taint in spec.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(
            tolerations, taint
        ):
            return [f"node(s) had untolerated taint {_taint_text(taint)}"]
    if not _affinity_matches(pod, node):
        return ["node(s) didn't match Pod's node affinity/selector"]
    # A Node written without status (as a client may create one) has nothing
    # allocatable: the real scheduler finds "Too many pods" there, not a crash.
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    reasons = []
    if pod_count + 1 > int(allocatable.get("pods", 0)):
        reasons.append("Too many pods")
    for name, amount in sorted(pod_requests(pod).items()):
        if amount == 0:
            continue
        if name == "cpu":
            have = parse_cpu(allocatable.get("cpu", "0"))
        else:
            have = parse_memory(allocatable.get(name, "0"))
        if used.get(name, 0) + amount > have:
            reasons.append(f"Insufficient {name}")
    return reasons


def failure_message(node_count: int, reasons: Mapping[str, list[str]]) -> str:
    """ "0/2 nodes are available: 2 Insufficient memory. preemption: 0/2 nodes ..." """
    counts: Counter[str] = Counter()
    preemption: Counter[str] = Counter()
    for node_reasons in reasons.values():
        counts.update(node_reasons)
        resolvable = all(r.startswith(("Insufficient", "Too many pods")) for r in node_reasons)
        preemption[_NO_VICTIMS if resolvable else _UNRESOLVABLE] += 1
    listed = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
    message = f"0/{node_count} nodes are available: {listed}."
    victims = ", ".join(f"{n} {reason}" for reason, n in sorted(preemption.items()))
    return f"{message} preemption: 0/{node_count} nodes are available: {victims}."


class Scheduler:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._events = EventRecorder(store, component=SCHEDULER_NAME)
        self._queue: dict[tuple[str, str], str] = {}  # (namespace, name) -> uid, to try now
        self._unschedulable: dict[tuple[str, str], str] = {}
        self._wake = asyncio.Event()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._follow(resources.PODS, self._on_pod))
            group.create_task(self._follow(resources.NODES, self._on_node))
            group.create_task(self._schedule_forever())

    async def _follow(self, rtype: resources.ResourceType, handle: Any) -> None:
        watch = self._store.watch(rtype)
        try:
            async for event in watch:
                handle(event)
        finally:
            watch.close()

    def _mine(self, pod: Obj) -> bool:
        return (pod["spec"].get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME

    def _on_pod(self, event: WatchEvent) -> None:
        pod = event.object
        key = (pod["metadata"].get("namespace", "default"), pod["metadata"]["name"])
        bound = bool(pod["spec"].get("nodeName"))
        if event.type == "DELETED":
            self._queue.pop(key, None)
            self._unschedulable.pop(key, None)
            if bound:
                self._retry_unschedulable()
            return
        if bound:
            if _terminal(pod):
                self._retry_unschedulable()
            return
        if (
            self._mine(pod)
            and not pod["metadata"].get("deletionTimestamp")
            and (key not in self._unschedulable or event.type == "ADDED")
        ):
            self._unschedulable.pop(key, None)
            self._queue[key] = pod["metadata"]["uid"]
            self._wake.set()

    def _on_node(self, _event: WatchEvent) -> None:
        self._retry_unschedulable()

    def _retry_unschedulable(self) -> None:
        if self._unschedulable:
            self._queue.update(self._unschedulable)
            self._unschedulable.clear()
            self._wake.set()

    async def _schedule_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            queue, self._queue = self._queue, {}
            for (namespace, name), uid in queue.items():
                pod = self._store.try_get(resources.PODS, namespace, name)
                if pod is None or pod["metadata"]["uid"] != uid or pod["spec"].get("nodeName"):
                    continue
                if not self.schedule_one(pod):
                    self._unschedulable[(namespace, name)] = uid

    def schedule_one(self, pod: Obj) -> bool:
        nodes, _ = self._store.list(resources.NODES)
        pods, _ = self._store.list(resources.PODS)
        used: dict[str, Counter[str]] = {n["metadata"]["name"]: Counter() for n in nodes}
        counts: Counter[str] = Counter()
        for other in pods:
            node_name = other["spec"].get("nodeName")
            if node_name in used and not _terminal(other):
                used[node_name].update(pod_requests(other))
                counts[node_name] += 1
        reasons = {
            n["metadata"]["name"]: filter_node(
                pod, n, used[n["metadata"]["name"]], counts[n["metadata"]["name"]]
            )
            for n in nodes
        }
        feasible = [name for name, why in reasons.items() if not why]
        if not feasible:
            message = (
                failure_message(len(nodes), reasons)
                if nodes
                else "no nodes available to schedule pods"
            )
            self._mark_unschedulable(pod, message)
            return False
        by_name = {n["metadata"]["name"]: n for n in nodes}
        chosen = min(feasible, key=lambda name: (_load(by_name[name], used[name]), name))
        self._bind(pod, chosen)
        return True

    def _mark_unschedulable(self, pod: Obj, message: str) -> None:
        self._events.record(pod, WARNING, "FailedScheduling", message)
        now = now_rfc3339()

        def change(obj: Obj) -> None:
            status = obj.setdefault("status", {})
            status.setdefault("phase", "Pending")
            conditions = [c for c in status.get("conditions", []) if c["type"] != "PodScheduled"]
            conditions.append(
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                }
            )
            status["conditions"] = conditions

        self._mutate(pod, change)

    def _bind(self, pod: Obj, node: str) -> None:
        now = now_rfc3339()

        def change(obj: Obj) -> None:
            obj["spec"]["nodeName"] = node
            status = obj.setdefault("status", {})
            status.setdefault("phase", "Pending")
            conditions = [c for c in status.get("conditions", []) if c["type"] != "PodScheduled"]
            conditions.append(
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                }
            )
            status["conditions"] = conditions

        if self._mutate(pod, change):
            meta = pod["metadata"]
            target = f"{meta.get('namespace', 'default')}/{meta['name']}"
            self._events.record(
                pod, NORMAL, "Scheduled", f"Successfully assigned {target} to {node}"
            )

    def _mutate(self, pod: Obj, change: Any) -> bool:
        meta = pod["metadata"]

        def guarded(obj: Obj) -> None:
            if obj["metadata"]["uid"] == meta["uid"] and not obj["spec"].get("nodeName"):
                change(obj)

        try:
            self._store.mutate(resources.PODS, meta.get("namespace"), meta["name"], guarded)
        except ApiError:
            return False
        return True


def _load(node: Obj, used: Mapping[str, int]) -> float:
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    cpu = used.get("cpu", 0) / max(parse_cpu(allocatable.get("cpu", "1")), 1)
    memory = used.get("memory", 0) / max(parse_memory(allocatable.get("memory", "1")), 1)
    return (cpu + memory) / 2
