"""One kernel's lifecycle: the state machine, activity tracking, and the operations on it.

States: ``starting`` -> ``idle``/``busy`` (from the kernel's iopub status,
tracked as Jupyter Server does) -> ``restarting`` -> ... -> ``dead``.

A kernel is started by asking the backend to launch it, opening the relay's
sockets, and probing with ``kernel_info_request`` until the kernel answers
*and* iopub is flowing (a SUB socket misses what is published before its
subscription arrives). Meanwhile the backend's lifecycle events are read: a
``Died`` during start fails the start at once with the backend's reason, no
timeout waited out; a ``Died`` later marks the kernel dead, tells its clients
(status ``dead``), closes their connections and removes the kernel.

A restart asks the kernel to shut down for a restart, lets the backend
relaunch it, and waits for a ``kernel_info_reply`` from a *new* kernel
process: every Jupyter kernel signs its messages with a session id of its
own, so a reply still carrying the old one comes from the process that is
on its way out (a pod's kernel is relaunched in place, and a tunnel can
reach the old process for a moment). A ``kernel_info_request`` unanswered
for half a second is sent again: one sent to that old process is lost with it.
An in-place restart that does not come back within ``restart_timeout``, or
that dies, is retried once as a *hard* restart (the backend replaces the
kernel by force).

Each kernel owns one task, its lifecycle watcher, started in :meth:`Kernel.start`
and cancelled and awaited when the kernel is closed; its link
(:mod:`jkctl.kernels.link`) owns the recovery after a dropped connection. Lifecycle operations
(restart, shutdown) are serialized by a lock.

What this module does not do: pick kernel ids, validate launch requests or
keep the table of kernels (:mod:`jkctl.kernels.manager`), or speak HTTP.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from typing import Any

import zmq

from jkctl.backends.base import Died, KernelHandle, Pending, Running
from jkctl.errors import KernelError, KernelStartError
from jkctl.kernels.link import KernelLink
from jkctl.kernels.messages import KernelMessage
from jkctl.kernels.relay import Relay
from jkctl.kernels.settings import KernelSettings
from jkctl.kernels.specs import KernelSpec
from jkctl.kernels.wire import StatusContent

logger = logging.getLogger(__name__)

#: Messages that do not count as activity, nor set busy/idle (Jupyter Server's list).
UNTRACKED_MESSAGE_TYPES = frozenset(
    {
        "comm_info_request",
        "comm_info_reply",
        "kernel_info_request",
        "kernel_info_reply",
        "shutdown_request",
        "shutdown_reply",
        "interrupt_request",
        "interrupt_reply",
        "debug_request",
        "debug_reply",
        "stream",
        "display_data",
        "update_display_data",
        "execute_input",
        "execute_result",
        "error",
        "status",
        "clear_output",
        "debug_event",
        "input_request",
        "input_reply",
    }
)
_IOPUB_GRACE = 1.0
#: How soon to ask again when the previous kernel process still answered.
_OLD_KERNEL_RETRY = 0.05
#: How long a kernel_info_request may go unanswered before it is sent again.
_KERNEL_INFO_RETRY = 0.5


class _RestartStalled(Exception):
    """An in-place restart did not come back in time, or its kernel died: replace it."""


class KernelState(enum.StrEnum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    RESTARTING = "restarting"
    DEAD = "dead"


class Kernel:
    def __init__(
        self,
        *,
        spec: KernelSpec,
        handle: KernelHandle,
        context: zmq.Context[zmq.Socket[bytes]],
        settings: KernelSettings,
        on_gone: Callable[[Kernel], None],
    ) -> None:
        self.id = handle.kernel_id
        self.spec = spec
        self.state = KernelState.STARTING
        #: Why the kernel is not ready (a backend's pending reason) or why it died.
        self.reason = ""
        # A kernel found again after a daemon restart keeps the activity recorded beside it.
        self.last_activity = handle.last_activity or time.time()
        #: The parent header (raw) of the request the kernel is busy with, if it is.
        self.busy_parent: bytes | None = None
        self._handle = handle
        handle.activity_source = lambda: self.last_activity
        self.link = KernelLink(self)
        self._settings = settings
        self._on_gone = on_gone
        self.relay = Relay(
            kernel_id=self.id,
            context=context,
            client_queue_limit=settings.client_queue_limit,
            on_iopub=self._track_iopub,
            on_client_message=self._track_client,
            on_link=self.link.changed,
        )
        self._incarnation = handle.incarnation
        #: The session id of the kernel process that answered last.
        self._kernel_session: str | None = None
        self._lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        #: Why the kernel died while starting, and what to do: (reason, hint).
        self._start_failure: asyncio.Future[tuple[str, str]] | None = None
        self._stopping = False
        self._gone = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def connections(self) -> int:
        return self.relay.client_count

    @property
    def link_down_since(self) -> float | None:
        """Since when (epoch seconds) the connection to the kernel is down; None: it is up."""
        return self.link.down_since

    @property
    def serving(self) -> bool:
        """Whether the kernel is up and in use (idle or busy), not starting, restarting
        or on its way out."""
        return (
            self.state in (KernelState.IDLE, KernelState.BUSY)
            and not self._stopping
            and not self._gone
        )

    def settled(self) -> None:
        """The kernel answered a request sent after everything else: it is not busy with
        any of those (its own ``idle`` may have been lost in a dropped connection)."""
        if self.state is KernelState.BUSY:
            self.state = KernelState.IDLE
            self.busy_parent = None

    @property
    def handle(self) -> KernelHandle:
        """The backend's side of the kernel (where it runs, its details and log)."""
        return self._handle

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Until the kernel answers; on failure everything it used is released."""
        started = time.monotonic()
        self._start_failure = asyncio.get_running_loop().create_future()
        self._watcher = asyncio.create_task(self._watch(), name=f"kernel-{self.id}-watch")
        try:
            self.relay.open(self._handle.connection)
            await self._wait_ready()
        except BaseException:
            self.state = KernelState.DEAD
            await self._close(terminate=True)
            raise
        self.state = KernelState.IDLE
        self.reason = ""
        logger.info(
            "kernel %s: %s ready in %.0f ms",
            self.id,
            self.name,
            (time.monotonic() - started) * 1000,
        )

    async def interrupt(self) -> None:
        self._check_alive()
        mode = self.spec.interrupt_mode if self._handle.can_signal else "message"
        if mode == "message":
            try:
                async with asyncio.timeout(self._settings.request_timeout):
                    await self.relay.request("control", "interrupt_request")
            except TimeoutError:
                raise KernelError(
                    f"Kernel {self.id} did not answer the interrupt request within "
                    f"{self._settings.request_timeout:.0f} seconds.",
                    hint="It may be stuck outside Python code; restart it if it stays busy.",
                ) from None
        else:
            await self._handle.interrupt()
        logger.info("kernel %s: interrupted (%s mode)", self.id, mode)

    async def restart(self) -> None:
        """A fresh kernel process under the same id; clients stay connected."""
        async with self._lock:
            self._check_alive()
            self.state = KernelState.RESTARTING
            self.relay.broadcast_status("restarting")
            previous = self._kernel_session
            await self._ask_to_stop(restart=True)
            try:
                try:
                    await self._relaunch(previous, hard=False)
                except _RestartStalled as stalled:
                    logger.warning(
                        "kernel %s: the in-place restart did not come back (%s); replacing it",
                        self.id,
                        stalled,
                    )
                    await self._relaunch(previous, hard=True)
            except BaseException as exc:
                reason = (
                    exc.message if isinstance(exc, KernelError) else "the restart was cancelled"
                )
                await self._die(reason)
                raise
            self.state = KernelState.IDLE
            self.reason = ""
            logger.info("kernel %s: restarted", self.id)

    async def _relaunch(self, previous: str | None, *, hard: bool) -> None:
        """Have the backend relaunch the kernel and wait for a new process to answer.

        A soft (in-place) relaunch that stalls or dies raises _RestartStalled.
        """
        # Facts about the old process (its exit) are stale from here on.
        self._incarnation = self._handle.incarnation + 1
        self._start_failure = asyncio.get_running_loop().create_future()
        connection = await self._handle.restart(hard=hard)
        self.relay.open(connection)
        if hard:
            await self._wait_ready(not_session=previous)
            return
        try:
            async with asyncio.timeout(self._settings.restart_timeout):
                await self._wait_ready(not_session=previous, stall=True)
        except TimeoutError:
            raise _RestartStalled(
                f"no new kernel answered within {self._settings.restart_timeout:.0f} seconds"
            ) from None

    async def shutdown(self, *, now: bool = False) -> None:
        """Stop the kernel (politely unless ``now``) and release everything."""
        async with self._lock:
            if self._gone:
                return
            self._stopping = True
            if not now and self.state is not KernelState.STARTING:
                await self._ask_to_stop(restart=False)
            self.state = KernelState.DEAD
            # Nothing the kernel still sends may reach clients after "dead".
            self.relay.close_sockets()
            self.relay.broadcast_status("dead")
            await self._close(terminate=True)
            logger.info("kernel %s: shut down", self.id)

    async def detach(self) -> None:
        """Leave the kernel running for a later daemon (backends that allow it)."""
        async with self._lock:
            if not self._gone:
                self._stopping = True
                await self._close(terminate=False)

    def _check_alive(self) -> None:
        if self._gone or self.state is KernelState.DEAD:
            raise KernelError(
                f"Kernel {self.id} is dead.",
                hint="Start a new kernel."
                + (f" It died because: {self.reason}" if self.reason else ""),
            )

    async def _ask_to_stop(self, *, restart: bool) -> None:
        try:
            async with asyncio.timeout(self._settings.request_timeout):
                await self.relay.request("control", "shutdown_request", {"restart": restart})
        except (TimeoutError, KernelError):
            logger.info("kernel %s: no shutdown_reply; stopping it anyway", self.id)

    async def _wait_ready(
        self,
        *,
        not_session: str | None = None,
        stall: bool = False,
    ) -> None:
        """Until kernel_info is answered (by a process other than ``not_session``'s) and
        iopub flows, or the backend says it died.

        The failure future was set up when the start or restart began, so a death
        reported at any point since is not missed. With ``stall``, a death is
        raised as _RestartStalled, for the caller to retry (the caller also sets
        the time it allows); otherwise a death or the start timeout is a
        KernelStartError.
        """
        failure = self._start_failure
        assert failure is not None
        probe = asyncio.ensure_future(self._probe(not_session))
        limit = self._settings.start_timeout
        try:
            async with asyncio.timeout(limit):
                waiters: list[asyncio.Future[Any]] = [probe, failure]
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise KernelStartError(
                f"Kernel {self.id} ({self.name}) did not answer within {limit:.0f} seconds"
                + (f"; last known state: {self.reason}." if self.reason else "."),
                hint="See the daemon log for the kernel's output.",
            ) from None
        finally:
            self._start_failure = None
            if not probe.done():
                probe.cancel()
                await asyncio.wait([probe])
        if failure.done():
            if stall:
                raise _RestartStalled(failure.result()[0])
            reason, hint = failure.result()
            raise KernelStartError(
                f"Kernel {self.id} ({self.name}) failed to start: {reason}",
                hint=hint or "See the daemon log for the kernel's full output.",
            )
        probe.result()

    async def _probe(self, not_session: str | None) -> None:
        while True:
            try:
                # A request can be lost: sent to a process that stops before it reads
                # it (the old kernel of an in-place restart, reached through a tunnel
                # for a moment). Unanswered for a while, it is asked again.
                async with asyncio.timeout(_KERNEL_INFO_RETRY):
                    reply = await self.relay.request("shell", "kernel_info_request")
            except TimeoutError:
                logger.debug("kernel %s: no kernel_info_reply yet; asking again", self.id)
                continue
            session = reply.session()
            if not_session is not None and session == not_session:
                # The previous process answered: it got the shutdown request and is
                # on its way out, after which the connections reach its successor.
                # No event says when; ask again shortly.
                logger.debug("kernel %s: the previous process still answers", self.id)
                await asyncio.sleep(_OLD_KERNEL_RETRY)
                continue
            self._kernel_session = session
            if self.relay.iopub_seen:
                return
            try:
                async with asyncio.timeout(_IOPUB_GRACE):
                    await self.relay.wait_iopub()
                return
            except TimeoutError:
                logger.debug("kernel %s: iopub not flowing yet; asking again", self.id)

    async def _watch(self) -> None:
        """Read the backend's facts about this kernel for as long as it lives."""
        try:
            async for event in self._handle.events():
                if event.incarnation < self._incarnation:
                    continue
                match event:
                    case Pending(reason=reason):
                        self.reason = reason
                    case Running():
                        self.reason = ""
                    case Died(reason=reason, hint=hint):
                        if self._start_failure is not None and not self._start_failure.done():
                            self._start_failure.set_result((reason, hint))
                        elif not self._stopping and self.state is not KernelState.RESTARTING:
                            async with self._lock:
                                if not self._gone:
                                    await self._die(reason)
                            return
        except Exception:
            logger.exception("kernel %s: watching its lifecycle failed", self.id)

    async def _die(self, reason: str) -> None:
        """The kernel is gone: tell clients, release everything, leave the table."""
        logger.warning("kernel %s: died: %s", self.id, reason)
        self.state = KernelState.DEAD
        self.reason = reason
        self.relay.close_sockets()
        self.relay.broadcast_status("dead")
        await self._close(terminate=True)

    async def _close(self, *, terminate: bool) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
            await asyncio.wait([watcher])
        await self.link.aclose()
        self.relay.close()
        # Leave the table before the backend cleans up (deleting a pod takes a while):
        # a client told "dead" must not find the kernel still listed.
        if not self._gone:
            self._gone = True
            self._on_gone(self)
        if terminate:
            await self._handle.terminate()
        else:
            await self._handle.detach()

    # -- activity -------------------------------------------------------------

    def _track_iopub(self, message: KernelMessage) -> None:
        if message.msg_type != "status":
            self.last_activity = time.time()
            return
        try:
            parent_type = message.parent_header().get("msg_type")
            content: StatusContent = message.content()
            execution_state = content.get("execution_state")
        except (ValueError, AttributeError):
            return
        tracked = parent_type not in UNTRACKED_MESSAGE_TYPES
        if tracked or self.state is KernelState.BUSY:
            self.last_activity = time.time()
        if tracked and self.state in (KernelState.IDLE, KernelState.BUSY):
            if execution_state == "busy":
                self.state = KernelState.BUSY
                self.busy_parent = message.parent
            elif execution_state == "idle":
                self.state = KernelState.IDLE
                self.busy_parent = None

    def _track_client(self, msg_type: str) -> None:
        if msg_type not in UNTRACKED_MESSAGE_TYPES:
            self.last_activity = time.time()

    def describe(self) -> dict[str, Any]:
        """For logs and debugging; the REST model is built by the daemon."""
        return {"id": self.id, "name": self.name, "state": str(self.state), "reason": self.reason}
