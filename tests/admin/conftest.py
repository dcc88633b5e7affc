"""Fixtures for `jkctl admin` against kubesim: the admin's client, fresh team names, members."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jkctl.kube.client import KubeClient, KubeSettings
from jkctl.kube.login import kubeconfig_login
from jkctl.kube.objects import KubeObject
from jkctl.kube.resources import PODS
from tests.kubesim.fixture import Kubesim

SETTINGS = KubeSettings(request_timeout=20.0)


def client_for(kubeconfig: Path) -> KubeClient:
    return KubeClient(kubeconfig_login(kubeconfig=kubeconfig), settings=SETTINGS)


@pytest.fixture
async def admin_kube(kubesim: Kubesim) -> AsyncIterator[KubeClient]:
    async with client_for(kubesim.kubeconfig) as kube:
        yield kube


@pytest.fixture
def team_names(kubesim: Kubesim) -> Iterator[Callable[[str], str]]:
    """Unique team names for this test; their namespaces are deleted afterwards."""
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}-{secrets.token_hex(3)}"
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            kubesim.delete_namespace(name)
        except Exception as exc:  # already gone (a delete test), or never made
            if "not found" not in str(exc):
                raise


def kernel_pod(
    name: str, *, cpu: str = "100m", memory: str = "64Mi", gpu: int = 0, **extra: Any
) -> KubeObject:
    """A pod shaped like a jkctl kernel: non-root, requests = limits, a kernel container."""
    resources = {"cpu": cpu, "memory": memory}
    if gpu:
        resources["nvidia.com/gpu"] = str(gpu)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"jkctl.io/kernel-id": name}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
            "containers": [
                {
                    "name": "kernel",
                    "image": "python:3.11",
                    "command": ["python", "-c", "import time; time.sleep(300)"],
                    "resources": {"requests": resources, "limits": dict(resources)},
                    "securityContext": {"allowPrivilegeEscalation": False},
                }
            ],
            **extra,
        },
    }


async def wait_running(kube: KubeClient, namespace: str, name: str) -> KubeObject:
    """The pod once its phase is Running (a watch on it, not a polling loop)."""
    current = await kube.get(PODS, name, namespace=namespace)
    while (current.get("status") or {}).get("phase") != "Running":
        async with kube.watch(
            PODS,
            namespace=namespace,
            field_selector=f"metadata.name={name}",
            resource_version=current["metadata"]["resourceVersion"],
            timeout_seconds=60,
        ) as events:
            async for event in events:
                if event["type"] == "BOOKMARK":
                    continue
                current = event["object"]
                if (current.get("status") or {}).get("phase") == "Running":
                    return current
                assert (current.get("status") or {}).get("phase") == "Pending", current
    return current
