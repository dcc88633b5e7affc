"""One kubesim cluster: store, bootstrap objects, API server, controllers and kubelet together.

`Cluster.running()` starts everything in one asyncio event loop and keeps
it until the block ends: the store with its system namespaces and RBAC
defaults, the admin user (`kubesim-admin` in `system:masters`), the API
server, the namespace and quota controllers, and the kubelet, if
`tests/kubesim/kubelet.py` exists (without it, pods are stored but never
scheduled). The admin kubeconfig is written once the server listens, and
rewritten with a context per user whenever a user is added.

The fault methods are what the control socket (`control.py`) exposes.

Not here: process concerns (signals, the ready line: `__main__.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.kubesim import bootstrap, certs, defaults, deletion, resources
from tests.kubesim.apiserver import ApiServer, ApiServerConfig
from tests.kubesim.kubelet_protocol import KubeletLike
from tests.kubesim.namespaces import NamespaceController
from tests.kubesim.quota import QuotaController
from tests.kubesim.store import Store
from tests.kubesim.users import ADMIN, MASTERS, Users, kubeconfig, write_private

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class NodeShape:
    """A simulated node, as the cluster asks the kubelet for it."""

    name: str
    cpu: str
    memory: str
    gpu: int = 0


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    kubeconfig: Path
    state_dir: Path
    port: int = 0
    pull_delay: float = 0.0
    failing_images: frozenset[str] = frozenset()
    backoff_base: float = 10.0  # the kubelet's first crash-loop and image-pull back-off
    nodes: tuple[NodeShape, ...] | None = None  # None: the kubelet's own default nodes
    bookmark_interval: float = 60.0
    watch_timeout: float = 1800.0
    watch_history: int = 5000  # changes a watch can replay; older resourceVersions are 410


KubeletFactory = Callable[[Store, ClusterConfig], KubeletLike | None]


def real_kubelet(store: Store, config: ClusterConfig) -> KubeletLike | None:
    """The kubelet from `tests/kubesim/kubelet.py`, or None while that module does not exist."""
    try:
        module = importlib.import_module("tests.kubesim.kubelet")
    except ModuleNotFoundError as exc:
        if exc.name != "tests.kubesim.kubelet":
            raise
        logger.warning("kubesim: tests/kubesim/kubelet.py is missing; running without a kubelet")
        return None
    options: dict[str, object] = {}
    if config.nodes is not None:
        options["nodes"] = tuple(
            module.NodeSpec(name=n.name, cpu=n.cpu, memory=n.memory, gpu=n.gpu)
            for n in config.nodes
        )
    kubelet_config = module.KubeletConfig(
        pull_delay=config.pull_delay,
        failing_images=config.failing_images,
        state_dir=config.state_dir,
        restart_backoff_base=config.backoff_base,
        image_backoff_base=config.backoff_base,
        **options,
    )
    made: KubeletLike = module.Kubelet(store, kubelet_config)
    return made


class NoKubelet(RuntimeError):
    def __init__(self) -> None:
        super().__init__("kubesim runs without a kubelet (tests/kubesim/kubelet.py is missing)")


class Cluster:
    def __init__(
        self, config: ClusterConfig, *, kubelet_factory: KubeletFactory = real_kubelet
    ) -> None:
        self.config = config
        self.store = Store(history_size=config.watch_history)
        bootstrap.populate(self.store)
        self.users = Users()
        self.admin = self.users.add(ADMIN, (MASTERS,))
        self.certs = certs.issue()
        self._kubelet_factory = kubelet_factory
        self._kubelet: KubeletLike | None = None
        self._api: ApiServer | None = None

    @property
    def api(self) -> ApiServer:
        assert self._api is not None, "the cluster is not running"
        return self._api

    @property
    def server(self) -> str:
        return self.api.url

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Cluster]:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        kubelet = self._kubelet_factory(self.store, self.config)
        self._kubelet = kubelet
        api = ApiServer(
            store=self.store,
            users=self.users,
            certs=self.certs,
            kubelet=kubelet,
            config=ApiServerConfig(
                port=self.config.port,
                bookmark_interval=self.config.bookmark_interval,
                watch_timeout=self.config.watch_timeout,
            ),
        )
        async with api.running(), asyncio.TaskGroup() as group:
            self._api = api
            loops = [
                group.create_task(NamespaceController(self.store).run()),
                group.create_task(QuotaController(self.store).run()),
            ]
            if kubelet is not None:
                loops.append(group.create_task(kubelet.run()))
            self._write_admin_kubeconfig()
            try:
                yield self
            finally:
                for task in loops:
                    task.cancel()
                if kubelet is not None:
                    await kubelet.shutdown()
                self._api = None

    def _write_admin_kubeconfig(self) -> None:
        text = kubeconfig(
            server=self.server,
            ca_pem=self.certs.ca_pem,
            users=self.users.all(),
            current=ADMIN,
        )
        write_private(self.config.kubeconfig, text)

    # -- users and namespaces --------------------------------------------------

    def create_user(self, name: str, groups: Sequence[str] = ()) -> str:
        """Add a user (a fresh token) and return a kubeconfig for them alone."""
        user = self.users.add(name, groups)
        self._write_admin_kubeconfig()
        return kubeconfig(server=self.server, ca_pem=self.certs.ca_pem, users=[user], current=name)

    def create_namespace(self, prefix: str) -> str:
        """A new namespace named `prefix-xxxxx`, unique in this cluster."""
        name = self.store.generate_name(resources.NAMESPACES, None, f"{prefix.rstrip('-')}-")
        namespace: dict[str, object] = {"metadata": {"name": name}}
        defaults.apply(resources.NAMESPACES, namespace)
        self.store.create(resources.NAMESPACES, namespace)
        return name

    def delete_namespace(self, name: str) -> None:
        deletion.delete(self.store, resources.NAMESPACES, None, name, deletion.DeleteOptions())

    # -- faults ----------------------------------------------------------------

    def close_portforwards(self) -> int:
        return self.api.close_portforwards()

    def refuse_api(self, seconds: float) -> None:
        self.api.refuse(seconds)

    async def wait_api_listening(self) -> None:
        await self.api.wait_listening()

    def delay_api(self, seconds: float) -> None:
        self.api.delay(seconds)

    async def restart_api(self) -> None:
        await self.api.restart()

    def _need_kubelet(self) -> KubeletLike:
        if self._kubelet is None:
            raise NoKubelet()
        return self._kubelet

    async def kill_container(self, namespace: str, pod: str, container: str | None = None) -> None:
        await self._need_kubelet().kill_container(namespace, pod, container)

    async def lose_pod(self, namespace: str, pod: str) -> None:
        await self._need_kubelet().lose_pod(namespace, pod)

    def set_node_ready(self, node: str, ready: bool) -> None:
        self._need_kubelet().set_node_ready(node, ready)

    def fail_images(self, *images: str) -> None:
        self._need_kubelet().fail_images(*images)

    def provide_image_paths(self, image: str, paths: dict[str, str]) -> None:
        self._need_kubelet().provide_image_paths(image, paths)

    def set_pull_delay(self, seconds: float) -> None:
        self._need_kubelet().set_pull_delay(seconds)
