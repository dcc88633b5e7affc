"""The kubesim kubelet: nodes, scheduler, pod workers and controllers behind one interface.

The API server calls this class; everything runs on the store's event loop.
`run()` registers the Node objects and then, until cancelled, follows the
store through watches: the scheduler binds pods, a pod worker per pod bound
to one of our nodes runs it (see podworker.py), Secrets/ConfigMaps changes
wake pods waiting for them, and the DaemonSet and Job controllers do their
part. The other methods are what the API server's subresources and the
fault-injection socket need: port-forward dialing, log streaming, and the
faults (kill a container, lose a pod, a node not ready, failing images, a
pull delay). `shutdown()` (also run when `run()` ends) leaves no process, no
mount and no directory behind.

Pods run as root on the host's Python environment; see shim.py for what a
container is here and podenv.py for what an image means.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from tests.kubesim import resources
from tests.kubesim.backoff import Backoff
from tests.kubesim.broadcast import Broadcast
from tests.kubesim.config import KubeletConfig
from tests.kubesim.daemonset import DaemonSetController
from tests.kubesim.events import EventRecorder
from tests.kubesim.gc import GarbageCollector
from tests.kubesim.images import ImageService
from tests.kubesim.job import JobController
from tests.kubesim.kubelet_protocol import PortForwardError
from tests.kubesim.logs import ContainerLog
from tests.kubesim.nodes import NodeSpec, NodeState, default_nodes
from tests.kubesim.podlogs import select_log
from tests.kubesim.podworker import PodWorker, Services
from tests.kubesim.sandbox import dial
from tests.kubesim.scheduler import Scheduler
from tests.kubesim.status import not_found
from tests.kubesim.store import Obj, Store

__all__ = [
    "Kubelet",
    "KubeletConfig",
    "NodeSpec",
    "PortForwardError",
    "default_nodes",
]


class Kubelet:
    def __init__(self, store: Store, config: KubeletConfig) -> None:
        self._store = store
        self._config = config
        self._nodes = {spec.name: NodeState(spec, i) for i, spec in enumerate(config.nodes)}
        self._images = ImageService(pull_delay=config.pull_delay, failing=config.failing_images)
        self._services = Services(
            store=store,
            config=config,
            images=self._images,
            restart_backoff=Backoff(base=config.restart_backoff_base, cap=config.backoff_cap),
            pull_backoff=Backoff(base=config.image_backoff_base, cap=config.backoff_cap),
            config_changed=Broadcast(),
            publish_node=self._publish_node,
            recorders={
                name: EventRecorder(store, component="kubelet", host=name) for name in self._nodes
            },
        )
        self._workers: dict[str, PodWorker] = {}  # by uid
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._finished: set[str] = (
            set()
        )  # uids whose worker ended: late events must not revive them
        self._closing = False

    # -- the loop ------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled: nodes, scheduling, pods, controllers."""
        self._closing = False
        for node in self._nodes.values():
            node.publish(self._store)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(Scheduler(self._store).run())
                group.create_task(self._follow_pods())
                group.create_task(self._follow_config(resources.SECRETS))
                group.create_task(self._follow_config(resources.CONFIGMAPS))
                group.create_task(DaemonSetController(self._store).run())
                group.create_task(
                    JobController(self._store, backoff_base=self._config.restart_backoff_base).run()
                )
                group.create_task(GarbageCollector(self._store).run())
        finally:
            await self.shutdown()

    async def _follow_pods(self) -> None:
        watch = self._store.watch(resources.PODS)
        try:
            async with asyncio.TaskGroup() as workers:
                async for event in watch:
                    self._on_pod(event.type, event.object, workers)
        finally:
            watch.close()

    def _on_pod(self, kind: str, pod: Obj, workers: asyncio.TaskGroup) -> None:
        uid = pod["metadata"]["uid"]
        worker = self._workers.get(uid)
        if kind == "DELETED":
            if worker is not None:
                worker.gone()
            return
        if worker is not None:
            worker.update(pod)
            return
        node = self._nodes.get(pod["spec"].get("nodeName") or "")
        if node is None or self._closing or uid in self._finished:
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return  # finished before this kubelet started: nothing to run
        worker = PodWorker(self._services, node, pod)
        self._workers[uid] = worker
        self._tasks[uid] = workers.create_task(self._run_worker(worker))
        worker.update(pod)

    async def _run_worker(self, worker: PodWorker) -> None:
        try:
            await worker.run()
        finally:
            self._finished.add(worker.uid)
            self._workers.pop(worker.uid, None)
            self._tasks.pop(worker.uid, None)

    async def _follow_config(self, rtype: resources.ResourceType) -> None:
        watch = self._store.watch(rtype, resource_version=str(self._store.resource_version))
        try:
            async for _ in watch:
                for worker in list(self._workers.values()):
                    worker.refresh_config_volumes()
                self._services.config_changed.notify()
        finally:
            watch.close()

    def _publish_node(self, node: NodeState) -> None:
        node.publish(self._store)

    def _worker(self, namespace: str, pod: str) -> PodWorker | None:
        for worker in self._workers.values():
            if (worker.namespace, worker.name) == (namespace, pod):
                return worker
        return None

    # -- subresources --------------------------------------------------------

    async def open_port(
        self, namespace: str, pod: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A stream to 127.0.0.1:port inside the pod's network namespace."""
        worker = self._worker(namespace, pod)
        if worker is None:
            raise PortForwardError(f'pod not found ("{pod}_{namespace}")')
        sandbox = worker.sandbox
        sandbox_id = worker.uid.replace("-", "")
        if sandbox is None or not sandbox.running or not worker.sandbox_ready:
            raise PortForwardError(
                f"error forwarding port {port} to pod {sandbox_id}, uid : "
                f'sandbox container "{sandbox_id}" is not running'
            )
        try:
            sock = await dial(sandbox.namespace("net"), port)
        except OSError as error:
            refused = f"connect: {_strerror(error)}"
            raise PortForwardError(
                f"error forwarding port {port} to pod {sandbox_id}, uid : failed to execute "
                f'portforward in network namespace "/var/run/netns/cni-{worker.uid}": failed to '
                f'connect to localhost:{port} inside namespace "{sandbox_id}", IPv4: dial tcp4 '
                f"127.0.0.1:{port}: {refused} IPv6 dial tcp6 [::1]:{port}: {refused} "
            ) from error
        return await asyncio.open_connection(sock=sock)

    def log_stream(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None,
        follow: bool,
        tail_lines: int | None,
        previous: bool,
        timestamps: bool,
    ) -> AsyncIterator[bytes]:
        """The pods/log stream; raises ApiError (404, 400 with the kubelet's words) up front."""
        obj = self._store.try_get(resources.PODS, namespace, pod)
        if obj is None:
            raise not_found(resources.PODS, pod)
        worker = self._worker(namespace, pod)
        if worker is not None and worker.uid != obj["metadata"]["uid"]:
            worker = None
        log: ContainerLog | None = select_log(obj, worker, container=container, previous=previous)
        return _stream(log, follow=follow, tail_lines=tail_lines, timestamps=timestamps)

    # -- faults --------------------------------------------------------------

    async def kill_container(self, namespace: str, pod: str, container: str | None = None) -> None:
        """SIGKILL a running container (exit 137); its restartPolicy decides what follows."""
        worker = self._worker(namespace, pod)
        if worker is None:
            raise not_found(resources.PODS, pod)
        runners = [r for r in worker.runners.values() if container in (None, r.name)]
        for runner in runners:
            if runner.process is not None:
                runner.process.signal(signal.SIGKILL)
        for runner in runners:
            if runner.process is not None:
                await runner.exited.wait()

    async def lose_pod(self, namespace: str, pod: str) -> None:
        """As when a node vanishes: processes killed, the object removed with no grace."""
        worker = self._worker(namespace, pod)
        if worker is not None:
            task = self._tasks.get(worker.uid)
            if task is not None:
                task.cancel()
                await asyncio.wait([task])
        with contextlib.suppress(Exception):
            self._store.delete(resources.PODS, namespace, pod)

    def set_node_ready(self, node: str, ready: bool) -> None:
        state = self._nodes[node]
        if state.ready != ready:
            state.ready = ready
            state.publish(self._store)

    def fail_images(self, *images: str) -> None:
        self._images.fail(*images)

    def provide_image_paths(self, image: str, paths: dict[str, str]) -> None:
        self._images.provide(image, paths)

    def set_pull_delay(self, seconds: float) -> None:
        self._images.pull_delay = seconds

    async def shutdown(self) -> None:
        """Kill every pod's processes and remove kubesim's pod directories."""
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        shutil.rmtree(Path(self._config.state_dir) / "pods", ignore_errors=True)


async def _stream(
    log: ContainerLog | None, *, follow: bool, tail_lines: int | None, timestamps: bool
) -> AsyncIterator[bytes]:
    if log is None:
        return
    async for chunk in log.stream(follow=follow, tail_lines=tail_lines, timestamps=timestamps):
        yield chunk


def _strerror(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return (error.strerror or str(error)).lower()
