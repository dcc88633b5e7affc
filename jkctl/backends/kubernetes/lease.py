"""Keeping this daemon's kernel pods alive: one lease renewal per pod per period.

Every kernel pod carries ``jkctl.io/lease-seconds`` and
``jkctl.io/lease-renewed``; its wrapper ends the pod when the second has not
changed for the first, on the pod's own clock. :class:`LeaseRenewer` patches
``jkctl.io/lease-renewed`` on each pod the daemon looks after, every
``interval`` (a quarter of the lease, capped), all pods concurrently. The
same patch records the kernel's last activity (``jkctl.io/last-activity``),
so that it survives the daemon: idle culling and `jkctl kernels list` read it
after a restart.

A renewal that fails is logged and retried, sooner than the next period
(after 1 s, doubling up to the period), and nothing else happens: during an
API outage kernels keep running on the lease they have, and no kernel is
declared dead for want of a renewal. A pod that no longer exists is skipped
(the pod watch reports it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from jkctl.errors import JkctlError, KubeNotFound
from jkctl.kube.client import KubeClient
from jkctl.kube.resources import PODS

from .manifests import LAST_ACTIVITY, LEASE_RENEWED, lease_token, timestamp

logger = logging.getLogger(__name__)

#: (kernel id, pod name, the kernel's last activity in epoch seconds or None).
Renewal = tuple[str, str, float | None]

_RETRY_FIRST = 1.0
#: Renewals in flight at once (a daemon with hundreds of kernels does not burst).
_CONCURRENCY = 16


class LeaseRenewer:
    def __init__(
        self,
        kube: KubeClient,
        *,
        namespace: str,
        interval: float,
        lease_seconds: int,
        pods: Callable[[], Iterable[Renewal]],
    ) -> None:
        """``pods()`` lists (kernel id, pod name, last activity or None) of the kernels to
        keep alive, when asked."""
        self._kube = kube
        self._namespace = namespace
        self._interval = interval
        self._lease_seconds = lease_seconds
        self._pods = pods
        self._limit = asyncio.Semaphore(_CONCURRENCY)

    async def run(self) -> None:
        """Renew every period until cancelled."""
        retry = _RETRY_FIRST
        while True:
            failed = await self.renew(list(self._pods()))
            if failed:
                delay = min(retry, self._interval)
                retry *= 2
                logger.warning(
                    "renewing the lease of %d kernel pod(s) failed; trying again in %.0f s "
                    "(they keep running for up to %d s without a renewal)",
                    failed,
                    delay,
                    self._lease_seconds,
                )
            else:
                delay, retry = self._interval, _RETRY_FIRST
            await asyncio.sleep(delay)

    async def renew(self, pods: list[Renewal]) -> int:
        """One renewal of each pod; how many failed (a pod that is gone does not count)."""
        if not pods:
            return 0
        token = lease_token()
        results = await asyncio.gather(
            *(self._renew_one(kid, pod, token, activity) for kid, pod, activity in pods)
        )
        return results.count(False)

    async def _renew_one(
        self, kernel_id: str, pod: str, token: str, activity: float | None
    ) -> bool:
        annotations = {LEASE_RENEWED: token}
        if activity is not None:
            annotations[LAST_ACTIVITY] = timestamp(activity)
        patch = {"metadata": {"annotations": annotations}}
        async with self._limit:
            try:
                await self._kube.patch(PODS, pod, patch, namespace=self._namespace)
            except KubeNotFound:
                return True
            except JkctlError as error:
                logger.debug("kernel %s (pod %s): lease renewal failed: %s", kernel_id, pod, error)
                return False
        return True
