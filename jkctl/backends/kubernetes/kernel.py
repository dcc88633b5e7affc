"""One kernel in a pod: its tunnel, what its pod's state means, restart, shutdown, detach.

A :class:`KubeKernel` is created by the backend at launch (or at discovery,
for a pod an earlier daemon left running) and lives until it is terminated
or detached. It owns:

- its **tunnel**: the kernel's five ports as ``ipc://`` sockets, opened
  (paused) before the pod exists, so the relay can connect at once; resumed
  when the pod runs. It runs in a task of the backend's task group;
- its **lifecycle facts**: the backend's pod watch hands it every new state
  of its pod (:meth:`observe`); :func:`~.podfacts.judge` says what it
  means, and it becomes a Pending, Running or Died event, a failure at the
  moment Kubernetes says so, with the container's last log lines for a
  crash.

Restart in place: the manager has asked the kernel to shut down for a
restart; the pod's wrapper sees it exit cleanly and starts it again, and the
tunnel's connections find the new process by themselves. A *hard* restart
(the in-place one did not come back) deletes the pod and creates it again
from its own manifest under the next generation's name, with the same
connection file; the tunnel is retargeted.

For `jkctl kernels`, :meth:`placement` reads the pod's last known state
(no API call); :meth:`details` and :meth:`log` ask the API
(:mod:`.inventory`).

Signal-mode interrupts cannot be sent: a pod's processes are reachable only
through pods/exec, which is more RBAC than jkctl asks for (and kubesim does
not serve it). :attr:`can_signal` is False, so the manager interrupts with
``interrupt_request`` on the control channel, which ipykernel honours
whatever its kernelspec says.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jkctl.backends.base import (
    CHANNELS,
    ConnectionInfo,
    Died,
    KernelDetails,
    KernelHandle,
    LifecycleEvent,
    Pending,
    Placement,
    Running,
)
from jkctl.durations import say_duration
from jkctl.errors import (
    JkctlError,
    KernelError,
    KubeError,
    KubeNotFound,
    KubeUnavailable,
    QuotaExceeded,
)
from jkctl.kube.client import KubeClient
from jkctl.kube.podtemplate import KERNEL_CONTAINER
from jkctl.kube.podwatch import PodState
from jkctl.kube.quota import humane_quota_error
from jkctl.kube.resources import PODS, SECRETS
from jkctl.kube.tunnel import Tunnel

from . import inventory, manifests
from .podfacts import Outlook, Verdict, judge

logger = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None], str], None]


@dataclass(frozen=True, kw_only=True)
class KernelContext:
    """What every kernel of one backend shares."""

    kube: KubeClient
    namespace: str
    #: Start a task in the backend's task group (failures are logged).
    spawn: Spawn
    #: Called once the kernel is terminated or detached.
    on_gone: Callable[[KubeKernel], None]
    #: Extra seconds to wait for a deleted pod to disappear (beyond its grace period).
    delete_timeout: float
    log_tail_lines: int
    #: The grace period for pods deleted to be replaced.
    replace_grace: int = 1
    #: How long a pod no node fits waits for one to be added (0: it fails at once).
    node_wait: float = 0.0


class KubeKernel(KernelHandle):
    can_signal = False

    def __init__(
        self,
        context: KernelContext,
        *,
        kernel_id: str,
        kernelspec: str,
        connection_file: Mapping[str, Any],
        generation: int,
        tunnel_dir: Path,
    ) -> None:
        self.kernel_id = kernel_id
        self.kernelspec = kernelspec
        self.generation = generation
        self.pod_name = manifests.pod_name(kernel_id, generation)
        #: The latest state of the current pod, as the watch reported it.
        self.pod_state: PodState | None = None
        self._context = context
        self._connection_file = dict(connection_file)
        self._ports = {channel: int(connection_file[f"{channel}_port"]) for channel in CHANNELS}
        self._tunnel_dir = tunnel_dir
        self._connection = ConnectionInfo(
            **{channel: f"ipc://{tunnel_dir / str(port)}" for channel, port in self._ports.items()},
            key=str(connection_file["key"]).encode(),
            signature_scheme=str(connection_file.get("signature_scheme", "hmac-sha256")),
        )
        self._incarnation = 0
        self._events: asyncio.Queue[LifecycleEvent | None] = asyncio.Queue()
        self._tunnel: Tunnel | None = None
        self._tunnel_opened: asyncio.Future[None] | None = None
        self._released = asyncio.Event()
        self._closed = False
        # What has been said about the current pod and incarnation.
        self._pending_reason: str | None = None
        self._running_reported = False
        self._failed = False
        #: The daemon is deleting the current pod: its going is no failure.
        self._deleting = False
        #: Since when (monotonic) no node fits the current pod; None: one does.
        self._unschedulable_since: float | None = None
        self._pod_gone = asyncio.Event()
        self._timeline: dict[str, float] = {}

    # -- KernelHandle -----------------------------------------------------------------

    @property
    def connection(self) -> ConnectionInfo:
        return self._connection

    @property
    def incarnation(self) -> int:
        return self._incarnation

    @property
    def renewable(self) -> bool:
        """Whether the daemon should keep this kernel's pod alive."""
        return not (self._closed or self._deleting)

    async def events(self) -> AsyncIterator[LifecycleEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def interrupt(self) -> None:
        raise KernelError(
            f"Kernel {self.kernel_id} runs in pod {self.pod_name}, where jkctl cannot send "
            "signals.",
            hint="Interrupt it with an interrupt_request on the control channel.",
        )

    async def restart(self, *, hard: bool = False) -> ConnectionInfo:
        self._incarnation += 1
        self._running_reported = False
        if hard:
            await self._replace_pod()
        elif self.pod_state is not None and judge(self.pod_state).outlook is Outlook.RUNNING:
            # The pod's wrapper relaunches the kernel; the pod itself runs on.
            self._running_reported = True
            self._emit(Running(incarnation=self._incarnation))
        return self._connection

    async def terminate(self) -> None:
        """Delete the pod and its Secret, and wait until the pod is gone."""
        if self._closed:
            return
        self._deleting = True
        try:
            await self._delete_pod(grace=None)
            await self._delete(SECRETS, self.pod_name)
        finally:
            self._close()
        logger.info("kernel %s (pod %s): pod and Secret deleted", self.kernel_id, self.pod_name)

    async def detach(self) -> None:
        """Close the tunnel and leave the pod running (its lease runs on)."""
        if not self._closed:
            self._close()
            logger.info(
                "kernel %s (pod %s): detached, pod left running", self.kernel_id, self.pod_name
            )

    # -- what `jkctl kernels` shows ----------------------------------------------------

    def placement(self) -> Placement:
        if self.pod_state is None:
            return Placement(
                kernel_id=self.kernel_id,
                kernelspec=self.kernelspec,
                backend="kubernetes",
                namespace=self._context.namespace,
                pod=self.pod_name,
                condition="pending: waiting for Kubernetes",
            )
        return inventory.placement_of(self.pod_state)

    async def details(self, *, log_lines: int) -> KernelDetails:
        if self.pod_state is None:
            return KernelDetails(placement=self.placement(), notes=("the pod was not seen yet",))
        return await inventory.pod_details(self._context.kube, self.pod_state, log_lines=log_lines)

    def log(
        self, *, follow: bool, tail: int | None
    ) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        pod = self.pod_state
        if pod is None:
            raise KernelError(
                f"Kernel {self.kernel_id} has no log yet: its pod {self.pod_name} was not "
                "seen running.",
                hint="Wait for it to start, then ask again.",
            )
        return inventory.pod_log(self._context.kube, pod, follow=follow, tail=tail)

    # -- set-up, used by the backend ----------------------------------------------------

    async def open_tunnel(self) -> None:
        """Start the (paused) tunnel task; return once its sockets listen."""
        self._tunnel_opened = asyncio.get_running_loop().create_future()
        self._context.spawn(self._serve_tunnel(), f"tunnel of kernel {self.kernel_id}")
        await self._tunnel_opened

    async def create(self, secret: dict[str, Any], pod: dict[str, Any]) -> None:
        """Create the Secret, then the Pod, then (in the background) make the Pod own the
        Secret. A Secret whose Pod could not be created is deleted again."""
        kube, namespace = self._context.kube, self._context.namespace
        started = time.monotonic()
        try:
            await kube.create(SECRETS, secret, namespace=namespace)
        except KubeUnavailable as down:
            raise _cannot_start_now(down) from down
        try:
            created = await kube.create(PODS, pod, namespace=namespace)
        except BaseException as refused:
            with contextlib.suppress(JkctlError):
                await self._delete(SECRETS, secret["metadata"]["name"])
            if isinstance(refused, QuotaExceeded):
                # In the team's terms: "team geo has 60 of 64 CPUs in use; ...".
                raise await humane_quota_error(kube, refused, namespace=namespace) from refused
            if isinstance(refused, KubeUnavailable):
                raise _cannot_start_now(refused) from refused
            raise
        self._timeline = {"post": started, "created": time.monotonic()}
        logger.info(
            "kernel %s (pod %s): pod created in %.0f ms",
            self.kernel_id,
            self.pod_name,
            (self._timeline["created"] - started) * 1000,
        )
        self._context.spawn(self.own_secret(created), f"owning the Secret of {self.pod_name}")

    async def claim(self) -> None:
        """Take the pod out of the warm pool: a daemon that restarts re-attaches it as
        someone's kernel instead of deleting it as an unused pool kernel."""
        await self._context.kube.patch(
            PODS, self.pod_name, manifests.unpool_patch(), namespace=self._context.namespace
        )

    async def own_secret(self, pod: Mapping[str, Any]) -> None:
        """Make the pod own its Secret, so that deleting the pod deletes the Secret."""
        await self._context.kube.patch(
            SECRETS,
            pod["metadata"]["name"],
            manifests.owner_patch(pod),
            namespace=self._context.namespace,
        )

    # -- facts from the pod watch ---------------------------------------------------------

    def observe(self, pod: PodState) -> None:
        """A new state of one of this kernel's pods."""
        if pod.name != self.pod_name or self._closed:
            return
        self.pod_state = pod
        if self._deleting:
            return
        self._note_timeline(pod)
        verdict = self._judge(pod)
        if verdict.outlook is Outlook.RUNNING:
            self._pending_reason = None
            if not self._running_reported:
                self._running_reported = True
                self._emit(Running(incarnation=self._incarnation))
            if self._tunnel is not None and self._tunnel.paused:
                self._tunnel.resume()
        elif verdict.outlook is Outlook.PENDING:
            if verdict.reason != self._pending_reason:
                self._pending_reason = verdict.reason
                self._emit(Pending(incarnation=self._incarnation, reason=verdict.reason))
        elif not self._failed:
            self._failed = True
            if self._tunnel is not None:
                self._tunnel.pause()
            logger.warning("kernel %s (pod %s): %s", self.kernel_id, pod.name, verdict.reason)
            if verdict.needs_logs:
                self._context.spawn(
                    self._died_with_logs(verdict.reason, pod.name, self._incarnation),
                    f"reading the log of {pod.name}",
                )
            else:
                self._emit(
                    Died(incarnation=self._incarnation, reason=verdict.reason, hint=verdict.hint)
                )

    def _judge(self, pod: PodState) -> Verdict:
        verdict = judge(pod)
        if verdict.unschedulable and self._context.node_wait > 0:
            return self._waiting_for_node(pod, verdict)
        self._unschedulable_since = None
        return verdict

    def _waiting_for_node(self, pod: PodState, unschedulable: Verdict) -> Verdict:
        """No node fits the pod, on a cluster that may add one (cluster-autoscaler,
        Karpenter): pending for ``node_wait``, then the failure it is."""
        wait = self._context.node_wait
        now = time.monotonic()
        if self._unschedulable_since is None:
            self._unschedulable_since = now
            self._context.spawn(self._node_deadline(pod.name), f"waiting for a node for {pod.name}")
        if now - self._unschedulable_since < wait:
            return Verdict(
                outlook=Outlook.PENDING,
                reason=f"waiting up to {say_duration(wait)} for a node to be added "
                f"({pod.unschedulable})",
            )
        return Verdict(
            outlook=Outlook.FAILED,
            reason=f"{unschedulable.reason} No node was added for it within {say_duration(wait)}.",
            hint=unschedulable.hint,
        )

    async def _node_deadline(self, pod_name: str) -> None:
        """When the wait for a node is over, judge the pod again (no event may come)."""
        await asyncio.sleep(self._context.node_wait)
        if not self._closed and self.pod_name == pod_name and self.pod_state is not None:
            self.observe(self.pod_state)

    def observe_deleted(self, pod: PodState) -> None:
        """One of this kernel's pods is gone from the API."""
        if pod.name != self.pod_name:
            return
        self._pod_gone.set()
        if self._closed or self._deleting or self._failed:
            return
        self._failed = True
        reason = f"Its pod {pod.name} was deleted."
        logger.warning("kernel %s (pod %s): %s", self.kernel_id, pod.name, reason)
        self._emit(Died(incarnation=self._incarnation, reason=reason))

    # -- internals ------------------------------------------------------------------------

    def _emit(self, event: LifecycleEvent) -> None:
        if not self._closed:
            self._events.put_nowait(event)

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._released.set()
        self._events.put_nowait(None)
        self._context.on_gone(self)

    async def _serve_tunnel(self) -> None:
        opened = self._tunnel_opened
        assert opened is not None
        try:
            async with Tunnel(
                self._context.kube,
                pod=self.pod_name,
                ports=list(self._ports.values()),
                directory=self._tunnel_dir,
                namespace=self._context.namespace,
                paused=True,
            ) as tunnel:
                self._tunnel = tunnel
                opened.set_result(None)
                if self.pod_state is not None:
                    self.observe(self.pod_state)  # a running pod resumes it
                timing = asyncio.ensure_future(self._log_start(tunnel))
                try:
                    await self._released.wait()
                finally:
                    timing.cancel()
                    await asyncio.wait([timing])
        except JkctlError as error:
            if not opened.done():
                opened.set_exception(error)
            else:
                logger.error("kernel %s: its tunnel failed: %s", self.kernel_id, error)
                self._emit(Died(incarnation=self._incarnation, reason=error.message))
        finally:
            self._tunnel = None

    async def _died_with_logs(self, reason: str, pod: str, incarnation: int) -> None:
        lines: list[str] = []
        try:
            async with (
                asyncio.timeout(5),
                self._context.kube.pod_log(
                    pod,
                    namespace=self._context.namespace,
                    container=KERNEL_CONTAINER,
                    tail_lines=self._context.log_tail_lines,
                ) as log,
            ):
                lines = [line async for line in log if line.strip()]
        except (JkctlError, TimeoutError) as error:
            logger.info("kernel %s: cannot read the log of pod %s: %s", self.kernel_id, pod, error)
        for line in lines:
            logger.info("kernel %s (pod %s) output: %s", self.kernel_id, pod, line)
        if lines:
            reason += " Its last output:\n" + "\n".join(f"  {line}" for line in lines[-5:])
        self._emit(Died(incarnation=incarnation, reason=reason))

    async def _delete_pod(self, *, grace: int | None) -> None:
        """Delete the current pod and wait (bounded) until the API no longer has it."""
        self._pod_gone.clear()
        try:
            await self._context.kube.delete(
                PODS, self.pod_name, namespace=self._context.namespace, grace_period_seconds=grace
            )
        except KubeNotFound:
            return
        spec = (self.pod_state.raw.get("spec") or {}) if self.pod_state else {}
        allowed = grace if grace is not None else spec.get("terminationGracePeriodSeconds", 30)
        try:
            async with asyncio.timeout(float(allowed) + self._context.delete_timeout):
                await self._pod_gone.wait()
        except TimeoutError:
            logger.warning(
                "kernel %s: pod %s is still being deleted; not waiting any longer",
                self.kernel_id,
                self.pod_name,
            )

    async def _delete(self, resource: Any, name: str) -> None:
        with contextlib.suppress(KubeNotFound):
            await self._context.kube.delete(resource, name, namespace=self._context.namespace)

    async def _replace_pod(self) -> None:
        """Delete the pod and create it again, as generation N+1 (a hard restart)."""
        current = self.pod_state
        if current is None or not current.raw:
            raise KernelError(
                f"Kernel {self.kernel_id} cannot be replaced: jkctl has not seen its pod yet.",
                hint="Shut it down and start a new kernel.",
            )
        logger.warning(
            "kernel %s (pod %s): replacing the pod (generation %d)",
            self.kernel_id,
            self.pod_name,
            self.generation + 1,
        )
        tunnel = self._tunnel
        if tunnel is not None:
            tunnel.pause()
            tunnel.close_connections()
        self._deleting = True
        try:
            await self._delete_pod(grace=self._context.replace_grace)
            await self._delete(SECRETS, self.pod_name)
        finally:
            self._deleting = False
        self.generation += 1
        self.pod_name = manifests.pod_name(self.kernel_id, self.generation)
        self.pod_state = None
        self._failed = False
        self._pending_reason = None
        self._unschedulable_since = None
        pod = replacement_pod(current.raw, name=self.pod_name, generation=self.generation)
        secret = manifests.secret_manifest(
            name=self.pod_name,
            namespace=self._context.namespace,
            identity=_identity_of(current),
            connection=self._connection_file,
        )
        if tunnel is not None:
            tunnel.retarget(self.pod_name)
        try:
            await self.create(secret, pod)
        except KubeError as error:
            raise KernelError(
                f"Kernel {self.kernel_id} could not be replaced: {error.message}",
                hint=error.hint,
            ) from error

    def _note_timeline(self, pod: PodState) -> None:
        if not self._timeline:
            return
        now = time.monotonic()
        if pod.node and "scheduled" not in self._timeline:
            self._timeline["scheduled"] = now
        kernel = pod.container(KERNEL_CONTAINER)
        if kernel is not None and kernel.state == "running" and "running" not in self._timeline:
            self._timeline["running"] = now

    async def _log_start(self, tunnel: Tunnel) -> None:
        """Log how long each step of the start took, once the kernel answered the tunnel."""
        await tunnel.wait_stats(lambda stats: stats.bytes_from_pod > 0)
        timeline = self._timeline
        if not timeline:
            return  # a discovered kernel
        timeline["listening"] = time.monotonic()
        steps = [
            f"{step} +{(timeline[step] - timeline['post']) * 1000:.0f} ms"
            for step in ("created", "scheduled", "running", "listening")
            if step in timeline
        ]
        logger.info(
            "kernel %s (pod %s): start timeline: %s",
            self.kernel_id,
            self.pod_name,
            ", ".join(steps),
        )


def _cannot_start_now(down: KubeUnavailable) -> KubeUnavailable:
    """The API server did not answer a kernel start (an outage): one sentence for the user,
    who may simply try again; running kernels are not affected."""
    hint = (down.hint or "").rstrip(".")
    return KubeUnavailable(
        f"A new kernel cannot start now: {down.message}.",
        hint=(hint[:1].upper() + hint[1:] + ". " if hint else "")
        + "Running kernels keep running; try again once the cluster answers.",
        context=down.context,
    )


def replacement_pod(pod: Mapping[str, Any], *, name: str, generation: int) -> dict[str, Any]:
    """``pod``'s manifest under a new name, for a fresh copy of it (unscheduled, no status)."""
    spec = copy.deepcopy(pod.get("spec") or {})
    spec.pop("nodeName", None)
    for volume in spec.get("volumes") or []:
        if volume.get("name") == "connection" and "secret" in volume:
            volume["secret"]["secretName"] = name
    metadata = pod.get("metadata") or {}
    annotations = {
        **(metadata.get("annotations") or {}),
        manifests.GENERATION: str(generation),
        manifests.LEASE_RENEWED: manifests.lease_token(),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": metadata.get("namespace"),
            # A replacement is of a kernel someone has: never a pool kernel's.
            "labels": {
                key: value
                for key, value in (metadata.get("labels") or {}).items()
                if key != manifests.POOL
            },
            "annotations": annotations,
        },
        "spec": spec,
    }


def _identity_of(pod: PodState) -> manifests.KernelIdentity:
    labels = pod.labels
    return manifests.KernelIdentity(
        kernel_id=labels.get(manifests.KERNEL_ID, ""),
        kernelspec=pod.annotations.get(manifests.KERNELSPEC, labels.get(manifests.KERNELSPEC, "")),
        daemon_id=labels.get(manifests.DAEMON, ""),
        owner=labels.get(manifests.OWNER, ""),
        username=pod.annotations.get(manifests.USERNAME),
    )
