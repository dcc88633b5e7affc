"""Which log a pods/log request reads, and the 400s when there is none, as Kubernetes words them.

The API server picks the container (the only one, or the one named; else "a
container name must be specified ..."; an unknown name is "container X is
not valid for pod Y"); an unscheduled pod has no logs yet (an empty stream).
The kubelet then checks the container's status (`validateContainerLogStatus`):
previous needs a terminated last run, a waiting container has nothing to show
("is waiting to start: ContainerCreating", "trying and failing to pull image",
...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.kubesim.logs import ContainerLog
from tests.kubesim.status import bad_request
from tests.kubesim.store import Obj

if TYPE_CHECKING:
    from tests.kubesim.podworker import PodWorker


def _container_name(pod: Obj, container: str | None) -> str:
    spec = pod["spec"]
    names = [c["name"] for c in spec.get("containers") or []]
    init_names = [c["name"] for c in spec.get("initContainers") or []]
    ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []]
    name = pod["metadata"]["name"]
    if not container:
        if len(names) == 1:
            return names[0]
        message = (
            f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
        )
        if init_names:
            message += f" or one of the init containers: [{' '.join(init_names)}]"
        raise bad_request(message)
    if container not in names + init_names + ephemeral:
        raise bad_request(f"container {container} is not valid for pod {name}")
    return container


def select_log(
    pod: Obj, worker: PodWorker | None, *, container: str | None, previous: bool
) -> ContainerLog | None:
    """The log to stream, None for an empty stream; raises the API's 400s."""
    name = _container_name(pod, container)
    if not pod["spec"].get("nodeName"):
        return None
    pod_name = pod["metadata"]["name"]
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    statuses += (pod.get("status") or {}).get("initContainerStatuses") or []
    status = next((s for s in statuses if s["name"] == name), None)
    if status is None:
        raise bad_request(f'container "{name}" in pod "{pod_name}" is not available')
    state, last = status.get("state") or {}, (status.get("lastState") or {}).get("terminated")
    container_id: str | None
    if previous:
        if not last or not last.get("containerID"):
            raise bad_request(
                f'previous terminated container "{name}" in pod "{pod_name}" not found'
            )
        container_id = last["containerID"]
    elif "running" in state:
        container_id = status.get("containerID")
    elif "terminated" in state:
        container_id = state["terminated"].get("containerID") or (last or {}).get("containerID")
        if not container_id:
            raise bad_request(f'container "{name}" in pod "{pod_name}" is terminated')
    elif last:
        container_id = last.get("containerID")
        if not container_id:
            raise bad_request(f'container "{name}" in pod "{pod_name}" is terminated')
    elif "waiting" in state:
        reason = state["waiting"].get("reason", "")
        if reason == "ErrImagePull":
            reason = "image can't be pulled"
        elif reason == "ImagePullBackOff":
            reason = "trying and failing to pull image"
        raise bad_request(f'container "{name}" in pod "{pod_name}" is waiting to start: {reason}')
    else:
        raise bad_request(
            f'container "{name}" in pod "{pod_name}" is waiting to start - no logs yet'
        )
    if worker is None:
        return None
    runner = worker.runners.get(name) or next(
        (r for r in worker.init_runners if r.name == name), None
    )
    if runner is None or container_id not in runner.logs:
        return None
    return runner.logs[container_id]
