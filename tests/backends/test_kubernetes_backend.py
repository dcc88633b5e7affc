"""The Kubernetes backend on kubesim, driven through the kernel manager (no HTTP).

What the daemon tests cannot reach easily: permissions checked up front and
refused mid-way, an in-place restart that does not come back (the pod is
replaced), re-attaching the kernels a previous daemon left, and leases
renewed through an API outage.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from jkctl import paths
from jkctl.backends.kubernetes.backend import KubernetesBackend
from jkctl.backends.kubernetes.settings import KubeBackendSettings
from jkctl.errors import KubeForbidden
from jkctl.kernels.kernel import Kernel
from jkctl.kernels.manager import KernelManager
from jkctl.kernels.settings import KernelSettings
from jkctl.kernels.specs import KernelSpecSource
from tests.kube_users import JKCTL_RULES, Namespace, jkctl_namespace, without
from tests.kubesim.conftest import api_client
from tests.kubesim.fixture import Kubesim

pytestmark = pytest.mark.kubesim

DAEMON_ID = "00000000000000aa"


def settings(namespace: Namespace, tmp_path: Path, **overrides: Any) -> KubeBackendSettings:
    fields: dict[str, Any] = {
        "kubeconfig": str(namespace.kubeconfig),
        "namespace": namespace.name,
        "daemon_id": DAEMON_ID,
        "owner": "tester",
        "runtime_dir": tmp_path / "runtime",
    }
    fields.update(overrides)
    return KubeBackendSettings(**fields)


@contextlib.asynccontextmanager
async def manager_on(
    backend_settings: KubeBackendSettings,
    *,
    stop_kernels: bool = True,
    kernel_settings: KernelSettings | None = None,
) -> AsyncIterator[KernelManager]:
    backend = KubernetesBackend(backend_settings)
    try:
        await backend.open()
    except BaseException:
        await backend.aclose()
        raise
    manager = KernelManager(
        backend=backend,
        specs=KernelSpecSource(dirs=(paths.bundled("kernel-templates"),)),
        settings=kernel_settings or KernelSettings(start_timeout=60),
    )
    try:
        await manager.adopt()
        yield manager
    finally:
        await manager.aclose(stop_kernels=stop_kernels)


async def run(kernel: Kernel, code: str, **expressions: str) -> dict[str, Any]:
    """Execute ``code``; the reply's content (user_expressions evaluated)."""
    async with asyncio.timeout(30):
        reply = await kernel.relay.request(
            "shell",
            "execute_request",
            {"code": code, "silent": False, "user_expressions": expressions},
        )
    content: dict[str, Any] = reply.content()
    return content


def value(content: dict[str, Any], name: str) -> str:
    found: str = content["user_expressions"][name]["data"]["text/plain"]
    return found


@pytest.fixture
def namespace(kubesim: Kubesim, request: pytest.FixtureRequest) -> Namespace:
    return jkctl_namespace(kubesim, "backend", user=f"u-{request.node.name[:30].lower()}")


async def test_open_says_in_one_sentence_what_the_user_may_not_do(
    kubesim: Kubesim, tmp_path: Path
) -> None:
    rules = [
        rule for rule in without("create", "pods/portforward") if rule["resources"] != ["pods/log"]
    ]
    partial = jkctl_namespace(kubesim, "partial", rules=rules)
    backend = KubernetesBackend(settings(partial, tmp_path))
    with pytest.raises(KubeForbidden) as raised:
        await backend.open()
    await backend.aclose()
    assert raised.value.message == (
        f"you may not create pods/portforward or get pods/log in namespace {partial.name}"
    )
    assert "kubectl auth can-i --list" in (raised.value.hint or "")


async def test_a_permission_lost_mid_way_is_named_and_leaves_nothing(
    namespace: Namespace, kubesim: Kubesim, tmp_path: Path
) -> None:
    async with manager_on(settings(namespace, tmp_path)) as manager:
        # The user may still create Secrets, but no longer pods.
        with api_client(kubesim.kubeconfig) as api:
            client.RbacAuthorizationV1Api(api).patch_namespaced_role(
                f"jkctl-{namespace.user}",
                namespace.name,
                {"rules": list(without("create", "pods"))},
            )
        with pytest.raises(KubeForbidden) as raised:
            await manager.start_kernel(name="python3")
        assert raised.value.message.startswith(
            'Kubernetes refused to create pods "jkctl-'
        ) and raised.value.message.endswith(f'user "{namespace.user}" lacks permission')
        assert manager.list() == []
        assert namespace.leftovers() == []
        with api_client(kubesim.kubeconfig) as api:
            client.RbacAuthorizationV1Api(api).patch_namespaced_role(
                f"jkctl-{namespace.user}", namespace.name, {"rules": JKCTL_RULES}
            )


async def test_a_restart_that_does_not_come_back_replaces_the_pod(
    namespace: Namespace, tmp_path: Path
) -> None:
    quick = KernelSettings(start_timeout=60, request_timeout=1, restart_timeout=3)
    async with manager_on(settings(namespace, tmp_path), kernel_settings=quick) as manager:
        kernel = await manager.start_kernel(name="python3")
        first = namespace.pod_of(kernel.id)
        assert first.metadata.name == f"jkctl-{kernel.id}"
        # A kernel that ignores shutdown requests: the wrapper never sees it exit.
        deaf = "get_ipython().kernel.control_handlers['shutdown_request'] = lambda *a: None"
        assert (await run(kernel, f"{deaf}\nx = 1"))["status"] == "ok"

        await kernel.restart()
        second = namespace.pod_of(kernel.id)
        assert second.metadata.name == f"jkctl-{kernel.id}-1"
        assert second.metadata.annotations["jkctl.io/generation"] == "1"
        reply = await run(kernel, "", x="'x' in dir()")
        assert value(reply, "x") == "False"
        assert [p.metadata.name for p in namespace.pods()] == [second.metadata.name]
        assert [s.metadata.name for s in namespace.secrets()] == [second.metadata.name]
        assert [k.id for k in manager.list()] == [kernel.id]
    assert namespace.leftovers() == []


async def test_a_new_daemon_re_attaches_the_kernels_the_last_one_left(
    namespace: Namespace, tmp_path: Path
) -> None:
    async with manager_on(settings(namespace, tmp_path), stop_kernels=False) as manager:
        kernel = await manager.start_kernel(name="python3")
        assert (await run(kernel, "x = 42"))["status"] == "ok"
        kernel_id = kernel.id
    pod = namespace.pod_of(kernel_id)  # detached: still there

    # Another daemon's kernels are not this one's business.
    other = settings(namespace, tmp_path / "other", daemon_id="00000000000000bb")
    async with manager_on(other) as manager:
        assert manager.list() == []

    async with manager_on(settings(namespace, tmp_path)) as manager:
        (again,) = manager.list()
        assert again.id == kernel_id
        assert again.name == "python3"
        assert value(await run(again, "", x="x"), "x") == "42"
        assert namespace.pod_of(kernel_id).metadata.uid == pod.metadata.uid
        # Re-attaching renewed the lease at once.
        renewed = namespace.pod_of(kernel_id).metadata.annotations["jkctl.io/lease-renewed"]
        assert renewed != pod.metadata.annotations["jkctl.io/lease-renewed"]
    assert namespace.leftovers() == []


async def test_leases_are_renewed_and_an_api_outage_kills_nothing(
    namespace: Namespace, kubesim: Kubesim, tmp_path: Path
) -> None:
    short = settings(namespace, tmp_path, lease_seconds=8)  # renewed every 2 seconds
    async with manager_on(short) as manager:
        kernel = await manager.start_kernel(name="python3")
        pod = namespace.pod_of(kernel.id)
        assert pod.metadata.annotations["jkctl.io/lease-seconds"] == "8"
        # The Secret is made the pod's (in the background), so that it goes with it.
        secret = await secret_once(namespace, pod.metadata.name, owned)
        assert [ref.uid for ref in secret.metadata.owner_references] == [pod.metadata.uid]
        tokens = await lease_tokens(namespace, pod.metadata.name, count=2)
        assert len(set(tokens)) == 2

        # An outage longer than the renewal period, well inside the lease: it cuts
        # the kernel's tunnel, which comes back once the API does.
        tunnel = kernel._handle._tunnel  # type: ignore[attr-defined]
        failed = tunnel.stats.failed  # (refused ports while the kernel booted)
        kubesim.refuse_api(3)
        async with asyncio.timeout(30):
            await tunnel.wait_stats(lambda stats: stats.failed > failed)
            await tunnel.wait_stats(lambda stats: stats.failure_streak == 0 and stats.active)
        await lease_tokens(namespace, pod.metadata.name, count=1)
        assert value(await run(kernel, "", two="1 + 1"), "two") == "2"
        assert [k.id for k in manager.list()] == [kernel.id]
    assert namespace.leftovers() == []


async def lease_tokens(namespace: Namespace, pod: str, *, count: int) -> list[str]:
    """The next ``count`` values of the pod's lease-renewed annotation (watching the pod)."""

    def watch() -> list[str]:
        seen: list[str] = []
        with api_client(namespace.kubesim.kubeconfig) as api:
            core = client.CoreV1Api(api)
            current = core.read_namespaced_pod(pod, namespace.name)
            last = current.metadata.annotations["jkctl.io/lease-renewed"]
            stream = client_watch()
            for event in stream.stream(
                core.list_namespaced_pod,
                namespace.name,
                field_selector=f"metadata.name={pod}",
                resource_version=current.metadata.resource_version,
                timeout_seconds=20,
            ):
                token = event["object"].metadata.annotations["jkctl.io/lease-renewed"]
                if token != last:
                    seen.append(token)
                    last = token
                if len(seen) == count:
                    stream.stop()
        return seen

    tokens = await asyncio.to_thread(watch)
    assert len(tokens) == count, "the lease was not renewed"
    return tokens


def owned(secret: Any) -> bool:
    return bool(secret.metadata.owner_references)


async def secret_once(namespace: Namespace, name: str, predicate: Any) -> Any:
    """The Secret ``name`` once ``predicate`` holds for it (watching it)."""

    def watch() -> Any:
        with api_client(namespace.kubesim.kubeconfig) as api:
            core = client.CoreV1Api(api)
            current = core.read_namespaced_secret(name, namespace.name)
            if predicate(current):
                return current
            stream = client_watch()
            for event in stream.stream(
                core.list_namespaced_secret,
                namespace.name,
                field_selector=f"metadata.name={name}",
                resource_version=current.metadata.resource_version,
                timeout_seconds=20,
            ):
                if predicate(event["object"]):
                    stream.stop()
                    return event["object"]
        raise AssertionError(f"Secret {name} never satisfied {predicate.__name__}")

    return await asyncio.to_thread(watch)


def client_watch() -> Any:
    from kubernetes import watch

    return watch.Watch()
