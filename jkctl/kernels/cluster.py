"""Kernels read straight from the cluster, for `jkctl kernels` when no daemon runs.

Everything a kernel is lives in the cluster: its pod's labels (kernel id,
kernelspec, owner, the daemon that made it), its annotations (lease, last
activity) and its Secret. So without a daemon, `jkctl kernels` logs in with
the user's kubeconfig and reads the pods by label (:class:`ClusterKernels`),
giving the same rows, details and logs the daemon gives (minus what only a
daemon knows: connections, idle or busy). ``daemon_id`` narrows the pods to
the ones a daemon of this state folder made (the ones `jkctl connect` would
re-attach); None takes every jkctl kernel pod the user can see.

Stopping a kernel here deletes its pod and Secret: there is no daemon to
ask the kernel politely, and a pod whose lease lapsed has already ended.

What this module does not do: talk to a daemon (``jkctl.daemon.client``), or
print (the CLI does).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Self

from jkctl.backends.kubernetes import inventory
from jkctl.backends.kubernetes.manifests import KERNEL_ID
from jkctl.errors import JkctlError, KubeForbidden
from jkctl.kernels.ids import resolve_kernel_id
from jkctl.kernels.listing import (
    KernelDetailsModel,
    KernelRow,
    TeamModel,
    details_model,
    placement_row,
    stop_report,
    team_model,
)
from jkctl.kube.client import KubeClient
from jkctl.kube.login import KubeconfigLogin
from jkctl.kube.podwatch import PodState
from jkctl.kube.quota import team_usage


class ClusterKernels:
    """``async with ClusterKernels(login, namespace=..., daemon_id=...) as kernels:``."""

    def __init__(
        self, login: KubeconfigLogin, *, namespace: str | None, daemon_id: str | None
    ) -> None:
        self._login = login
        self._wanted_namespace = namespace
        self._daemon_id = daemon_id
        self._kube: KubeClient | None = None

    async def __aenter__(self) -> Self:
        self._kube = await KubeClient(self._login).__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._kube is not None:
            await self._kube.__aexit__(*exc_info)

    @property
    def kube(self) -> KubeClient:
        if self._kube is None:
            raise RuntimeError("ClusterKernels is used outside `async with`")
        return self._kube

    @property
    def context(self) -> str:
        return self.kube.credentials.context

    @property
    def namespace(self) -> str:
        return self._wanted_namespace or self.kube.namespace

    async def pods(self, *, all_namespaces: bool) -> list[PodState]:
        return await inventory.find_kernel_pods(
            self.kube,
            namespace=self.namespace,
            all_namespaces=all_namespaces,
            daemon_id=self._daemon_id,
        )

    async def rows(self, *, all_namespaces: bool) -> list[KernelRow]:
        return [
            placement_row(inventory.placement_of(pod))
            for pod in await self.pods(all_namespaces=all_namespaces)
        ]

    async def team(self) -> TeamModel | None:
        """The namespace's quota usage; None without a quota, or when it may not be read."""
        try:
            usage = await team_usage(self.kube, namespace=self.namespace)
        except KubeForbidden:
            return None
        return team_model(usage) if usage.lines else None

    async def listing(self, *, all_namespaces: bool) -> dict[str, Any]:
        """The same document the daemon's ``GET /jkctl/v1/kernels`` answers."""
        notes: list[str] = []
        rows = await self.rows(all_namespaces=all_namespaces)
        team: TeamModel | None = None
        try:
            team = await self.team()
        except JkctlError as error:
            notes.append(f"quota: {error.message}")
        return {
            "source": "cluster",
            "backend": "kubernetes",
            "context": self.context,
            "namespace": None if all_namespaces else self.namespace,
            "kernels": rows,
            "team": team,
            "notes": notes,
        }

    async def find(self, prefix: str, *, all_namespaces: bool) -> PodState:
        pods = await self.pods(all_namespaces=all_namespaces)
        by_id = {pod.labels.get(KERNEL_ID, pod.name): pod for pod in pods}
        where = "in all namespaces" if all_namespaces else f"in namespace {self.namespace}"
        return by_id[resolve_kernel_id(prefix, by_id, where=where)]

    async def describe(
        self, prefix: str, *, all_namespaces: bool, log_lines: int
    ) -> KernelDetailsModel:
        pod = await self.find(prefix, all_namespaces=all_namespaces)
        details = await inventory.pod_details(self.kube, pod, log_lines=log_lines)
        return details_model(placement_row(details.placement), details)

    def log(
        self, pod: PodState, *, follow: bool, tail: int | None
    ) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        return inventory.pod_log(self.kube, pod, follow=follow, tail=tail)

    async def stop(self, kernel_ids: list[str], *, all_namespaces: bool) -> dict[str, Any]:
        """Delete the pods and Secrets of these kernels (full ids or unique prefixes)."""
        pods = [await self.find(prefix, all_namespaces=all_namespaces) for prefix in kernel_ids]
        results = await asyncio.gather(
            *(inventory.delete_kernel_pod(self.kube, pod) for pod in pods), return_exceptions=True
        )
        return dict(stop_report([pod.labels.get(KERNEL_ID, pod.name) for pod in pods], results))
