"""The Job controller: pods from the template until enough succeed or the Job fails.

Non-indexed Jobs: up to `parallelism` pods run at once until `completions`
(default 1) have succeeded. A failed pod counts towards `backoffLimit`
(default 6; under restartPolicy OnFailure each container restart counts too)
and is replaced after the controller's back-off (base doubling per failure,
the real one is 10 s; kubesim takes the kubelet's restart base). Past the
limit the Job gets Failed/BackoffLimitExceeded, past activeDeadlineSeconds
Failed/DeadlineExceeded, and its running pods are deleted. Status: active,
ready, succeeded, failed, startTime, completionTime, conditions; events as
the job-controller words them. Pods carry the `batch.kubernetes.io/job-name`
and `controller-uid` labels and an ownerReference to the Job. Not done:
indexed completion, podFailurePolicy, suspend, ttlSecondsAfterFinished.
"""

from __future__ import annotations

import asyncio
import calendar
import copy
import time
from typing import Any

from tests.kubesim import admission, resources
from tests.kubesim.deletion import delete_pod, owned_by, owner_reference
from tests.kubesim.events import NORMAL, WARNING, EventRecorder
from tests.kubesim.status import ApiError
from tests.kubesim.store import Obj, Store, now_rfc3339


def _seconds(stamp: str) -> float:
    return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))


def _condition(kind: str, reason: str = "", message: str = "") -> Obj:
    now = now_rfc3339()
    condition: dict[str, Any] = {
        "type": kind,
        "status": "True",
        "lastProbeTime": now,
        "lastTransitionTime": now,
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _finished(job: Obj) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions)


class JobController:
    def __init__(self, store: Store, *, backoff_base: float = 10.0) -> None:
        self._store = store
        self._backoff_base = backoff_base
        self._events = EventRecorder(store, component="job-controller")
        self._wake = asyncio.Event()
        self._last_failure: dict[str, tuple[int, float]] = {}  # job uid -> (failures, when)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._follow(resources.JOBS))
            group.create_task(self._follow(resources.PODS))
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
            next_due: float | None = None
            jobs, _ = self._store.list(resources.JOBS)
            for job in jobs:
                due = self.reconcile(job)
                if due is not None:
                    next_due = due if next_due is None else min(next_due, due)
            wait = None if next_due is None else max(0.0, next_due - time.time())
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    def reconcile(self, job: Obj) -> float | None:
        """Bring one Job forward; returns when it next needs a look (a back-off or deadline)."""
        if _finished(job):
            return None
        meta, spec = job["metadata"], job["spec"]
        namespace, uid = meta["namespace"], meta["uid"]
        status: Obj = copy.deepcopy(job.get("status") or {})
        status.setdefault("startTime", now_rfc3339())
        pods, _ = self._store.list(resources.PODS, namespace)
        mine = [p for p in pods if owned_by(p, uid)]
        phase = {p["metadata"]["name"]: (p.get("status") or {}).get("phase") for p in mine}
        succeeded = sum(1 for p in mine if phase[p["metadata"]["name"]] == "Succeeded")
        failed = sum(1 for p in mine if phase[p["metadata"]["name"]] == "Failed")
        active = [
            p
            for p in mine
            if phase[p["metadata"]["name"]] not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")
        ]
        restarts = sum(
            c.get("restartCount", 0)
            for p in active
            if p["spec"].get("restartPolicy") == "OnFailure"
            for c in (p.get("status") or {}).get("containerStatuses") or []
        )
        completions = spec.get("completions", 1)
        parallelism = spec.get("parallelism", 1)
        backoff_limit = spec.get("backoffLimit", 6)
        ready = sum(
            1
            for p in active
            for c in (p.get("status") or {}).get("conditions") or []
            if c["type"] == "Ready" and c["status"] == "True"
        )
        status.update(
            {"active": len(active), "succeeded": succeeded, "failed": failed, "ready": ready}
        )
        due: float | None = None
        finish: Obj | None = None
        deadline = spec.get("activeDeadlineSeconds")
        if succeeded >= completions:
            finish = _condition("Complete")
            status["completionTime"] = now_rfc3339()
            self._events.record(job, NORMAL, "Completed", "Job completed")
        elif failed + restarts > backoff_limit:
            message = "Job has reached the specified backoff limit"
            finish = _condition("Failed", "BackoffLimitExceeded", message)
            self._events.record(job, WARNING, "BackoffLimitExceeded", message)
        elif deadline is not None and time.time() >= _seconds(status["startTime"]) + deadline:
            message = "Job was active longer than specified deadline"
            finish = _condition("Failed", "DeadlineExceeded", message)
            self._events.record(job, WARNING, "DeadlineExceeded", message)
        else:
            if deadline is not None:
                due = _seconds(status["startTime"]) + deadline
            wanted = min(parallelism, completions - succeeded) - len(active)
            if wanted > 0:
                wait_until = self._backoff_until(uid, failed)
                if wait_until > time.time():
                    due = wait_until if due is None else min(due, wait_until)
                else:
                    for _ in range(wanted):
                        self._create(job)
        if finish is not None:
            for pod in active:
                delete_pod(self._store, pod)
                self._events.record(
                    job, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}"
                )
            status["conditions"] = [*status.get("conditions", []), finish]
            status["active"] = 0
            status["ready"] = 0

        def write(obj: Obj) -> None:
            if obj["metadata"]["uid"] == uid:
                obj["status"] = status

        try:
            self._store.mutate(resources.JOBS, namespace, meta["name"], write)
        except ApiError:
            return None
        return due

    def _backoff_until(self, uid: str, failed: int) -> float:
        """When a replacement may be created: base * 2^(failures-1) after the last failure."""
        if failed == 0:
            return 0.0
        seen, when = self._last_failure.get(uid, (0, 0.0))
        if failed != seen:
            when = time.time()
            self._last_failure[uid] = (failed, when)
        return when + min(self._backoff_base * 2 ** (failed - 1), 360.0)

    def _create(self, job: Obj) -> None:
        template = copy.deepcopy(job["spec"]["template"])
        meta = template.get("metadata") or {}
        name, uid = job["metadata"]["name"], job["metadata"]["uid"]
        labels = {
            **(meta.get("labels") or {}),
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
        pod = {
            "metadata": {
                "generateName": f"{name}-",
                "namespace": job["metadata"]["namespace"],
                "labels": labels,
                "annotations": dict(meta.get("annotations") or {}),
                "ownerReferences": [owner_reference(job)],
            },
            "spec": template["spec"],
        }
        try:
            created = admission.create(self._store, resources.PODS, pod)
        except ApiError as error:
            self._events.record(job, WARNING, "FailedCreate", f"Error creating: {error}")
            return
        self._events.record(
            job, NORMAL, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}"
        )
