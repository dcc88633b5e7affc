"""The warm pool: per kernelspec, kernels started ahead of time for the next launch request.

Starting a kernel on Kubernetes takes the better part of a second at best
(the pod is created, scheduled, started, the kernel boots and answers); a
pool hit takes as long as handing over a kernel that already answered. For
each kernelspec given a size (``warm_pool``, default none), the pool keeps
that many kernels started and idle; :meth:`WarmPool.take` hands one over and
the pool starts its replacement in the background.

A pooled kernel is a real kernel: a pod with its lease renewed like any
other, connected, and having answered ``kernel_info``. It is not in the
kernel manager's table until taken, so ``GET /api/kernels`` does not list
it and no client can reach it: its id is known to no one. What a user gets
from the pool is indistinguishable from a fresh start, because it *is* one
that nobody has used: a kernel goes from the pool to exactly one launch
request and never back (a kernel that a client had is shut down as usual,
never pooled again). Only launch requests with no ``KERNEL_*`` variables are
served from the pool: every such variable changes the pod (resources,
image, user, working directory) or at least the kernel's environment, which a
kernel started ahead of time cannot have.

The pool owns one task per kernelspec that keeps it full: it starts what is
missing, all at once, waits for the next change otherwise, and backs off
(1 s doubling to a minute) after a failed start so that a kernelspec that
cannot start (an image that does not pull) does not loop. A pooled kernel
that dies leaves the pool and is replaced. On :meth:`aclose` every pooled
kernel is shut down, also on backends whose kernels outlive the daemon: no
one will ever ask for them.

What this module does not do: launch kernels itself (the manager gives it
a ``start`` function) or decide which requests may be served (the manager).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from jkctl.errors import JkctlError
from jkctl.kernels.kernel import Kernel, KernelState

logger = logging.getLogger(__name__)

_RETRY_FIRST = 1.0
_RETRY_MAX = 60.0


@dataclass(frozen=True, kw_only=True)
class PoolStatus:
    """One kernelspec's pool: how many kernels it keeps, has ready, and is starting."""

    size: int
    ready: int
    starting: int


class WarmPool:
    def __init__(
        self,
        *,
        sizes: Mapping[str, int],
        start: Callable[[str], Awaitable[Kernel]],
        retry_first: float = _RETRY_FIRST,
    ) -> None:
        """``start(kernelspec)`` starts a kernel outside the manager's table."""
        self._sizes = {name: size for name, size in sizes.items() if size > 0}
        self._start = start
        self._retry_first = retry_first
        self._ready: dict[str, collections.deque[Kernel]] = {
            name: collections.deque() for name in self._sizes
        }
        self._starting = dict.fromkeys(self._sizes, 0)
        self._wanted = {name: asyncio.Event() for name in self._sizes}
        self._change = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def kernelspecs(self) -> list[str]:
        return list(self._sizes)

    def open(self) -> None:
        """Start filling the pools (a no-op when no kernelspec has a pool)."""
        if self._sizes and self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="warm-pool")

    def take(self, kernelspec: str) -> Kernel | None:
        """A ready kernel of ``kernelspec``, now the caller's; None if there is none."""
        ready = self._ready.get(kernelspec)
        while ready:
            kernel = ready.popleft()
            self._changed(kernelspec)
            if kernel.state is KernelState.IDLE:
                return kernel
        return None

    async def release_one(self, *, keep: str | None = None) -> bool:
        """Shut down one ready pooled kernel (of another kernelspec than ``keep`` if there is
        one) to free what it holds of the team's quota for a user's kernel. Its place is not
        refilled now: the next change refills it, when the quota allows. False if the pool
        held no ready kernel."""
        names = sorted(self._ready, key=lambda name: name == keep)
        for name in names:
            if self._ready[name]:
                kernel = self._ready[name].pop()
                logger.info(
                    "kernel %s: stopped from the warm pool of %s to make room in the quota",
                    kernel.id,
                    name,
                )
                try:
                    await kernel.shutdown(now=True)
                except JkctlError as error:
                    logger.warning("kernel %s: stopping it failed: %s", kernel.id, error)
                return True
        return False

    def forget(self, kernel: Kernel) -> None:
        """A kernel is gone (died, or shut down): if it was pooled, it leaves the pool."""
        ready = self._ready.get(kernel.name)
        if ready is not None and kernel in ready:
            ready.remove(kernel)
            logger.warning(
                "kernel %s: left the warm pool of %s: %s",
                kernel.id,
                kernel.name,
                kernel.reason or "it stopped",
            )
            self._changed(kernel.name)

    def status(self) -> dict[str, PoolStatus]:
        return {
            name: PoolStatus(size=size, ready=len(self._ready[name]), starting=self._starting[name])
            for name, size in self._sizes.items()
        }

    @property
    def full(self) -> bool:
        return all(len(self._ready[name]) >= size for name, size in self._sizes.items())

    async def wait_full(self) -> None:
        """Until every pool has all its kernels ready (the caller sets the time it allows)."""
        while not self.full:
            await self._change.wait()

    async def aclose(self) -> None:
        """Stop filling, and shut down every pooled kernel."""
        self._closed = True
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.wait([runner])
        pooled = [kernel for ready in self._ready.values() for kernel in ready]
        for ready in self._ready.values():
            ready.clear()
        results = await asyncio.gather(
            *(kernel.shutdown(now=True) for kernel in pooled), return_exceptions=True
        )
        for kernel, result in zip(pooled, results, strict=True):
            if isinstance(result, Exception):
                logger.error("kernel %s: stopping the pooled kernel failed: %s", kernel.id, result)

    # -- filling ------------------------------------------------------------------

    def _changed(self, kernelspec: str) -> None:
        self._wanted[kernelspec].set()
        self._change.set()
        self._change = asyncio.Event()

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for name in self._sizes:
                group.create_task(self._fill(name), name=f"warm-pool-{name}")

    async def _fill(self, kernelspec: str) -> None:
        size, ready, wanted = (
            self._sizes[kernelspec],
            self._ready[kernelspec],
            self._wanted[kernelspec],
        )
        delay = self._retry_first
        while True:
            missing = size - len(ready) - self._starting[kernelspec]
            if missing <= 0:
                wanted.clear()
                await wanted.wait()
                continue
            self._starting[kernelspec] += missing
            try:
                results = await asyncio.gather(
                    *(self._start(kernelspec) for _ in range(missing)), return_exceptions=True
                )
            finally:
                self._starting[kernelspec] -= missing
            failures: list[BaseException] = []
            for result in results:
                if isinstance(result, Kernel):
                    ready.append(result)
                    logger.info("kernel %s: ready in the warm pool of %s", result.id, kernelspec)
                else:
                    failures.append(result)
            self._changed(kernelspec)
            if not failures:
                delay = self._retry_first
                continue
            error = failures[0]
            if not isinstance(error, Exception):
                raise error
            logger.log(
                logging.WARNING if isinstance(error, JkctlError) else logging.ERROR,
                "warm pool of %s: %d of %d kernel starts failed (%s); trying again in %.0f s",
                kernelspec,
                len(failures),
                missing,
                error,
                delay,
                exc_info=not isinstance(error, JkctlError),
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)
