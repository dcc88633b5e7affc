"""The daemon's connection to one kernel: noticing drops, and what they may have cost clients.

A kernel in a pod is reached through a tunnel, and tunnels drop: an API
server restarts, a load balancer times out an idle stream, a laptop changes
network. ZeroMQ and the tunnel reconnect by themselves, and clients'
websockets stay open throughout; what a drop can cost is what the kernel
sent meanwhile, because a kernel's sockets drop messages for a peer that is
not connected:

- **output** (iopub) published during the gap is gone, unless the pod keeps
  it (below). If a cell was running, its clients are told, on its stderr,
  how long the connection was interrupted, so that a gap in its output is
  never silent;
- a **reply** sent during the gap is gone, and its client would wait for it
  for ever (a notebook cell stuck at ``[*]``). So once the link is back,
  the daemon sends a ``kernel_info_request`` on shell: a kernel handles
  shell requests one at a time, in order, so by the time it answers, every
  request sent before has been answered, and one whose reply has not
  arrived was lost (or never reached the kernel). Each such request gets an
  error reply (``ename: ConnectionLost``) and the ``idle`` status its client
  waits for, from the daemon;
- a **request sent as the link comes back** would run before the iopub
  subscription reaches the kernel, losing its output: clients' shell
  requests are held from the drop until iopub is seen flowing again.

Output is kept on the far side of the tunnel when the image allows: the
kernel wrapper starts an output keeper beside the kernel (it needs Python
and pyzmq in the image, which every image running ipykernel has but not
every R image) that numbers iopub messages and replays those a reconnecting
daemon missed (:mod:`jkctl.kernels.keeper`). With a keeper, clients are
told of lost output only if some really was lost (its ring overflowed),
once the keeper has replayed what it had. Replies are not kept: a reply
lost in a drop is answered as below, with or without a keeper.

One task per kernel at most (the recovery after a reconnect), owned here:
a new drop cancels it, and :meth:`KernelLink.aclose` cancels and awaits it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from jkctl.errors import KernelError

if TYPE_CHECKING:
    from jkctl.kernels.kernel import Kernel

logger = logging.getLogger(__name__)

LOST_REPLY = (
    "[jkctl] The connection to the kernel dropped while this request was in flight and its "
    "reply was lost; the kernel may have run it, and its output in that time is lost too.\n"
)


class KernelLink:
    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        #: Since when the link is down (epoch seconds); None while it is up.
        self.down_since: float | None = None
        #: Drops noticed, and how long the last one lasted (seconds).
        self.drops = 0
        self.last_gap: float | None = None
        self._busy_at_drop: bytes | None = None
        #: With an output keeper: the relay's count of lost output at the drop, until
        #: the keeper's replay settles what the drop cost.
        self._lost_before: int | None = None
        self._recovery: asyncio.Task[None] | None = None

    def changed(self, up: bool) -> None:
        """The relay's link to the kernel came up or went down."""
        kernel = self._kernel
        if not kernel.serving:
            # Starting, restarting or stopping: a drop then is the kernel's own doing.
            self.down_since = None
            self._lost_before = None
            return
        now = time.time()
        if not up:
            if self.down_since is None:
                self.down_since = now
                self.drops += 1
                self._busy_at_drop = kernel.busy_parent
                if kernel.relay.keeps_output and self._lost_before is None:
                    self._lost_before = kernel.relay.output_lost
                self._cancel_recovery()
                kernel.relay.hold()
                logger.warning(
                    "kernel %s%s: the connection to the kernel dropped; reconnecting",
                    kernel.id,
                    _pod(kernel),
                )
            return
        if self.down_since is None:
            return
        gap, self.down_since = now - self.down_since, None
        self.last_gap = gap
        logger.info(
            "kernel %s%s: the connection to the kernel is back after %.0f ms",
            kernel.id,
            _pod(kernel),
            gap * 1000,
        )
        parent = self._busy_at_drop or kernel.busy_parent
        if parent is not None and self._lost_before is None:
            kernel.relay.notice(_lost_output(gap), parent=parent)
        self._cancel_recovery()
        self._recovery = asyncio.create_task(
            self._recover(parent, gap), name=f"kernel-{kernel.id}-recover"
        )

    async def _recover(self, parent: bytes | None, gap: float) -> None:
        """Answer, for the kernel, the requests whose replies the drop lost."""
        kernel = self._kernel
        lost = kernel.relay.find_lost_requests("shell")
        try:
            await kernel.relay.confirm_iopub()
            self._settle_output(parent, gap)
            kernel.relay.release()
            if not lost:
                return
            # Answered only after every shell request sent before it (however long a
            # running cell takes): no timeout, a new drop cancels this.
            await kernel.relay.request("shell", "kernel_info_request")
        except KernelError:
            return  # the sockets closed: the kernel is restarting or gone
        answered = kernel.relay.answer_lost(lost, LOST_REPLY)
        kernel.settled()
        if answered:
            logger.warning(
                "kernel %s%s: %d request(s) lost their reply in the drop; their clients were "
                "told so",
                kernel.id,
                _pod(kernel),
                answered,
            )

    def _settle_output(self, parent: bytes | None, gap: float) -> None:
        """With a keeper, after its replay: tell clients only of output really lost."""
        if self._lost_before is None:
            return
        relay = self._kernel.relay
        lost = max(0, relay.output_lost - self._lost_before)
        self._lost_before = None
        if not relay.keeper_synced:
            logger.warning("kernel %s: its output keeper did not resume", self._kernel.id)
        elif not lost:
            return
        if parent is not None:
            relay.notice(_lost_output(gap, lost), parent=parent)

    def _cancel_recovery(self) -> None:
        if self._recovery is not None and not self._recovery.done():
            self._recovery.cancel()

    async def aclose(self) -> None:
        recovery, self._recovery = self._recovery, None
        if recovery is not None and recovery is not asyncio.current_task():
            recovery.cancel()
            await asyncio.wait([recovery])


def _lost_output(gap: float, messages: int = 0) -> str:
    what = (
        f"{messages} output message{'s' if messages != 1 else ''} the kernel sent in that "
        f"time {'were' if messages != 1 else 'was'} lost (more than the pod could keep)"
        if messages
        else "output the kernel sent in that time is lost"
    )
    return (
        f"[jkctl] The connection to the kernel was interrupted for {gap:.1f} s while "
        f"this ran; {what}.\n"
    )


def _pod(kernel: Kernel) -> str:
    pod = kernel.handle.placement().pod
    return f" (pod {pod})" if pod else ""
