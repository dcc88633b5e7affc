"""How the kernel manager treats kernels: timeouts, the per-client output budget, the warm pool.

Kept apart from the kernel machinery so the CLI can build settings without
importing ZeroMQ or jupyter_client.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class KernelSettings:
    #: Seconds from launch until the kernel must answer kernel_info.
    start_timeout: float = 120.0
    #: Seconds the daemon waits for a reply to its own requests (interrupt, shutdown).
    request_timeout: float = 5.0
    #: Seconds an in-place restart may take before the kernel is replaced by force.
    restart_timeout: float = 30.0
    #: How far (bytes) a websocket client may fall behind before its output is shed.
    client_queue_limit: int = 64 * 1024 * 1024
    #: Kernels kept started ahead of time, per kernelspec: ((name, size), ...); none by default.
    warm_pool: tuple[tuple[str, int], ...] = ()
