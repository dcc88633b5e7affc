"""What the rest of kubesim needs from the kubelet, as typing Protocols.

The API server serves `pods/log` and `pods/portforward` by calling the
kubelet (`PodStreams`); the cluster process runs it and passes fault
commands to it (`KubeletLike`). `tests/kubesim/kubelet.py` implements both;
tests use small fakes.

Errors: `open_port` may raise any exception when the pod's port cannot be
reached; the API server sends its text on the port's error channel, as the
real kubelet sends the CRI's error. `log_stream` raises
`tests.kubesim.status.ApiError` with the real 400/404 messages before its
first chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol


class PortForwardError(Exception):
    """A port cannot be forwarded; the message is what the error channel carries."""


class PodStreams(Protocol):
    async def open_port(
        self, namespace: str, pod: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]: ...

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
    ) -> AsyncIterator[bytes]: ...


class KubeletLike(PodStreams, Protocol):
    async def run(self) -> None: ...

    async def kill_container(
        self, namespace: str, pod: str, container: str | None = None
    ) -> None: ...

    async def lose_pod(self, namespace: str, pod: str) -> None: ...

    def set_node_ready(self, node: str, ready: bool) -> None: ...

    def fail_images(self, *images: str) -> None: ...

    def provide_image_paths(self, image: str, paths: dict[str, str]) -> None: ...

    def set_pull_delay(self, seconds: float) -> None: ...

    async def shutdown(self) -> None: ...
