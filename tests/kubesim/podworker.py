"""One pod on one node, from admission to removal: the kubelet's pod worker.

The worker starts the sandbox (pause process, pod IP), sets up the volumes
(retrying FailedMount when a Secret or ConfigMap appears), runs the init
containers in order and then one `ContainerRunner` per container, writes the
pod status after every change, enforces activeDeadlineSeconds
(Failed/DeadlineExceeded), and on deletion sends SIGTERM (Killing events),
waits the grace period (cut short when a shorter one arrives: a second
DELETE, a force delete), SIGKILLs what is left and removes the object, so
watchers see DELETED only once the processes are gone. Cancelling the
worker kills everything at once; its `finally` leaves no process and no
directory behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.kubesim import resources
from tests.kubesim.backoff import Backoff
from tests.kubesim.broadcast import Broadcast
from tests.kubesim.config import KubeletConfig
from tests.kubesim.containers import ContainerRunner
from tests.kubesim.events import NORMAL, WARNING, EventRecorder
from tests.kubesim.images import ImageService
from tests.kubesim.nodes import NodeState
from tests.kubesim.podstatus import compose
from tests.kubesim.sandbox import Sandbox
from tests.kubesim.status import ApiError
from tests.kubesim.store import Obj, Store, now_rfc3339
from tests.kubesim.volumes import MountError, live_sources, setup

DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


@dataclass(frozen=True, kw_only=True)
class Services:
    """What every pod worker of a kubelet shares."""

    store: Store
    config: KubeletConfig
    images: ImageService
    restart_backoff: Backoff
    pull_backoff: Backoff
    config_changed: Broadcast  # a Secret or ConfigMap changed
    publish_node: Callable[[NodeState], None]
    recorders: dict[str, EventRecorder]  # per node


class _NotOurs(Exception):
    """The object under this name is another pod now (a new uid)."""


class PodWorker:
    def __init__(self, services: Services, node: NodeState, pod: Obj) -> None:
        self.services = services
        self.node = node
        self.pod = pod
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta.get("namespace", "default")
        self.name: str = meta["name"]
        self.directory: Path = services.config.state_dir / "pods" / self.uid
        self.has_init = bool(pod["spec"].get("initContainers"))
        self.runners: dict[str, ContainerRunner] = {}
        self.init_runners: list[ContainerRunner] = []
        self.sandbox: Sandbox | None = None
        self.sandbox_ready = False
        self.pod_ip: str | None = None
        self.start_time: str | None = None  # status.startTime (to the second)
        self._started: float | None = None  # the same moment, as precise as the clock
        self.stopping = False
        self.failure: tuple[str, str] | None = None  # (reason, message) for a Failed pod
        self.volume_paths: dict[str, Path] = {}
        self._stop = asyncio.Event()
        self._remove = asyncio.Event()
        self._gone = False  # the object was removed from the store
        self._grace: float = services.config.default_grace_period
        self._grace_timer: asyncio.Timeout | None = None  # while containers get their grace
        self._deadline_changed = Broadcast()

    # -- identity and helpers ------------------------------------------------

    @property
    def restart_policy(self) -> str:
        return str(self.pod["spec"].get("restartPolicy") or "Always")

    def describe(self) -> str:
        return f"{self.name}_{self.namespace}({self.uid})"

    def event(
        self, event_type: str, reason: str, message: str, *, field_path: str | None = None
    ) -> None:
        self.services.recorders[self.node.name].record(
            self.pod, event_type, reason, message, field_path=field_path
        )

    def sandbox_namespace(self, kind: str) -> str:
        assert self.sandbox is not None
        return self.sandbox.namespace(kind)

    def mounts_for(self, container: Obj) -> list[dict[str, Any]]:
        mounts = []
        for mount in container.get("volumeMounts") or []:
            source = self.volume_paths[mount["name"]]
            if mount.get("subPath"):
                source = source / mount["subPath"]
                if not source.exists():
                    source.mkdir(parents=True)
            mounts.append(
                {
                    "source": str(source),
                    "target": mount["mountPath"],
                    "readonly": bool(mount.get("readOnly")) or self._read_only(mount["name"]),
                    "file": source.is_file(),
                }
            )
        return mounts

    def _read_only(self, volume_name: str) -> bool:
        for volume in self.pod["spec"].get("volumes") or []:
            if volume["name"] == volume_name:
                return not ({"emptyDir", "hostPath"} & set(volume))
        return False

    # -- status --------------------------------------------------------------

    def publish(self) -> None:
        if self._gone:
            return

        def change(pod: Obj) -> None:
            if pod["metadata"]["uid"] != self.uid:
                raise _NotOurs
            pod["status"] = compose(self, pod.get("status") or {})

        with contextlib.suppress(ApiError, _NotOurs):
            self.pod = self.services.store.mutate(resources.PODS, self.namespace, self.name, change)

    # -- requests from the kubelet -------------------------------------------

    def update(self, pod: Obj) -> None:
        """A newer version of the pod object (from the kubelet's watch)."""
        if pod["metadata"]["uid"] != self.uid:
            return
        old, self.pod = self.pod, pod
        meta, old_meta = pod["metadata"], old["metadata"]
        if meta.get("deletionTimestamp"):
            grace = meta.get("deletionGracePeriodSeconds")
            self.terminate(self._grace_period() if grace is None else float(grace), remove=True)
        if (meta.get("labels"), meta.get("annotations")) != (
            old_meta.get("labels"),
            old_meta.get("annotations"),
        ):
            self._refresh_live_volumes()
        if pod["spec"].get("activeDeadlineSeconds") != old["spec"].get("activeDeadlineSeconds"):
            self._deadline_changed.notify()

    def gone(self) -> None:
        """The object was removed outright (grace 0, node lost): kill at once."""
        self._gone = True
        self.terminate(0, remove=True)

    def terminate(self, grace: float, *, remove: bool) -> None:
        self._grace = min(self._grace, grace) if self._stop.is_set() else grace
        self._stop.set()
        if remove:
            self._remove.set()
        if self._grace_timer is not None:
            # Containers are already being stopped: a shorter grace (a second
            # DELETE, a force delete) ends their wait sooner, as the kubelet's does.
            end = asyncio.get_running_loop().time() + grace
            current = self._grace_timer.when()
            if current is None or end < current:
                self._grace_timer.reschedule(end)

    def _grace_period(self) -> float:
        value = self.pod["spec"].get("terminationGracePeriodSeconds")
        return self.services.config.default_grace_period if value is None else float(value)

    # -- the worker ----------------------------------------------------------

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                starting = group.create_task(self._start(group))
                deadline = group.create_task(self._enforce_deadline())
                await self._stop.wait()
                starting.cancel()
                deadline.cancel()
                await self._stop_containers()
            await self._stop_sandbox()
            self.publish()
            await self._remove.wait()
            self._remove_object()
        finally:
            await self._cleanup()

    async def _start(self, group: asyncio.TaskGroup) -> None:
        self._started = time.time()
        self.start_time = now_rfc3339()
        self.publish()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sandbox = await Sandbox.start(
            hostname=self.name, directory=self.directory, sandbox_id=self.uid.replace("-", "")
        )
        self.pod_ip = self.node.allocate_ip()
        self.sandbox_ready = True
        self.publish()
        await self._setup_volumes()
        for spec in self.pod["spec"].get("initContainers") or []:
            runner = ContainerRunner(self, spec, init=True)
            self.init_runners.append(runner)
            await runner.run()
            if not runner.succeeded:
                self.publish()
                await self._stop_sandbox()
                return
        for spec in self.pod["spec"]["containers"]:
            runner = ContainerRunner(self, spec)
            self.runners[runner.name] = runner
            runner.task = group.create_task(self._run_container(runner))
        self.publish()

    async def _run_container(self, runner: ContainerRunner) -> None:
        await runner.run()
        if all(r.done for r in self.runners.values()) and not self.stopping:
            self.publish()
            await self._stop_sandbox()  # a finished pod keeps no sandbox

    async def _setup_volumes(self) -> None:
        volumes = self.pod["spec"].get("volumes") or []
        while True:
            config_changed = self.services.config_changed.listen()
            try:
                for volume in volumes:
                    if volume["name"] not in self.volume_paths:
                        self.volume_paths[volume["name"]] = setup(
                            self.services.store, self.pod, volume, self.directory / "volumes"
                        )
                return
            except MountError as error:
                self.event(WARNING, "FailedMount", str(error))
                await config_changed.wait()

    def _refresh_live_volumes(self) -> None:
        for volume in self.pod["spec"].get("volumes") or []:
            if volume["name"] in self.volume_paths and live_sources(volume):
                with contextlib.suppress(MountError):
                    setup(self.services.store, self.pod, volume, self.directory / "volumes")

    def refresh_config_volumes(self) -> None:
        """Secrets and ConfigMaps changed: rewrite the volumes that show them."""
        for volume in self.pod["spec"].get("volumes") or []:
            if volume["name"] in self.volume_paths and not ({"emptyDir", "hostPath"} & set(volume)):
                with contextlib.suppress(MountError):
                    setup(self.services.store, self.pod, volume, self.directory / "volumes")

    async def _enforce_deadline(self) -> None:
        while True:
            changed = self._deadline_changed.listen()
            seconds = self.pod["spec"].get("activeDeadlineSeconds")
            if seconds is None or self._started is None:
                await changed.wait()
                continue
            remaining = self._started + float(seconds) - time.time()
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await changed.wait()
                continue
            self.failure = ("DeadlineExceeded", DEADLINE_MESSAGE)
            self.event(WARNING, "DeadlineExceeded", DEADLINE_MESSAGE)
            self.terminate(self._grace_period(), remove=False)
            return

    async def _stop_containers(self) -> None:
        self.stopping = True
        tasks = []
        for runner in [*self.init_runners, *self.runners.values()]:
            task = getattr(runner, "task", None)
            if runner.running and runner.process is not None:
                self.event(
                    NORMAL,
                    "Killing",
                    f"Stopping container {runner.name}",
                    field_path=runner.field_path,
                )
                runner.process.signal(signal.SIGTERM)
            elif task is not None:
                task.cancel()
            if task is not None:
                tasks.append(task)
        if not tasks:
            return
        try:
            async with asyncio.timeout(self._grace) as timer:
                self._grace_timer = timer
                try:
                    await asyncio.wait(tasks)
                finally:
                    self._grace_timer = None  # it cannot be rescheduled once left
        except TimeoutError:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)

    async def _stop_sandbox(self) -> None:
        if self.sandbox is not None:
            await self.sandbox.stop()
        self.sandbox_ready = False

    def _remove_object(self) -> None:
        if self._gone:
            return
        current = self.services.store.try_get(resources.PODS, self.namespace, self.name)
        if current is not None and current["metadata"]["uid"] == self.uid:
            self._gone = True
            self.services.store.delete(resources.PODS, self.namespace, self.name)

    async def _cleanup(self) -> None:
        for runner in [*self.init_runners, *self.runners.values()]:
            if runner.process is not None:
                await runner.process.kill()
        if self.sandbox is not None:
            await self.sandbox.stop()
        if self.pod_ip is not None:
            self.node.release_ip(self.pod_ip)
            self.pod_ip = None
        shutil.rmtree(self.directory, ignore_errors=True)
