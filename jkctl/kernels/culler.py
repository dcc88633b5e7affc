"""Idle culling: the daemon shuts down kernels nobody has used for a while.

A GPU kernel left idle over a weekend costs the team its GPU. Two rules
(:class:`~jkctl.kernels.settings.CullSettings`), each off when 0:

- ``disconnected_timeout`` (default two hours): an idle kernel with no
  client connected (no notebook open on it) for that long is shut down;
- ``idle_timeout`` (default off): the same for kernels a client is
  connected to.

Only kernels in state ``idle`` are culled: a busy kernel (a long training
cell that prints nothing) is never "idle", and neither is one starting or
restarting. Idle time is measured from the kernel's last activity as
Jupyter Server counts it (requests and output, not heartbeats or
kernel_info); a kernel re-attached after a daemon restart keeps the
activity recorded on its pod.

The culler is one task the daemon owns. It sleeps until the first kernel
could be due, but never longer than ``interval``: a kernel's timeout can
shorten while it sleeps (its last client leaves), and no event says so.
Each cull is logged with the kernel id, its pod and why.

What this module does not do: decide *how* a kernel stops (``Kernel.shutdown``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from jkctl.durations import say_duration
from jkctl.errors import JkctlError
from jkctl.kernels.kernel import Kernel, KernelState
from jkctl.kernels.settings import CullSettings

logger = logging.getLogger(__name__)


def cull_deadline(kernel: Kernel, settings: CullSettings) -> float | None:
    """When ``kernel`` is due for culling if nothing changes (epoch seconds); None: never."""
    if kernel.state is not KernelState.IDLE:
        return None
    timeout = settings.timeout_for(connections=kernel.connections)
    return kernel.last_activity + timeout if timeout > 0 else None


class Culler:
    def __init__(
        self,
        kernels: Callable[[], Iterable[Kernel]],
        settings: CullSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._kernels = kernels
        self._settings = settings
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self._settings.idle_timeout > 0 or self._settings.disconnected_timeout > 0

    async def run(self) -> None:
        """Cull due kernels until cancelled."""
        if not self.enabled:
            return
        while True:
            wake = await self.cull_due()
            now = self._clock()
            delay = self._settings.interval if wake is None else wake - now
            await asyncio.sleep(min(max(delay, 0.05), self._settings.interval))

    async def cull_due(self) -> float | None:
        """Shut down every kernel that is due now; return when the next one could be."""
        now = self._clock()
        due: list[Kernel] = []
        upcoming: list[float] = []
        for kernel in self._kernels():
            deadline = cull_deadline(kernel, self._settings)
            if deadline is None:
                continue
            if deadline <= now:
                due.append(kernel)
            else:
                upcoming.append(deadline)
        if due:
            await asyncio.gather(*(self._cull(kernel, now) for kernel in due))
        return min(upcoming, default=None)

    async def _cull(self, kernel: Kernel, now: float) -> None:
        connections = kernel.connections
        timeout = self._settings.timeout_for(connections=connections)
        setting = "cull_idle_timeout" if connections else "cull_disconnected_timeout"
        clients = (
            f"{connections} client{'s' if connections != 1 else ''} connected"
            if connections
            else "no client connected"
        )
        pod = kernel.handle.placement().pod
        logger.warning(
            "kernel %s%s: culling it: idle for %s with %s (%s is %s)",
            kernel.id,
            f" (pod {pod})" if pod else "",
            say_duration(now - kernel.last_activity),
            clients,
            setting,
            say_duration(timeout),
        )
        try:
            await kernel.shutdown()
        except JkctlError as error:
            logger.error("kernel %s: culling it failed: %s", kernel.id, error)
