"""One container of one pod, run by the kubelet: image, start, watch, restart with back-off.

A `ContainerRunner` owns every run of its container and the status the
kubelet reports for it (state, lastState, restartCount, ready, started,
containerID, imageID). It follows the kubelet's rules: pull per
imagePullPolicy with image back-off (ErrImagePull, ImagePullBackOff,
ErrImageNeverPull), CreateContainerConfigError while a referenced Secret or
ConfigMap is missing, restartPolicy with crash-loop back-off
(CrashLoopBackOff), and the events of each step worded as the kubelet words
them. The pod worker decides when the pod stops; a runner only stops its
process when cancelled (SIGKILL) or signalled by the worker.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING, Any

from tests.kubesim.backoff import go_duration
from tests.kubesim.events import NORMAL, WARNING
from tests.kubesim.images import PullError, default_pull_policy, image_id, normalize
from tests.kubesim.logs import ContainerLog
from tests.kubesim.podenv import ConfigError, command_line, environment
from tests.kubesim.sandbox import ContainerProcess, StartError, spawn_shim
from tests.kubesim.store import Obj, now_rfc3339

if TYPE_CHECKING:
    from tests.kubesim.podworker import PodWorker


class ContainerRunner:
    def __init__(self, worker: PodWorker, spec: Obj, *, init: bool = False) -> None:
        self.worker = worker
        self.spec = spec
        self.name: str = spec["name"]
        self.init = init
        self.image: str = spec.get("image", "")
        self.image_id = ""
        self.container_id: str | None = None
        self.restart_count = 0
        self.runs = 0
        reason = "PodInitializing" if worker.has_init and not init else "ContainerCreating"
        self.state: Obj = {"waiting": {"reason": reason}}
        self._started_at = ""
        self.last_state: Obj = {}
        self.process: ContainerProcess | None = None
        self.logs: dict[str, ContainerLog] = {}  # containerID -> log of that run
        self.done = False  # will not run again
        self.succeeded = False
        self.exited = asyncio.Event()  # set whenever a run ends
        self.task: asyncio.Task[None] | None = None  # set by the pod worker that runs it

    # -- status --------------------------------------------------------------

    @property
    def field_path(self) -> str:
        return f"spec.{'initContainers' if self.init else 'containers'}{{{self.name}}}"

    @property
    def running(self) -> bool:
        return self.process is not None and "running" in self.state

    def status(self) -> Obj:
        status: Obj = {
            "name": self.name,
            "state": self.state,
            "lastState": self.last_state,
            "ready": self.running,
            "restartCount": self.restart_count,
            "image": normalize(self.image) if self.image_id else self.image,
            "imageID": self.image_id,
            "started": self.running,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status

    def _event(self, event_type: str, reason: str, message: str) -> None:
        self.worker.event(event_type, reason, message, field_path=self.field_path)

    def _wait(self, reason: str, message: str | None = None) -> None:
        waiting: dict[str, Any] = {"reason": reason}
        if message:
            waiting["message"] = message
        if "terminated" in self.state:
            self.last_state = {"terminated": self.state["terminated"]}
        self.state = {"waiting": waiting}
        self.worker.publish()

    # -- the loop ------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                await self._ensure_image()
                argv, env = await self._configure()
                code, finished = await self._run_once(argv, env)
                if self.worker.stopping or not self._should_restart(code):
                    self.done = True
                    self.succeeded = code == 0
                    return
                await self._back_off(finished)
        finally:
            if self.process is not None:
                code = await self.process.kill()
                self._record_exit(code)
            for log in self.logs.values():
                log.finish()

    def _should_restart(self, code: int) -> bool:
        policy = self.worker.restart_policy
        if self.init:
            return code != 0 and policy != "Never"
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    async def _back_off(self, finished: float) -> None:
        backoff = self.worker.services.restart_backoff
        key = (self.worker.uid, self.name)
        remaining = backoff.remaining_since(key, finished)
        if remaining > 0:
            pod = self.worker.describe()
            self._wait(
                "CrashLoopBackOff",
                f"back-off {go_duration(backoff.delay(key))} restarting failed "
                f"container={self.name} pod={pod}",
            )
            self._event(
                WARNING, "BackOff", f"Back-off restarting failed container {self.name} in pod {pod}"
            )
            await asyncio.sleep(remaining)
        backoff.next(key, finished)

    async def _ensure_image(self) -> None:
        services, node = self.worker.services, self.worker.node
        policy = self.spec.get("imagePullPolicy") or default_pull_policy(self.image)
        key = (node.name, normalize(self.image))
        while True:
            images_changed = node.images_changed.listen()
            present = services.images.present(node, self.image)
            if policy == "Never" or (policy == "IfNotPresent" and present):
                if present:
                    self._event(
                        NORMAL,
                        "Pulled",
                        f'Container image "{self.image}" already present on machine',
                    )
                    self.image_id = image_id(self.image)
                    return
                message = f'Container image "{self.image}" is not present with pull policy of Never'
                self._wait("ErrImageNeverPull", message)
                self._event(WARNING, "ErrImageNeverPull", message)
                await images_changed.wait()
                continue
            remaining = services.pull_backoff.remaining_since_update(key)
            if remaining > 0:
                message = f'Back-off pulling image "{self.image}"'
                self._wait("ImagePullBackOff", message)
                self._event(NORMAL, "BackOff", message)
                self._event(WARNING, "Failed", "Error: ImagePullBackOff")
                await asyncio.sleep(remaining)
                continue
            self._event(NORMAL, "Pulling", f'Pulling image "{self.image}"')
            try:
                pulled = await services.images.pull(node, self.image)
            except PullError as error:
                services.pull_backoff.next(key)
                self._event(WARNING, "Failed", f'Failed to pull image "{self.image}": {error}')
                self._wait("ErrImagePull", str(error))
                self._event(WARNING, "Failed", "Error: ErrImagePull")
                await asyncio.sleep(services.pull_backoff.base)  # the pod worker's retry
                continue
            took = go_duration(round(pulled.seconds, 3))
            self._event(
                NORMAL,
                "Pulled",
                f'Successfully pulled image "{self.image}" in {took} ({took} including waiting). '
                f"Image size: {pulled.size} bytes.",
            )
            if pulled.new:
                services.publish_node(node)
            self.image_id = pulled.image_id
            return

    async def _configure(self) -> tuple[list[str], dict[str, str]]:
        services = self.worker.services
        while True:
            config_changed = services.config_changed.listen()
            try:
                env = environment(services.store, self.worker.pod, self.spec)
            except ConfigError as error:
                self._wait("CreateContainerConfigError", str(error))
                self._event(WARNING, "Failed", f"Error: {error}")
                await config_changed.wait()
                continue
            return command_line(self.spec, env), env

    async def _run_once(self, argv: list[str], env: dict[str, str]) -> tuple[int, float]:
        worker = self.worker
        if self.runs:
            self.restart_count += 1
        self.runs += 1
        container_id = "containerd://" + secrets.token_hex(32)
        log = ContainerLog(worker.directory / "logs" / self.name / f"{self.runs - 1}.log")
        self.logs[container_id] = log
        scratch = worker.directory / "scratch" / f"{self.name}-{self.runs}"
        scratch.mkdir(parents=True, exist_ok=True)
        spec = {
            "mode": "container",
            "netns": worker.sandbox_namespace("net"),
            "utsns": worker.sandbox_namespace("uts"),
            "scratch": str(scratch),
            "mounts": worker.mounts_for(self.spec),
            "links": worker.services.images.provided(self.image),
            "cwd": self.spec.get("workingDir") or "/",
            "argv": argv,
            "env": env,
        }
        started_at = now_rfc3339()
        self.exited.clear()
        self._event(NORMAL, "Created", f"Created container {self.name}")
        try:
            started = await spawn_shim(spec, scratch.with_suffix(".json"), capture=True)
        except StartError as error:
            self.container_id = container_id
            self._event(WARNING, "Failed", f"Error: {error}")
            log.finish()
            self._terminated(128, "StartError", "1970-01-01T00:00:00Z", message=str(error))
            return 128, time.monotonic()
        self.container_id = container_id
        self.process = ContainerProcess(started)
        self._event(NORMAL, "Started", f"Started container {self.name}")
        if "terminated" in self.state:
            self.last_state = {"terminated": self.state["terminated"]}
        self.state = {"running": {"startedAt": started_at}}
        self._started_at = started_at
        worker.publish()
        shim = started.process
        assert shim.stdout is not None and shim.stderr is not None
        async with asyncio.TaskGroup() as pumps:
            pumps.create_task(log.pump(shim.stdout, "stdout"))
            pumps.create_task(log.pump(shim.stderr, "stderr"))
            code = await self.process.wait()
        log.finish()
        self._record_exit(code)
        return code, time.monotonic()

    def _record_exit(self, code: int) -> None:
        if self.process is None:
            return
        self.process = None
        for log in self.logs.values():
            log.finish()
        reason = "Completed" if code == 0 else "Error"
        self._terminated(code, reason, self._started_at)

    def _terminated(self, code: int, reason: str, started_at: str, message: str = "") -> None:
        terminated: dict[str, Any] = {
            "exitCode": code,
            "reason": reason,
            "startedAt": started_at,
            "finishedAt": now_rfc3339(),
            "containerID": self.container_id,
        }
        if message:
            terminated["message"] = message
        self.state = {"terminated": terminated}
        self.exited.set()
        self.worker.publish()

    def current_log(self) -> ContainerLog | None:
        return self.logs.get(self.container_id or "")
