"""Image builds as Kubernetes Jobs: Kaniko in the user's namespace, followed to the end.

For laptops without docker, podman or buildah, ``build-kernel-image --builder
cluster`` builds in the cluster. The build context travels as a gzipped
tarball in a ConfigMap (conda contexts are a few kilobytes; ConfigMaps hold
up to 1 MiB), mounted into a Job's pod that runs Kaniko with
``--context=tar://...``. Push credentials come from a
``kubernetes.io/dockerconfigjson`` Secret the user names, mounted where Kaniko
reads them (``/kaniko/.docker/config.json``). Kaniko runs as root inside its
container, as it must to unpack images; the Job never retries
(``backoffLimit: 0``), has a deadline, and is cleaned up after an hour.

:func:`run_build_job` creates the ConfigMap and the Job, watches the Job's
pod until the builder runs (failing at once, with the reason, when the
builder image cannot be pulled or the pod cannot be scheduled), streams the
builder's log lines to a callback, and returns how the Job ended. The
ConfigMap is deleted at the end; so is the Job when the build is
interrupted. Reading the log (steps, the failing step) is the caller's job
(:mod:`jkctl.images.cluster`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets as random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jkctl.errors import (
    BuilderUnavailable,
    ImageBuildError,
    JkctlError,
    KubeNotFound,
    UsageError,
)

from .client import KubeClient, PatchType, Propagation
from .objects import KubeObject
from .objectwatch import follow_object
from .podwatch import PodEvent, PodsSynced, PodState, follow_pods, pod_state
from .resources import CONFIGMAPS, EVENTS, JOBS, PODS, SECRETS

logger = logging.getLogger(__name__)

KANIKO_IMAGE = "gcr.io/kaniko-project/executor:v1.23.2"
CONTAINER = "build"
CONTEXT_DIR = "/workspace/context"
CONTEXT_FILE = "context.tar.gz"
DOCKER_CONFIG_DIR = "/kaniko/.docker"
BUILD_LABEL = "jkctl.io/build"
#: What a ConfigMap may hold, less room for its metadata.
MAX_CONTEXT_BYTES = 1_000_000
_PULL_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName"})


@dataclass(frozen=True, kw_only=True)
class KanikoSettings:
    """The builder: its image and entry point, and the Job's limits."""

    image: str = KANIKO_IMAGE
    #: The executor, as the Kaniko image's entry point names it. Images that
    #: put it elsewhere (or tests, which stand in a script) change it here.
    command: tuple[str, ...] = ("/kaniko/executor",)
    resources: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "4", "memory": "8Gi"},
        }
    )
    deadline_seconds: int = 3600
    keep_seconds: int = 3600
    #: How long the build pod may take to start (schedule, pull the builder) before jkctl
    #: gives up and says what the Job's events say.
    start_seconds: float = 600.0


@dataclass(frozen=True, kw_only=True)
class BuildJob:
    """One build: what to build, where to put it, with which credentials."""

    name: str
    namespace: str
    image: str
    push: bool
    context_tarball: bytes = field(repr=False)
    #: The Dockerfile's path inside the context.
    dockerfile: str = "Dockerfile"
    platform: str | None = None
    registry_secret: str | None = None
    settings: KanikoSettings = field(default_factory=KanikoSettings)


@dataclass(frozen=True, kw_only=True)
class BuildOutcome:
    succeeded: bool
    pod: str | None = None
    exit_code: int | None = None
    #: Kubernetes' reason (Error, DeadlineExceeded, OOMKilled, ...) when it failed.
    reason: str | None = None
    message: str | None = None


def job_name(env_name: str) -> str:
    """A fresh Job name for building `env_name`: `jkctl-build-geo-3f9a2c`."""
    stem = "".join(c if c.isalnum() else "-" for c in env_name.lower()).strip("-")[:40]
    return f"jkctl-build-{stem or 'image'}-{random.token_hex(3)}"


def kaniko_args(job: BuildJob) -> list[str]:
    args = [
        f"--context=tar://{CONTEXT_DIR}/{CONTEXT_FILE}",
        f"--dockerfile={job.dockerfile}",
        "--log-format=text",
        "--log-timestamp=false",
    ]
    args += [f"--destination={job.image}"] if job.push else ["--no-push"]
    if job.platform:
        args.append(f"--custom-platform={job.platform}")
    return args


def manifests(job: BuildJob) -> tuple[KubeObject, KubeObject]:
    """The ConfigMap holding the context, and the Job that builds it."""
    labels = {
        "app.kubernetes.io/name": "jkctl-build",
        "app.kubernetes.io/managed-by": "jkctl",
        BUILD_LABEL: job.name,
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": job.name, "namespace": job.namespace, "labels": labels},
        "binaryData": {CONTEXT_FILE: base64.b64encode(job.context_tarball).decode()},
    }
    mounts = [{"name": "context", "mountPath": CONTEXT_DIR, "readOnly": True}]
    volumes: list[dict[str, Any]] = [{"name": "context", "configMap": {"name": job.name}}]
    if job.registry_secret:
        mounts.append({"name": "registry", "mountPath": DOCKER_CONFIG_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "registry",
                "secret": {
                    "secretName": job.registry_secret,
                    "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                },
            }
        )
    container = {
        "name": CONTAINER,
        "image": job.settings.image,
        "command": list(job.settings.command),
        "args": kaniko_args(job),
        "resources": {side: dict(v) for side, v in job.settings.resources.items()},
        "volumeMounts": mounts,
    }
    pod_spec = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [container],
        "volumes": volumes,
    }
    job_manifest = {
        "apiVersion": JOBS.api_version,
        "kind": "Job",
        "metadata": {"name": job.name, "namespace": job.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": job.settings.deadline_seconds,
            "ttlSecondsAfterFinished": job.settings.keep_seconds,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
    return configmap, job_manifest


async def check_registry_secret(kube: KubeClient, name: str, *, namespace: str) -> None:
    """Refuse early when the push credentials do not exist or are not a registry Secret."""
    try:
        secret = await kube.get(SECRETS, name, namespace=namespace)
    except KubeNotFound:
        raise UsageError(
            f"--registry-secret {name}: there is no Secret {name} in namespace {namespace}.",
            hint=f"create it with `kubectl -n {namespace} create secret docker-registry {name} "
            "--docker-server=REGISTRY --docker-username=USER --docker-password=TOKEN`",
        ) from None
    if ".dockerconfigjson" not in (secret.get("data") or {}):
        raise UsageError(
            f"--registry-secret {name} has no .dockerconfigjson, so it holds no registry login.",
            hint="use a Secret of type kubernetes.io/dockerconfigjson "
            "(`kubectl create secret docker-registry`)",
        )


async def run_build_job(
    kube: KubeClient,
    job: BuildJob,
    *,
    on_line: Callable[[str], None],
    on_status: Callable[[str], None],
) -> BuildOutcome:
    """Run `job` to its end; each log line goes to `on_line`, pod news to `on_status`."""
    if len(job.context_tarball) > MAX_CONTEXT_BYTES:
        raise UsageError(
            f"the build context is {len(job.context_tarball)} bytes compressed, more than a "
            "ConfigMap holds (1 MiB).",
            hint="build with a local builder, or trim the environment file",
        )
    configmap, job_manifest = manifests(job)
    await kube.create(CONFIGMAPS, configmap, namespace=job.namespace)
    finished = False
    try:
        created = await kube.create(JOBS, job_manifest, namespace=job.namespace)
        await _owned_by(kube, job, created)
        on_status(f"created Job {job.namespace}/{job.name}")
        try:
            async with asyncio.timeout(job.settings.start_seconds):
                pod = await _wait_started(kube, job, on_status)
        except TimeoutError:
            raise await _not_started(kube, job) from None
        on_status(f"building in pod {pod}")
        async with kube.pod_log(
            pod, namespace=job.namespace, container=CONTAINER, follow=True
        ) as lines:
            async for line in lines:
                on_line(line)
        outcome = await _wait_finished(kube, job, pod)
        finished = True
        return outcome
    finally:
        await _clean_up(kube, job, delete_job=not finished)


async def _owned_by(kube: KubeClient, job: BuildJob, created: KubeObject) -> None:
    """Make the ConfigMap the Job's, so Kubernetes removes it with the Job whatever happens."""
    owner = {
        "apiVersion": JOBS.api_version,
        "kind": "Job",
        "name": job.name,
        "uid": created["metadata"]["uid"],
    }
    patch = {"metadata": {"ownerReferences": [owner]}}
    await kube.patch(
        CONFIGMAPS, job.name, patch, namespace=job.namespace, patch_type=PatchType.MERGE
    )


async def _wait_started(kube: KubeClient, job: BuildJob, on_status: Callable[[str], None]) -> str:
    """The Job's pod, once its builder runs (or already ended); raise when it cannot start."""
    last = ""
    async with follow_pods(
        kube, namespace=job.namespace, label_selector=f"{BUILD_LABEL}={job.name}"
    ) as events:
        async for event in events:
            pods = list(event.pods.values()) if isinstance(event, PodsSynced) else []
            if isinstance(event, PodEvent):
                pods = [event.pod]
            for pod in pods:
                container = pod.container(CONTAINER)
                if container is not None and container.state in ("running", "terminated"):
                    return pod.name
                problem = _cannot_start(pod, job)
                if problem is not None:
                    raise problem
                news = _pending_news(pod)
                if news != last:
                    on_status(news)
                    last = news
    raise AssertionError("unreachable: following pods only ends by raising")


async def _not_started(kube: KubeClient, job: BuildJob) -> ImageBuildError:
    """The error for a build pod that never started, with the Job's last warning."""
    events = await kube.list(EVENTS, namespace=job.namespace)
    warnings = [
        str(event.get("message", ""))
        for event in events["items"]
        if event.get("type") == "Warning"
        and (event.get("involvedObject") or {}).get("name", "").startswith(job.name)
    ]
    return ImageBuildError(
        f"the build Job {job.namespace}/{job.name} did not start a builder within "
        f"{job.settings.start_seconds:g} seconds.",
        hint=f"`kubectl -n {job.namespace} describe job/{job.name}` shows why "
        "(a ResourceQuota, a policy refusing root containers, a slow image pull)",
        context=f"Kubernetes said: {warnings[-1]}" if warnings else None,
    )


def _cannot_start(pod: PodState, job: BuildJob) -> JkctlError | None:
    container = pod.container(CONTAINER)
    if container is not None and container.reason in _PULL_FAILURES:
        return BuilderUnavailable(
            f"the cluster cannot pull the builder image {job.settings.image} ({container.reason}).",
            hint="check --builder-image, and that the nodes can reach its registry",
            context=container.message,
        )
    if container is not None and container.reason == "CreateContainerConfigError":
        return ImageBuildError(
            f"the build pod {pod.name} cannot be configured: {container.message}.",
            hint="check --registry-secret",
        )
    if pod.unschedulable and "Insufficient" in pod.unschedulable:
        return ImageBuildError(
            f"no node can run the build pod {pod.name}: {pod.unschedulable}",
            hint="the build asks for 1 CPU and 2Gi of memory; free some, or build locally",
        )
    return None


def _pending_news(pod: PodState) -> str:
    container = pod.container(CONTAINER)
    if pod.unschedulable:
        return f"waiting for a node: {pod.unschedulable}"
    if container is not None and container.reason:
        return f"build pod {pod.name}: {container.reason}"
    return f"build pod {pod.name}: {pod.phase}"


async def _wait_finished(kube: KubeClient, job: BuildJob, pod_name: str) -> BuildOutcome:
    """How the Job ended, from its conditions, with the builder's exit code from its pod."""
    async with follow_object(kube, JOBS, job.name, namespace=job.namespace) as changes:
        async for current in changes:
            if current is None:
                return BuildOutcome(
                    succeeded=False, pod=pod_name, reason="Deleted", message="the Job was deleted"
                )
            conditions = {
                c.get("type"): c
                for c in (current.get("status") or {}).get("conditions") or []
                if c.get("status") == "True"
            }
            if "Complete" in conditions:
                return BuildOutcome(succeeded=True, pod=pod_name, exit_code=0)
            if "Failed" in conditions:
                failed = conditions["Failed"]
                exit_code, reason = await _exit_of(kube, job, pod_name)
                return BuildOutcome(
                    succeeded=False,
                    pod=pod_name,
                    exit_code=exit_code,
                    reason=reason or failed.get("reason"),
                    message=failed.get("message"),
                )
    raise AssertionError("unreachable: following the Job only ends by returning or raising")


async def _exit_of(kube: KubeClient, job: BuildJob, pod_name: str) -> tuple[int | None, str | None]:
    try:
        pod = pod_state(await kube.get(PODS, pod_name, namespace=job.namespace))
    except KubeNotFound:
        return None, None
    container = pod.container(CONTAINER)
    if container is None:
        return None, None
    return container.exit_code, container.reason


async def _clean_up(kube: KubeClient, job: BuildJob, *, delete_job: bool) -> None:
    for resource, wanted in ((JOBS, delete_job), (CONFIGMAPS, True)):
        if not wanted:
            continue
        try:
            await kube.delete(
                resource, job.name, namespace=job.namespace, propagation=Propagation.BACKGROUND
            )
        except KubeNotFound:
            pass
        except JkctlError as error:  # leave it to ttlSecondsAfterFinished and the owner reference
            logger.warning("could not delete %s %s: %s", resource.plural, job.name, error)
