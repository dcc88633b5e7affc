"""Pre-pulling kernel images: a DaemonSet that pulls every kernel image on every node.

Kernels start in seconds when their image is already on the node. The
pre-puller is one DaemonSet (``jkctl-prepull``) in the user's namespace:
its pod has one init container per distinct kernel image, each running
``/bin/sh -c true`` (so the kubelet pulls the image, and jkctl learns the
image can run its kernel wrapper, which needs ``/bin/sh``), then a tiny
pause container that keeps the pod, and so the images, in place. The pod
asks for almost nothing, tolerates the taints the kernelspecs tolerate (so
GPU nodes pull too), carries the kernelspecs' pull secrets, and runs as
non-root with nothing writable. Its labels say it is jkctl's.

:func:`apply_prepull` creates or replaces it; :func:`wait_prepulled`
follows the DaemonSet and its pods by watching, reports each node's
progress to a callback, returns once every node's pod is ready on the
current template, and raises :class:`~jkctl.errors.PrepullError` at once
when a node cannot pull an image or the image cannot run ``sh``.
:func:`remove_prepull` deletes it. What images to pull is the caller's
choice (:func:`plan_prepull` reads them from kernelspecs' pod settings).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jkctl.errors import JkctlError, KubeNotFound, PrepullError

from .client import KubeClient, Propagation
from .objects import KubeObject
from .objectwatch import follow_object
from .podconfig import PodConfig
from .podwatch import ContainerState, PodEvent, PodEventType, PodsSynced, PodState, follow_pods
from .resources import DAEMONSETS

NAME = "jkctl-prepull"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
COMPONENT_LABEL = "jkctl.io/component"
LABELS = {
    "app.kubernetes.io/name": NAME,
    "app.kubernetes.io/managed-by": "jkctl",
    COMPONENT_LABEL: "prepull",
}
IMAGES_ANNOTATION = "jkctl.io/images"
MAIN_CONTAINER = "pause"
#: Waiting reasons that mean an image will not arrive without someone acting.
PULL_FAILURES = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
_TINY = {"requests": {"cpu": "1m", "memory": "8Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}}


@dataclass(frozen=True, kw_only=True)
class PrepullImage:
    image: str
    pull_policy: str = "IfNotPresent"
    #: The kernelspecs that use it, for people reading the DaemonSet.
    kernelspecs: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PrepullPlan:
    """What the pre-puller pulls, and where it may run."""

    images: tuple[PrepullImage, ...]
    tolerations: tuple[Mapping[str, Any], ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    name: str = NAME
    pause_image: str = PAUSE_IMAGE


def plan_prepull(configs: Mapping[str, PodConfig]) -> PrepullPlan:
    """The plan for kernelspecs (name -> pod settings); specs without an image are skipped."""
    users: dict[str, list[str]] = {}
    policies: dict[str, str] = {}
    tolerations: list[Mapping[str, Any]] = []
    secrets: list[str] = []
    for spec_name, config in sorted(configs.items()):
        if not config.image:
            continue
        users.setdefault(config.image, []).append(spec_name)
        if config.image_pull_policy == "Always" or config.image not in policies:
            policies[config.image] = config.image_pull_policy
        tolerations += [t for t in config.tolerations if t not in tolerations]
        secrets += [s for s in config.image_pull_secrets if s not in secrets]
    images = tuple(
        PrepullImage(image=image, pull_policy=policies[image], kernelspecs=tuple(names))
        for image, names in sorted(users.items())
    )
    return PrepullPlan(
        images=images, tolerations=tuple(tolerations), image_pull_secrets=tuple(secrets)
    )


def init_container_name(index: int) -> str:
    return f"pull-{index}"


def daemonset_manifest(plan: PrepullPlan, *, namespace: str) -> KubeObject:
    """The DaemonSet for `plan`, as sent to the API server."""
    security = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    pullers = [
        {
            "name": init_container_name(index),
            "image": entry.image,
            "imagePullPolicy": entry.pull_policy,
            "command": ["/bin/sh", "-c", "true"],
            "resources": _TINY,
            "securityContext": security,
        }
        for index, entry in enumerate(plan.images)
    ]
    images = {entry.image: list(entry.kernelspecs) for entry in plan.images}
    pod_spec: KubeObject = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 1,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": pullers,
        "containers": [
            {
                "name": MAIN_CONTAINER,
                "image": plan.pause_image,
                "imagePullPolicy": "IfNotPresent",
                "resources": _TINY,
                "securityContext": security,
            }
        ],
    }
    if plan.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in plan.tolerations]
    if plan.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in plan.image_pull_secrets]
    selector = {COMPONENT_LABEL: "prepull", "app.kubernetes.io/instance": plan.name}
    labels = {**LABELS, **selector}
    return {
        "apiVersion": DAEMONSETS.api_version,
        "kind": "DaemonSet",
        "metadata": {"name": plan.name, "namespace": namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": selector},
            # Every node at once: the pods serve nothing, so none must stay up meanwhile.
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "100%"},
            },
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {IMAGES_ANNOTATION: json.dumps(images, sort_keys=True)},
                },
                "spec": pod_spec,
            },
        },
    }


async def apply_prepull(kube: KubeClient, plan: PrepullPlan, *, namespace: str) -> KubeObject:
    """Create the pre-puller's DaemonSet, or replace the one there; returns what was stored."""
    manifest = daemonset_manifest(plan, namespace=namespace)
    try:
        current = await kube.get(DAEMONSETS, plan.name, namespace=namespace)
    except KubeNotFound:
        return await kube.create(DAEMONSETS, manifest, namespace=namespace)
    manifest["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    return await kube.replace(DAEMONSETS, plan.name, manifest, namespace=namespace)


async def remove_prepull(kube: KubeClient, *, namespace: str, name: str = NAME) -> bool:
    """Delete the pre-puller (its pods go with it); False if there was none."""
    try:
        await kube.delete(DAEMONSETS, name, namespace=namespace, propagation=Propagation.BACKGROUND)
    except KubeNotFound:
        return False
    return True


@dataclass(frozen=True, kw_only=True)
class NodeProgress:
    """One node's pre-puller pod."""

    node: str
    #: Images pulled (and run) so far, of `total`.
    pulled: int
    total: int
    #: The image being pulled now, if one is.
    pulling: str | None = None
    ready: bool = False
    #: Why the node is stuck (ErrImagePull ...), if it is.
    problem: str | None = None


@dataclass(frozen=True, kw_only=True)
class PrepullProgress:
    """The pre-puller as a whole: how many nodes should run it, and each node's state."""

    desired: int | None
    ready: int
    nodes: tuple[NodeProgress, ...] = ()
    done: bool = False


@dataclass
class _Tracker:
    """What the two watches have told so far."""

    images: tuple[str, ...]
    daemonset: KubeObject | None = None
    #: The DaemonSet existed and then went away.
    deleted: bool = False
    pods: dict[str, PodState] = field(default_factory=dict)

    def current(self, pod: PodState) -> bool:
        generation = str((self.daemonset or {}).get("metadata", {}).get("generation", ""))
        return pod.labels.get("pod-template-generation", generation) == generation

    def progress(self) -> PrepullProgress:
        daemonset = self.daemonset or {}
        status = daemonset.get("status") or {}
        generation = daemonset.get("metadata", {}).get("generation", 0)
        observed = status.get("observedGeneration", 0) >= generation and bool(status)
        desired = status.get("desiredNumberScheduled") if observed else None
        nodes = tuple(
            sorted(
                (
                    self._node(pod)
                    for pod in self.pods.values()
                    if not pod.deleting and self.current(pod)
                ),
                key=lambda node: node.node,
            )
        )
        ready = sum(node.ready for node in nodes)
        done = (
            desired is not None
            and status.get("updatedNumberScheduled", 0) == desired
            and status.get("numberReady", 0) == desired
            and ready == desired
        )
        return PrepullProgress(desired=desired, ready=ready, nodes=nodes, done=done)

    def _node(self, pod: PodState) -> NodeProgress:
        total = len(self.images)
        pulled = sum(1 for c in pod.init_containers if c.state == "terminated" and c.exit_code == 0)
        ready = pod.phase == "Running" and all(c.ready for c in pod.containers)
        pulling = None
        problem = None
        for index, container in enumerate(pod.init_containers):
            if container.state == "terminated" and container.exit_code == 0:
                continue
            image = self.images[index] if index < len(self.images) else container.name
            problem = _problem(container, image)
            pulling = None if problem else image
            break
        else:
            main = pod.container(MAIN_CONTAINER)
            if main is not None and main.reason in PULL_FAILURES:
                problem = f"{main.reason}: {main.message or 'the pause image cannot be pulled'}"
        return NodeProgress(
            node=pod.node or "(not scheduled yet)",
            pulled=pulled,
            total=total,
            pulling=pulling,
            ready=ready,
            problem=problem,
        )


def _problem(container: ContainerState, image: str) -> str | None:
    if container.reason in PULL_FAILURES:
        return f"cannot pull {image}: {container.reason}" + (
            f" ({container.message})" if container.message else ""
        )
    failed_run = (container.state == "terminated" and container.exit_code not in (0, None)) or (
        container.last_exit_code not in (0, None)
    )
    if failed_run or container.reason in ("CrashLoopBackOff", "StartError", "RunContainerError"):
        code = container.exit_code if container.exit_code is not None else container.last_exit_code
        return (
            f"pulled {image}, but `/bin/sh -c true` fails in it (exit code {code}); "
            "kernel pods need /bin/sh in the image"
        )
    return None


async def wait_prepulled(
    kube: KubeClient,
    plan: PrepullPlan,
    *,
    namespace: str,
    on_progress: Callable[[PrepullProgress], None],
) -> PrepullProgress:
    """Follow the pre-puller until every node's pod is ready; report each change.

    Raises PrepullError as soon as a node cannot pull an image (the
    DaemonSet stays, so the kubelet keeps retrying) or when the DaemonSet
    is deleted meanwhile. Put a timeout around it at the call site.
    """
    tracker = _Tracker(images=tuple(entry.image for entry in plan.images))
    changed: asyncio.Queue[None] = asyncio.Queue()
    outcome: PrepullProgress | PrepullError | None = None
    try:
        async with asyncio.TaskGroup() as group:
            watches = [
                group.create_task(_watch_daemonset(kube, plan.name, namespace, tracker, changed)),
                group.create_task(_watch_pods(kube, plan.name, namespace, tracker, changed)),
            ]
            while outcome is None:
                await changed.get()
                outcome = _judge(tracker, plan, namespace)
                on_progress(tracker.progress())
            for watch in watches:
                watch.cancel()
    except BaseExceptionGroup as failed:
        # A watch failed (Forbidden, API down): its own error says it, with its own cause.
        raise _first_error(failed)  # noqa: B904 -- the group is context, not the cause
    if isinstance(outcome, PrepullError):
        raise outcome
    return outcome


def _judge(
    tracker: _Tracker, plan: PrepullPlan, namespace: str
) -> PrepullProgress | PrepullError | None:
    if tracker.deleted:
        return PrepullError(
            f"The pre-puller DaemonSet {namespace}/{plan.name} was deleted while jkctl waited.",
            hint="Run `jkctl images prepull` again to recreate it.",
        )
    progress = tracker.progress()
    stuck = [node for node in progress.nodes if node.problem]
    if stuck:
        first = stuck[0]
        others = f" (and {len(stuck) - 1} more nodes)" if len(stuck) > 1 else ""
        return PrepullError(
            f"Node {first.node}{others} cannot pre-pull: {first.problem}.",
            hint="Check the image name and the kernelspec's imagePullSecrets; the DaemonSet "
            f"stays so the kubelet keeps retrying (`jkctl images prepull --remove -n {namespace}` "
            "removes it).",
        )
    return progress if progress.done else None


async def _watch_daemonset(
    kube: KubeClient, name: str, namespace: str, tracker: _Tracker, changed: asyncio.Queue[None]
) -> None:
    async with follow_object(kube, DAEMONSETS, name, namespace=namespace) as changes:
        async for daemonset in changes:
            if daemonset is None and tracker.daemonset is not None:
                tracker.deleted = True
            tracker.daemonset = daemonset
            changed.put_nowait(None)


async def _watch_pods(
    kube: KubeClient, name: str, namespace: str, tracker: _Tracker, changed: asyncio.Queue[None]
) -> None:
    selector = f"{COMPONENT_LABEL}=prepull,app.kubernetes.io/instance={name}"
    async with follow_pods(kube, namespace=namespace, label_selector=selector) as events:
        async for event in events:
            if isinstance(event, PodsSynced):
                tracker.pods = {pod.name: pod for pod in event.pods.values()}
            elif isinstance(event, PodEvent):
                if event.type is PodEventType.DELETED:
                    tracker.pods.pop(event.pod.name, None)
                else:
                    tracker.pods[event.pod.name] = event.pod
            changed.put_nowait(None)


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    leaves = list(_leaves(group))
    return next((error for error in leaves if isinstance(error, JkctlError)), leaves[0])


def _leaves(error: BaseException) -> Iterable[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error
