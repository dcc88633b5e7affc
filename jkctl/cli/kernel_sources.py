"""Where `jkctl kernels` gets its answers: the running daemon, the cluster itself, or
nowhere (no daemon, no kubeconfig). One interface (:class:`Source`), three
answers; :func:`choose_source` picks the one that applies, as the
:mod:`jkctl.cli.kernels` docstring describes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import quote, urlencode

from jkctl import paths
from jkctl.errors import DaemonNotRunning

if TYPE_CHECKING:
    from jkctl.daemon.client import DaemonClient
    from jkctl.daemon.state import DaemonRecord
    from jkctl.kernels.cluster import ClusterKernels

T = TypeVar("T")


class Source(Protocol):
    """Where `jkctl kernels` gets its answers: the daemon, or the cluster itself."""

    @property
    def origin(self) -> str:
        """Where the answers come from, in words (said on stderr)."""

    def listing(self, *, all_namespaces: bool) -> dict[str, Any]: ...

    def describe(self, prefix: str, *, all_namespaces: bool, log_lines: int) -> dict[str, Any]: ...

    def logs(
        self,
        prefix: str,
        *,
        all_namespaces: bool,
        follow: bool,
        tail: int | None,
        write: Callable[[str], None],
    ) -> None: ...

    def stop(self, kernel_ids: list[str], *, all_namespaces: bool) -> dict[str, Any]: ...


def choose_source(kubeconfig: Path | None, context: str | None, namespace: str | None) -> Source:
    from jkctl.daemon.state import StateFiles, read_daemon_id, read_token, running_daemon

    files = StateFiles(dir=paths.state_dir())
    record = running_daemon(files)
    asked = any(value is not None for value in (kubeconfig, context, namespace))
    if record is not None and not asked:
        return DaemonSource(record, read_token(files))
    from jkctl.daemon.settings import resolve_settings

    settings = resolve_settings(
        flags={
            "kubeconfig": str(kubeconfig) if kubeconfig else None,
            "context": context,
            "namespace": namespace,
        }
    )
    target = (settings.backend, settings.context, settings.namespace)
    if record is not None and (record.backend, record.context, record.namespace) == target:
        return DaemonSource(record, read_token(files))
    if settings.backend == "local":
        return NoKernels()
    return ClusterSource(
        kubeconfig=settings.kubeconfig,
        context=settings.context,
        namespace=settings.namespace,
        daemon_id=read_daemon_id(files),
    )


class DaemonSource:
    def __init__(self, record: DaemonRecord, token: str) -> None:
        from jkctl.daemon.client import DaemonClient

        self._client: DaemonClient = DaemonClient(url=record.url, token=token, timeout=30)
        where = (
            f"context {record.context}, namespace {record.namespace}"
            if record.backend == "kubernetes"
            else "kernels run on this machine, as processes: no pods"
        )
        self.origin = f"from the daemon at {record.url} ({record.backend} backend; {where})"

    def listing(self, *, all_namespaces: bool) -> dict[str, Any]:
        found: dict[str, Any] = self._client.get(
            "/jkctl/v1/kernels" + _query(all_namespaces=all_namespaces)
        )
        return found

    def describe(self, prefix: str, *, all_namespaces: bool, log_lines: int) -> dict[str, Any]:
        found: dict[str, Any] = self._client.get(
            f"/jkctl/v1/kernels/{quote(prefix, safe='')}"
            + _query(all_namespaces=all_namespaces, log_lines=log_lines)
        )
        return found

    def logs(
        self,
        prefix: str,
        *,
        all_namespaces: bool,
        follow: bool,
        tail: int | None,
        write: Callable[[str], None],
    ) -> None:
        path = f"/jkctl/v1/kernels/{quote(prefix, safe='')}/log" + _query(
            all_namespaces=all_namespaces, follow=follow, tail=tail
        )
        for line in self._client.lines(path, endless=follow):
            write(line)

    def stop(self, kernel_ids: list[str], *, all_namespaces: bool) -> dict[str, Any]:
        found: dict[str, Any] = self._client.post(
            "/jkctl/v1/kernels/stop" + _query(all_namespaces=all_namespaces), {"ids": kernel_ids}
        )
        return found


@dataclass
class ClusterSource:
    kubeconfig: str | None
    context: str | None
    namespace: str | None
    daemon_id: str | None

    @property
    def origin(self) -> str:
        mine = (
            "the pods of this state folder's daemon"
            if self.daemon_id
            else "no daemon has run from this state folder, so no pods are yours"
        )
        return (
            f"no daemon is running; read from the cluster (context {self.context}, namespace "
            f"{self.namespace}; {mine}); connections and idle/busy are known only to a daemon"
        )

    def listing(self, *, all_namespaces: bool) -> dict[str, Any]:
        if self.daemon_id is None:
            return _empty("cluster", "kubernetes", self.context, self.namespace)
        return self._run(lambda kernels: kernels.listing(all_namespaces=all_namespaces))

    def describe(self, prefix: str, *, all_namespaces: bool, log_lines: int) -> dict[str, Any]:
        async def describe(kernels: ClusterKernels) -> dict[str, Any]:
            found = await kernels.describe(
                prefix, all_namespaces=all_namespaces, log_lines=log_lines
            )
            return dict(found)

        return self._run(describe)

    def logs(
        self,
        prefix: str,
        *,
        all_namespaces: bool,
        follow: bool,
        tail: int | None,
        write: Callable[[str], None],
    ) -> None:
        async def read(kernels: ClusterKernels) -> None:
            pod = await kernels.find(prefix, all_namespaces=all_namespaces)
            async with kernels.log(pod, follow=follow, tail=tail) as lines:
                async for line in lines:
                    write(line)

        self._run(read)

    def stop(self, kernel_ids: list[str], *, all_namespaces: bool) -> dict[str, Any]:
        return self._run(lambda kernels: kernels.stop(kernel_ids, all_namespaces=all_namespaces))

    def _run(self, work: Callable[[ClusterKernels], Awaitable[T]]) -> T:
        from jkctl.kernels.cluster import ClusterKernels
        from jkctl.kube.login import kubeconfig_setting_login

        login = kubeconfig_setting_login(self.kubeconfig, context=self.context)

        async def main() -> T:
            async with ClusterKernels(
                login, namespace=self.namespace, daemon_id=self.daemon_id
            ) as kernels:
                return await work(kernels)

        return asyncio.run(main())


class NoKernels:
    """No daemon and no kubeconfig: kernels would run inside a daemon here, and none does."""

    origin = (
        "no daemon is running and no kubeconfig is found: kernels run inside the daemon on "
        "this machine, so none are running"
    )

    def listing(self, *, all_namespaces: bool) -> dict[str, Any]:
        del all_namespaces
        return _empty("none", "local", None, None)

    def describe(self, prefix: str, *, all_namespaces: bool, log_lines: int) -> dict[str, Any]:
        del prefix, all_namespaces, log_lines
        raise self._none()

    def logs(
        self,
        prefix: str,
        *,
        all_namespaces: bool,
        follow: bool,
        tail: int | None,
        write: Callable[[str], None],
    ) -> None:
        del prefix, all_namespaces, follow, tail, write
        raise self._none()

    def stop(self, kernel_ids: list[str], *, all_namespaces: bool) -> dict[str, Any]:
        del kernel_ids, all_namespaces
        raise self._none()

    @staticmethod
    def _none() -> DaemonNotRunning:
        return DaemonNotRunning(
            "No jkctl daemon is running, so no kernel is.",
            hint="Run `jkctl connect` to start one (or point --kubeconfig at a cluster).",
        )


def _empty(source: str, backend: str, context: str | None, namespace: str | None) -> dict[str, Any]:
    return {
        "source": source,
        "backend": backend,
        "context": context,
        "namespace": namespace,
        "kernels": [],
        "team": None,
        "notes": [],
    }


def _query(**params: object) -> str:
    kept: Iterator[tuple[str, str]] = (
        (key, "true" if value is True else str(value))
        for key, value in params.items()
        if value not in (None, False)
    )
    encoded = urlencode(list(kept))
    return f"?{encoded}" if encoded else ""
