"""Test helpers for driving the kubelet in-process on a Store (no HTTP).

`cluster` starts a Kubelet on a fresh Store with short back-offs and stops it
(checking that nothing is left) at teardown; `wait_for` waits on a watch for
an object to satisfy a condition (no polling, a deadline). `sh`,
`running`, `wait_for_log`, `read_log` and `scheduling` are small shorthands the
kubelet tests share.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.kubesim import resources
from tests.kubesim.deletion import delete_pod
from tests.kubesim.kubelet import Kubelet, KubeletConfig
from tests.kubesim.resources import ResourceType
from tests.kubesim.store import Obj, Store

DEADLINE = 20.0  # seconds any single wait in these tests may take


@dataclass
class Cluster:
    store: Store
    kubelet: Kubelet
    state_dir: Path

    def create_pod(self, spec: Obj, *, name: str, namespace: str = "default", **meta: Any) -> Obj:
        pod = {"metadata": {"name": name, "namespace": namespace, **meta}, "spec": spec}
        spec.setdefault("terminationGracePeriodSeconds", 1)
        return self.store.create(resources.PODS, pod)

    def events(self, name: str, namespace: str = "default") -> list[tuple[str, str, str]]:
        items, _ = self.store.list(resources.EVENTS, namespace)
        return [
            (e["type"], e["reason"], e["message"])
            for e in sorted(items, key=lambda e: int(e["metadata"]["resourceVersion"]))
            if e["involvedObject"]["name"] == name
        ]

    async def delete_pod(
        self, name: str, *, grace: int | None = None, namespace: str = "default"
    ) -> None:
        """What the API server does for a DELETE of a pod (see deletion.py)."""
        delete_pod(self.store, self.store.get(resources.PODS, namespace, name), grace=grace)


def make_store() -> Store:
    store = Store()
    store.create(resources.NAMESPACES, {"metadata": {"name": "default"}})
    return store


@contextlib.asynccontextmanager
async def running_kubelet(store: Store, config: KubeletConfig) -> AsyncIterator[Kubelet]:
    kubelet = Kubelet(store, config)
    task = asyncio.create_task(kubelet.run())
    try:
        yield kubelet
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    store = make_store()
    config = KubeletConfig(
        state_dir=tmp_path / "kubelet",
        restart_backoff_base=0.2,
        image_backoff_base=0.2,
        backoff_cap=2.0,
    )
    async with running_kubelet(store, config) as kubelet:
        yield Cluster(store, kubelet, tmp_path / "kubelet")
    assert not (tmp_path / "kubelet" / "pods").exists()
    assert mounts_under(tmp_path) == []


def mounts_under(path: Path) -> list[str]:
    """Mount points in kubesim's (the host's) mount namespace below `path`."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line for line in lines if str(path) in line]


async def wait_for(
    store: Store,
    rtype: ResourceType,
    namespace: str | None,
    name: str,
    condition: Callable[[Obj | None], bool],
) -> Obj | None:
    """Wait (on a watch, up to DEADLINE) until `condition` holds; None means the object is gone."""
    watch = store.watch(rtype, namespace, field_selector=f"metadata.name={name}")
    current = store.try_get(rtype, namespace, name)
    try:
        async with asyncio.timeout(DEADLINE):
            if condition(current):
                return current
            async for event in watch:
                current = None if event.type == "DELETED" else event.object
                if condition(current):
                    return current
    except TimeoutError:
        raise AssertionError(f"{rtype.kind} {name} never got there; last seen: {current}") from None
    finally:
        watch.close()
    raise AssertionError("watch closed")


def phase_is(*phases: str) -> Callable[[Obj | None], bool]:
    return lambda pod: pod is not None and pod.get("status", {}).get("phase") in phases


def waiting_reason(pod: Obj | None, container: int = 0) -> str | None:
    if pod is None:
        return None
    statuses = pod.get("status", {}).get("containerStatuses") or []
    if len(statuses) <= container:
        return None
    return (statuses[container]["state"].get("waiting") or {}).get("reason")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def sh(script: str, **extra: object) -> dict[str, object]:
    return {"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", script], **extra}


async def running(cluster: Cluster, name: str) -> Obj:
    pod = await wait_for(cluster.store, resources.PODS, "default", name, phase_is("Running"))
    assert pod is not None
    return pod


def scheduling(text: str) -> Callable[[Obj | None], bool]:
    """The pod's PodScheduled condition says `text`."""

    def check(pod: Obj | None) -> bool:
        conditions = (pod or {}).get("status", {}).get("conditions", [])
        return any(c["type"] == "PodScheduled" and text in c.get("message", "") for c in conditions)

    return check


async def wait_for_log(cluster: Cluster, name: str, *texts: bytes) -> None:
    """Follow the running pod's log until every one of `texts` has shown up."""
    await running(cluster, name)
    seen = b""
    stream = cluster.kubelet.log_stream(
        "default",
        name,
        container=None,
        follow=True,
        tail_lines=None,
        previous=False,
        timestamps=False,
    )
    async with asyncio.timeout(10):
        async for chunk in stream:
            seen += chunk
            if all(text in seen for text in texts):
                break
    await stream.aclose()  # type: ignore[attr-defined]
    assert all(text in seen for text in texts), seen


async def read_log(cluster: Cluster, name: str, **options: object) -> bytes:
    chunks = []
    kwargs = {
        "container": None,
        "follow": False,
        "tail_lines": None,
        "previous": False,
        "timestamps": False,
    }
    kwargs.update(options)
    async with asyncio.timeout(10):
        async for chunk in cluster.kubelet.log_stream("default", name, **kwargs):  # type: ignore[arg-type]
            chunks.append(chunk)
    return b"".join(chunks)
