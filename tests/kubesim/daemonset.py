"""The DaemonSet controller: one pod per eligible node, replaced when the template changes.

A node is eligible when the DaemonSet's pod would be allowed there by its
node selector / affinity and by the node's NoSchedule/NoExecute taints,
given the tolerations the real controller adds to every daemon pod
(not-ready and unreachable NoExecute, the pressure and unschedulable
NoSchedule taints). Pods get the template's labels plus
`controller-revision-hash` and `pod-template-generation`, an ownerReference
to the DaemonSet, and required node affinity on `metadata.name` so the
scheduler puts each on its node. A template change replaces the pods whose
hash is old (all at once: kubesim does not pace a rolling update by
maxUnavailable); failed pods are deleted and created again. Status counts
are the real ones. Deleting the DaemonSet deletes its pods (gc.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json

from tests.kubesim import admission, resources
from tests.kubesim.deletion import delete_pod, owned_by, owner_reference
from tests.kubesim.events import NORMAL, EventRecorder
from tests.kubesim.scheduler import _affinity_matches, _tolerates
from tests.kubesim.status import ApiError
from tests.kubesim.store import Obj, Store

DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def template_hash(daemonset: Obj) -> str:
    text = json.dumps(daemonset["spec"]["template"], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _pod_for(daemonset: Obj, node: str) -> Obj:
    template = copy.deepcopy(daemonset["spec"]["template"])
    meta = template.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    labels["controller-revision-hash"] = template_hash(daemonset)
    labels["pod-template-generation"] = str(daemonset["metadata"].get("generation", 1))
    spec = template["spec"]
    tolerations = list(spec.get("tolerations") or [])
    tolerations += [t for t in DAEMON_TOLERATIONS if t not in tolerations]
    spec["tolerations"] = tolerations
    spec.setdefault("restartPolicy", "Always")
    affinity = spec.setdefault("affinity", {})
    affinity["nodeAffinity"] = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
            ]
        }
    }
    return {
        "metadata": {
            "generateName": f"{daemonset['metadata']['name']}-",
            "namespace": daemonset["metadata"]["namespace"],
            "labels": labels,
            "annotations": dict(meta.get("annotations") or {}),
            "ownerReferences": [owner_reference(daemonset)],
        },
        "spec": spec,
    }


def should_run(daemonset: Obj, node: Obj) -> bool:
    probe = _pod_for(daemonset, node["metadata"]["name"])
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(
            probe["spec"]["tolerations"], taint
        ):
            return False
    return _affinity_matches(probe, node)


def _target_node(pod: Obj) -> str | None:
    if pod["spec"].get("nodeName"):
        return str(pod["spec"]["nodeName"])
    terms = (
        pod["spec"]
        .get("affinity", {})
        .get("nodeAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", {})
        .get("nodeSelectorTerms", [])
    )
    for term in terms:
        for field in term.get("matchFields") or []:
            if field["key"] == "metadata.name" and field.get("values"):
                return str(field["values"][0])
    return None


class DaemonSetController:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._events = EventRecorder(store, component="daemonset-controller")
        self._wake = asyncio.Event()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for rtype in (resources.DAEMONSETS, resources.PODS, resources.NODES):
                group.create_task(self._follow(rtype))
            group.create_task(self._reconcile_forever())

    async def _follow(self, rtype: resources.ResourceType) -> None:
        watch = self._store.watch(rtype)
        try:
            async for event in watch:
                if rtype != resources.PODS or event.object["metadata"].get("ownerReferences"):
                    self._wake.set()
        finally:
            watch.close()

    async def _reconcile_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            daemonsets, _ = self._store.list(resources.DAEMONSETS)
            for daemonset in daemonsets:
                self.reconcile(daemonset)

    def reconcile(self, daemonset: Obj) -> None:
        meta = daemonset["metadata"]
        namespace = meta["namespace"]
        current_hash = template_hash(daemonset)
        nodes, _ = self._store.list(resources.NODES)
        pods, _ = self._store.list(resources.PODS, namespace)
        mine = [p for p in pods if owned_by(p, meta["uid"])]
        desired = current = ready = updated = misscheduled = 0
        for node in nodes:
            name = node["metadata"]["name"]
            on_node = [p for p in mine if _target_node(p) == name]
            live = [p for p in on_node if not p["metadata"].get("deletionTimestamp")]
            wanted = should_run(daemonset, node)
            desired += wanted
            if not wanted:
                misscheduled += bool(live)
                for pod in live:
                    self._delete(daemonset, pod)
                continue
            for pod in live:
                old = (
                    pod["metadata"].get("labels", {}).get("controller-revision-hash")
                    != current_hash
                )
                if old or (pod.get("status") or {}).get("phase") == "Failed":
                    self._delete(daemonset, pod)
            remaining = self._refresh(on_node)
            live = [p for p in remaining if not p["metadata"].get("deletionTimestamp")]
            if not remaining:
                self._create(daemonset, name)
                continue
            if live:
                current += 1
                ready += _ready(live[0])
                updated += (
                    live[0]["metadata"]["labels"].get("controller-revision-hash") == current_hash
                )
        status = {
            "currentNumberScheduled": current,
            "desiredNumberScheduled": desired,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "numberAvailable": ready,
            "updatedNumberScheduled": updated,
            "observedGeneration": meta.get("generation", 1),
        }
        if desired - ready:
            status["numberUnavailable"] = desired - ready

        def write(obj: Obj) -> None:
            if obj["metadata"]["uid"] == meta["uid"]:
                obj["status"] = status

        with contextlib.suppress(ApiError):
            self._store.mutate(resources.DAEMONSETS, namespace, meta["name"], write)

    def _refresh(self, pods: list[Obj]) -> list[Obj]:
        found = []
        for pod in pods:
            now = self._store.try_get(
                resources.PODS, pod["metadata"]["namespace"], pod["metadata"]["name"]
            )
            if now is not None and now["metadata"]["uid"] == pod["metadata"]["uid"]:
                found.append(now)
        return found

    def _create(self, daemonset: Obj, node: str) -> None:
        try:
            pod = admission.create(self._store, resources.PODS, _pod_for(daemonset, node))
        except ApiError as error:
            self._events.record(daemonset, "Warning", "FailedCreate", f"Error creating: {error}")
            return
        self._events.record(
            daemonset, NORMAL, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}"
        )

    def _delete(self, daemonset: Obj, pod: Obj) -> None:
        delete_pod(self._store, pod)
        self._events.record(
            daemonset, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}"
        )
