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


#: Culling a kernel nobody is connected to after this long idle (seconds): two hours,
#: the same as a pod's lease, so a kernel left behind goes whether or not its daemon runs.
DEFAULT_CULL_DISCONNECTED = 2 * 60 * 60.0


@dataclass(frozen=True, kw_only=True)
class CullSettings:
    """When the daemon shuts down idle kernels (0 turns a rule off)."""

    #: Idle kernels with at least one client connected (a notebook open): off by default.
    idle_timeout: float = 0.0
    #: Idle kernels with no client connected.
    disconnected_timeout: float = DEFAULT_CULL_DISCONNECTED
    #: The longest the culler sleeps before it looks again (it wakes earlier when a
    #: kernel is due).
    interval: float = 60.0

    def timeout_for(self, *, connections: int) -> float:
        """The timeout that applies to a kernel with ``connections`` clients (0: none)."""
        return self.idle_timeout if connections else self.disconnected_timeout
