"""The Kubernetes backend: kernels as pods, reached through pods/portforward.

:class:`KubernetesBackend` logs in with the user's kubeconfig when the daemon
opens it, checks with SelfSubjectAccessReview that the user may do
everything it will do (:data:`REQUIRED_ACCESS`) and says what is missing in
one sentence, then runs, in one task group of its own:

- one **pod watch** for all of this daemon's pods (label
  ``jkctl.io/daemon``; list, then watch, re-listing after 410 Gone or a
  drop), whose events go to the kernel they belong to
  (:meth:`KubeKernel.observe <.kernel.KubeKernel.observe>`): no polling;
- the **lease renewer** (:mod:`.lease`);
- each kernel's **tunnel**, and small jobs (owning a Secret, reading a
  crashed container's log).

:meth:`launch` checks the launch variables and the kernelspec's pod
settings, renders the pod, opens the kernel's tunnel (paused), creates the
Secret and the Pod, and returns; the kernel's facts follow as events, and
the manager answers the POST once the kernel answers ``kernel_info``. What
the API refuses (Forbidden with the verb and resource, a quota) is raised as
it is, and nothing is left behind. :meth:`discover` re-attaches the pods an
earlier daemon of this state folder left running, reading their Secrets.

What this module does not do: speak ZeroMQ or HTTP to clients (the kernel
manager and daemon do), or decide what a pod state means (:mod:`.podfacts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import stat
import tempfile
from collections.abc import AsyncIterator, Coroutine, Mapping
from pathlib import Path
from typing import Any

from jkctl.backends.base import Backend, KernelDetails, KernelHandle, LaunchSpec, Placement
from jkctl.errors import JkctlError, KubeForbidden, KubeNotFound, TunnelError
from jkctl.kube.access import AccessCheck, require_access
from jkctl.kube.client import KubeClient
from jkctl.kube.login import KubeconfigLogin, kubeconfig_setting_login
from jkctl.kube.podwatch import (
    PodEvent,
    PodEventType,
    PodsSynced,
    PodState,
    follow_pods,
    pod_state,
)
from jkctl.kube.quota import TeamUsage, team_usage
from jkctl.kube.resources import PODS, SECRETS
from jkctl.kube.tlsbuffers import use_small_tls_read_buffers

from . import inventory, manifests
from .kernel import KernelContext, KubeKernel
from .launchvars import apply_launch, parse_launch_env, pod_launch_env
from .lease import LeaseRenewer
from .settings import KubeBackendSettings

logger = logging.getLogger(__name__)

#: What the backend does in its namespace, checked before the daemon serves.
REQUIRED_ACCESS = (
    AccessCheck(verb="create", resource="pods"),
    AccessCheck(verb="list", resource="pods"),
    AccessCheck(verb="watch", resource="pods"),
    AccessCheck(verb="patch", resource="pods"),
    AccessCheck(verb="delete", resource="pods"),
    AccessCheck(verb="create", resource="pods", subresource="portforward"),
    AccessCheck(verb="get", resource="pods", subresource="log"),
    AccessCheck(verb="create", resource="secrets"),
    AccessCheck(verb="get", resource="secrets"),
    AccessCheck(verb="patch", resource="secrets"),
    AccessCheck(verb="delete", resource="secrets"),
    AccessCheck(verb="list", resource="events"),
    AccessCheck(verb="watch", resource="events"),
)
#: After the pod watch failed in a way time does not fix (RBAC revoked), try again after this.
_FOLLOW_RETRY = 30.0
#: The longest Unix socket path jkctl makes (sun_path is 104 bytes on macOS, 108 on Linux).
_SOCKET_PATH_BUDGET = 100


class KubernetesBackend(Backend):
    name = "kubernetes"
    kernels_outlive_daemon = True

    def __init__(self, settings: KubeBackendSettings) -> None:
        self._settings = settings
        self._stack = contextlib.AsyncExitStack()
        self._kube: KubeClient | None = None
        self._namespace = ""
        self._kernels: dict[str, KubeKernel] = {}
        #: The daemon's pods as the watch last saw them, by name.
        self._pods: dict[str, PodState] = {}
        self._synced: asyncio.Future[None] | None = None
        self._group: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def kube(self) -> KubeClient:
        if self._kube is None:
            raise RuntimeError("the Kubernetes backend is not open")
        return self._kube

    # -- Backend ------------------------------------------------------------------------

    async def open(self) -> None:
        # Four TLS connections per kernel: asyncio's 256 KiB read buffer each was
        # most of the daemon's memory per kernel (see jkctl.kube.tlsbuffers).
        use_small_tls_read_buffers()
        self._kube = await self._stack.enter_async_context(KubeClient(self._login()))
        self._namespace = self._settings.namespace or self._kube.namespace
        await require_access(self._kube, REQUIRED_ACCESS, namespace=self._namespace)
        # The first rendering builds the Pod schema's validators (~0.2 s): now, not at
        # the first kernel start.
        await asyncio.to_thread(manifests.warm_up)
        loop = asyncio.get_running_loop()
        self._synced = loop.create_future()
        started: asyncio.Future[None] = loop.create_future()
        self._runner = asyncio.create_task(self._run(started), name="kubernetes-backend")
        await started
        await self._synced
        credentials = self._kube.credentials
        logger.info(
            "kubernetes backend: context %s, namespace %s, server %s; leases of %d s",
            credentials.context,
            self._namespace,
            credentials.server,
            self._settings.lease_seconds,
        )

    async def launch(
        self, spec: LaunchSpec, *, kernel_id: str, env: Mapping[str, str], pooled: bool = False
    ) -> KubeKernel:
        launch = parse_launch_env(env, namespace=self._namespace)
        config = apply_launch(spec.pod, launch)
        identity = manifests.KernelIdentity(
            kernel_id=kernel_id,
            kernelspec=spec.name,
            daemon_id=self._settings.daemon_id,
            owner=self._settings.owner,
            username=launch.username,
            pooled=pooled,
        )
        name = manifests.pod_name(kernel_id)
        connection = manifests.connection_file(key=secrets.token_hex(32), kernelspec=spec.name)
        pod = manifests.pod_manifest(
            name=name,
            namespace=self._namespace,
            identity=identity,
            argv=spec.argv,
            spec_env=spec.env,
            launch_env=launch.env,
            config=config,
            lease_seconds=self._settings.lease_seconds,
            generation=0,
        )
        secret = manifests.secret_manifest(
            name=name, namespace=self._namespace, identity=identity, connection=connection
        )
        kernel = self._new_kernel(kernel_id, spec.name, connection, generation=0)
        try:
            await kernel.open_tunnel()
            await kernel.create(secret, pod)
        except BaseException:
            with contextlib.suppress(JkctlError):
                await kernel.terminate()
            raise
        return kernel

    def pool_can_serve(self, env: Mapping[str, str]) -> bool:
        return not pod_launch_env(env)

    async def discover(self) -> list[KernelHandle]:
        found: list[KernelHandle] = []
        for pod in sorted(self._pods.values(), key=lambda p: p.name):
            kernel_id = pod.labels.get(manifests.KERNEL_ID)
            if not kernel_id or kernel_id in self._kernels or pod.deleting:
                continue
            if manifests.POOL in pod.labels:
                # The warm pool of a daemon that died: no one has had these kernels, and
                # this daemon's pool (if any) starts its own.
                logger.info(
                    "kernel %s: an unused warm-pool pod %s; deleting it", kernel_id, pod.name
                )
                await self._delete_quietly(pod.name)
                continue
            kernel = await self._reattach(kernel_id, pod)
            if kernel is not None:
                found.append(kernel)
        if found:
            renewer = self._renewer()
            await renewer.renew([(k.kernel_id, k.pod_name, None) for k in self._kernels.values()])
        return found

    async def inventory(self, *, all_namespaces: bool) -> list[Placement]:
        """This daemon's kernel pods, asked of the API (in every namespace, with
        ``all_namespaces``); without it, the pod watch's view of its own namespace."""
        if not all_namespaces:
            found = inventory.newest_generations(self._pods.values())
        else:
            found = await inventory.find_kernel_pods(
                self.kube,
                namespace=self._namespace,
                all_namespaces=True,
                daemon_id=self._settings.daemon_id,
            )
        return [inventory.placement_of(pod) for pod in found]

    async def team_usage(self) -> TeamUsage | None:
        """The namespace's quota usage; None when it has no quota or it may not be read."""
        try:
            usage = await team_usage(self.kube, namespace=self._namespace)
        except KubeForbidden:
            return None
        return usage if usage.lines else None

    async def describe(self, placement: Placement, *, log_lines: int) -> KernelDetails:
        pod = await self._pod_of(placement)
        return await inventory.pod_details(self.kube, pod, log_lines=log_lines)

    @contextlib.asynccontextmanager
    async def log(
        self, placement: Placement, *, follow: bool, tail: int | None
    ) -> AsyncIterator[AsyncIterator[str]]:
        pod = await self._pod_of(placement)
        async with inventory.pod_log(self.kube, pod, follow=follow, tail=tail) as lines:
            yield lines

    async def remove(self, placement: Placement) -> None:
        pod = await self._pod_of(placement)
        logger.info("kernel %s (pod %s): removing it", placement.kernel_id, pod.name)
        await inventory.delete_kernel_pod(self.kube, pod)

    async def _pod_of(self, placement: Placement) -> PodState:
        if placement.pod is None:
            raise KubeNotFound(
                f"Kernel {placement.kernel_id} has no pod.",
                hint="`jkctl kernels list` shows the kernels and their pods.",
            )
        raw = await self.kube.get(PODS, placement.pod, namespace=placement.namespace)
        return pod_state(raw)

    async def aclose(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.wait([runner])
        for kernel in list(self._kernels.values()):
            await kernel.detach()
        await self._stack.aclose()

    # -- the backend's own tasks -----------------------------------------------------------

    async def _run(self, started: asyncio.Future[None]) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            group.create_task(self._guarded(self._follow(), "following kernel pods"))
            group.create_task(self._guarded(self._renewer().run(), "renewing leases"))
            started.set_result(None)
            await asyncio.Event().wait()  # until aclose() cancels this task

    def _spawn(self, coroutine: Coroutine[Any, Any, None], what: str) -> None:
        if self._group is None:
            coroutine.close()
            raise RuntimeError("the Kubernetes backend is not open")
        self._group.create_task(self._guarded(coroutine, what))

    @staticmethod
    async def _guarded(coroutine: Coroutine[Any, Any, None], what: str) -> None:
        """Run a background job; its failure is logged, never lost, and harms no other."""
        try:
            await coroutine
        except JkctlError as error:
            logger.warning("kubernetes backend: %s failed: %s", what, error)
        except Exception:
            logger.exception("kubernetes backend: %s failed", what)

    async def _follow(self) -> None:
        """Follow this daemon's pods for ever, telling each kernel about its own."""
        selector = manifests.daemon_selector(self._settings.daemon_id)
        synced = self._synced
        assert synced is not None
        while True:
            try:
                async with follow_pods(
                    self.kube, namespace=self._namespace, label_selector=selector
                ) as events:
                    async for event in events:
                        if isinstance(event, PodsSynced):
                            self._pods = {pod.name: pod for pod in event.pods.values()}
                            if not synced.done():
                                synced.set_result(None)
                        else:
                            try:
                                self._dispatch(event)
                            except Exception:  # a bug in one kernel's handling harms no other
                                logger.exception(
                                    "handling %s of pod %s failed", event.type, event.pod.name
                                )
            except JkctlError as error:
                if not synced.done():
                    synced.set_exception(error)
                    return
                logger.error(
                    "following kernel pods failed: %s; trying again in %.0f s",
                    error,
                    _FOLLOW_RETRY,
                )
                await asyncio.sleep(_FOLLOW_RETRY)

    def _dispatch(self, event: PodEvent) -> None:
        pod = event.pod
        if event.type is PodEventType.DELETED:
            self._pods.pop(pod.name, None)
        else:
            self._pods[pod.name] = pod
        kernel = self._kernels.get(pod.labels.get(manifests.KERNEL_ID, ""))
        if kernel is None:
            return
        if event.type is PodEventType.DELETED:
            kernel.observe_deleted(pod)
        else:
            kernel.observe(pod)

    def _renewer(self) -> LeaseRenewer:
        return LeaseRenewer(
            self.kube,
            namespace=self._namespace,
            interval=self._settings.renew_interval,
            lease_seconds=self._settings.lease_seconds,
            pods=lambda: [
                (k.kernel_id, k.pod_name, k.activity_source() if k.activity_source else None)
                for k in self._kernels.values()
                if k.renewable
            ],
        )

    # -- kernels ----------------------------------------------------------------------------

    def _new_kernel(
        self, kernel_id: str, kernelspec: str, connection: Mapping[str, Any], *, generation: int
    ) -> KubeKernel:
        context = KernelContext(
            kube=self.kube,
            namespace=self._namespace,
            spawn=self._spawn,
            on_gone=self._forget,
            delete_timeout=self._settings.delete_timeout,
            log_tail_lines=self._settings.log_tail_lines,
            node_wait=self._settings.node_wait,
        )
        kernel = KubeKernel(
            context,
            kernel_id=kernel_id,
            kernelspec=kernelspec,
            connection_file=connection,
            generation=generation,
            tunnel_dir=self._tunnel_root() / kernel_id[:12],
        )
        self._kernels[kernel_id] = kernel
        return kernel

    def _tunnel_root(self) -> Path:
        """Where the kernels' tunnel folders go: under the runtime folder, unless that path
        is too long for Unix sockets (about 100 bytes), then a short private folder in
        the temporary directory (the tunnel makes it 0700 and refuses one not ours)."""
        preferred = self._settings.runtime_dir / "t"
        if len(os.fsencode(preferred)) + len("/0123456789ab/20001") <= _SOCKET_PATH_BUDGET:
            return preferred
        digest = hashlib.sha256(os.fsencode(self._settings.runtime_dir)).hexdigest()[:10]
        root = Path(tempfile.gettempdir()) / f"jkctl-{os.geteuid()}-{digest}"
        with contextlib.suppress(FileExistsError):
            root.mkdir(mode=0o700)
        info = root.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise TunnelError(
                f"the folder {root} for kernel tunnels is not a private folder of yours",
                hint="remove it, or set JKCTL_STATE_DIR to a shorter path",
            )
        return root

    def _forget(self, kernel: KubeKernel) -> None:
        if self._kernels.get(kernel.kernel_id) is kernel:
            del self._kernels[kernel.kernel_id]

    async def _reattach(self, kernel_id: str, pod: PodState) -> KubeKernel | None:
        """A kernel for a pod an earlier daemon left; None (and the pod deleted) if it is dead
        or its connection Secret is gone."""
        if pod.phase in ("Failed", "Succeeded"):
            logger.info("kernel %s: its pod %s has ended; deleting it", kernel_id, pod.name)
            await self._delete_quietly(pod.name)
            return None
        secret_name = _secret_name(pod) or pod.name
        try:
            secret = await self.kube.get(SECRETS, secret_name, namespace=self._namespace)
        except KubeNotFound:
            secret = {}
        connection = manifests.read_connection(secret)
        if connection is None:
            logger.warning(
                "kernel %s: the Secret %s of pod %s holds no connection file; deleting the pod",
                kernel_id,
                secret_name,
                pod.name,
            )
            await self._delete_quietly(pod.name)
            return None
        generation = _int(pod.annotations.get(manifests.GENERATION))
        kernelspec = pod.annotations.get(manifests.KERNELSPEC) or pod.labels.get(
            manifests.KERNELSPEC, "unknown"
        )
        kernel = self._new_kernel(kernel_id, kernelspec, connection, generation=generation)
        kernel.pod_name = pod.name
        kernel.pod_state = pod
        kernel.last_activity = inventory.parse_time(pod.annotations.get(manifests.LAST_ACTIVITY))
        await kernel.open_tunnel()  # resumes it at once if the pod runs
        kernel.observe(pod)
        if not (secret.get("metadata") or {}).get("ownerReferences"):
            self._spawn(kernel.own_secret(pod.raw), f"owning the Secret of {pod.name}")
        logger.info("kernel %s (pod %s): re-attached (%s)", kernel_id, pod.name, pod.phase)
        return kernel

    async def _delete_quietly(self, pod: str) -> None:
        with contextlib.suppress(KubeNotFound):
            await self.kube.delete(PODS, pod, namespace=self._namespace)

    def _login(self) -> KubeconfigLogin:
        return kubeconfig_setting_login(self._settings.kubeconfig, context=self._settings.context)


def _secret_name(pod: PodState) -> str | None:
    for volume in (pod.raw.get("spec") or {}).get("volumes") or []:
        if volume.get("name") == "connection":
            name = (volume.get("secret") or {}).get("secretName")
            return str(name) if name else None
    return None


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
