"""The pod status the kubelet writes: phase, conditions and container statuses.

`compose` follows the kubelet's `getPhase` and `generateAPIPodStatus`:
Pending while any container waits for its first run, Running while any runs
(or may run again under restartPolicy Always/OnFailure), Succeeded/Failed once
all have stopped for good; a pod the kubelet terminated (deletion, deadline)
ends Succeeded only if every container exited 0. Conditions come in the
kubelet's order with its reasons (ContainersNotReady, ContainersNotInitialized,
PodCompleted); lastTransitionTime moves only when a condition's status does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.kubesim.store import Obj, now_rfc3339

if TYPE_CHECKING:
    from tests.kubesim.podworker import PodWorker


def _phase(worker: PodWorker) -> str:  # noqa: PLR0911 (the kubelet's getPhase, case by case)
    if worker.failure is not None:
        return "Failed"
    inits = worker.init_runners
    if any(r.done and not r.succeeded for r in inits):
        return "Failed"
    if not all(r.done and r.succeeded for r in inits):
        return "Pending"
    waiting = running = stopped = succeeded = 0
    runners = [worker.runners.get(c["name"]) for c in worker.pod["spec"]["containers"]]
    for runner in runners:
        if runner is None:
            waiting += 1
        elif "running" in runner.state:
            running += 1
        elif "terminated" in runner.state:
            stopped += 1
            succeeded += runner.state["terminated"]["exitCode"] == 0
        elif runner.last_state.get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if worker.stopping and running == 0 and waiting == 0:
        return "Succeeded" if stopped == succeeded else "Failed"
    if waiting:
        return "Pending"
    if running:
        return "Running"
    policy = worker.restart_policy
    if policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Failed" if policy == "Never" else "Running"


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    condition: dict[str, Any] = {"type": kind, "status": "True" if ok else "False"}
    if not ok and reason:
        condition["reason"] = reason
    if not ok and message:
        condition["message"] = message
    return condition


def _qos(pod: Obj) -> str:
    containers = pod["spec"]["containers"] + pod["spec"].get("initContainers", [])
    requests = [c.get("resources", {}).get("requests") or {} for c in containers]
    limits = [c.get("resources", {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    for request, limit in zip(requests, limits, strict=True):
        for resource in ("cpu", "memory"):
            if resource not in limit or request.get(resource, limit[resource]) != limit[resource]:
                return "Burstable"
    return "Guaranteed"


def _placeholder(container: Obj, reason: str) -> Obj:
    return {
        "name": container["name"],
        "state": {"waiting": {"reason": reason}},
        "lastState": {},
        "ready": False,
        "restartCount": 0,
        "image": container.get("image", ""),
        "imageID": "",
        "started": False,
    }


def compose(worker: PodWorker, previous: Obj) -> Obj:
    pod = worker.pod
    phase = _phase(worker)
    not_ready = [
        c["name"]
        for c in pod["spec"]["containers"]
        if not (c["name"] in worker.runners and worker.runners[c["name"]].running)
    ]
    incomplete = [r.name for r in worker.init_runners if not (r.done and r.succeeded)]
    if phase == "Succeeded":
        ready_reason, ready_message = "PodCompleted", ""
    else:
        ready_reason = "ContainersNotReady"
        ready_message = f"containers with unready status: [{' '.join(not_ready)}]"
    initialized_reason = "PodCompleted" if phase == "Succeeded" else "ContainersNotInitialized"
    conditions = [
        _condition("PodReadyToStartContainers", worker.sandbox_ready),
        _condition(
            "Initialized",
            not incomplete or phase == "Succeeded",
            initialized_reason,
            f"containers with incomplete status: [{' '.join(incomplete)}]",
        ),
        _condition("Ready", not not_ready, ready_reason, ready_message),
        _condition("ContainersReady", not not_ready, ready_reason, ready_message),
    ]
    old = {c["type"]: c for c in previous.get("conditions", [])}
    now = now_rfc3339()
    for condition in conditions:
        before = old.get(condition["type"])
        same = before is not None and before.get("status") == condition["status"]
        condition["lastProbeTime"] = None
        condition["lastTransitionTime"] = before.get("lastTransitionTime") if same else now  # type: ignore[union-attr]
    if "PodScheduled" in old:
        conditions.append(old["PodScheduled"])
    status: Obj = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": worker.node.host_ip,
        "hostIPs": [{"ip": worker.node.host_ip}],
        "startTime": worker.start_time,
        "containerStatuses": sorted(
            (
                worker.runners[c["name"]].status()
                if c["name"] in worker.runners
                else _placeholder(c, "PodInitializing" if worker.has_init else "ContainerCreating")
                for c in pod["spec"]["containers"]
            ),
            key=lambda s: str(s["name"]),
        ),
        "qosClass": _qos(pod),
    }
    if worker.init_runners or pod["spec"].get("initContainers"):
        by_name = {r.name: r for r in worker.init_runners}
        status["initContainerStatuses"] = [
            by_name[c["name"]].status()
            if c["name"] in by_name
            else _placeholder(c, "PodInitializing")
            for c in pod["spec"]["initContainers"]
        ]
    if worker.pod_ip:
        status["podIP"] = worker.pod_ip
        status["podIPs"] = [{"ip": worker.pod_ip}]
    if worker.failure is not None:
        status["reason"], status["message"] = worker.failure
    return status
