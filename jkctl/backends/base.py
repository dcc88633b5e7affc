"""The backend interface: what the kernel manager needs from "where kernels run".

A backend turns a kernelspec into a running kernel and reports, as facts,
what happens to it. The kernel manager (``jkctl.kernels``) never knows which
backend it has: it speaks ZeroMQ to the endpoints in :class:`ConnectionInfo`
(``tcp://127.0.0.1:P`` for local subprocesses, ``ipc://PATH`` for the
Kubernetes backend's port-forward tunnel) and reads lifecycle events.

Two objects:

- :class:`Backend` launches kernels, re-discovers the ones it left running
  (after a daemon restart) and releases everything on :meth:`Backend.aclose`.
- :class:`KernelHandle` is one launched kernel: its connection info, an
  ordered stream of :data:`LifecycleEvent` facts, and the operations only the
  backend can do (signal-mode interrupt, restart in place, terminate, detach).

Events carry the *incarnation* they describe (0 at launch, +1 per restart), so
the manager can ignore the death of a process it asked to restart no matter
when that fact is read.

For `jkctl kernels list` and `describe`, a handle also says where its kernel
runs (:class:`Placement`: pod, node, resources; or a local process) and can
give details (:class:`KernelDetails`: lease, recent events, last log lines)
and its log. Backends answer :meth:`KernelHandle.placement` from what they
already know (the pod watch's last state), so listing kernels costs no API
call; details and logs may ask the cluster.

What this module does not do: speak ZeroMQ, sign messages, track busy/idle or
clients. Those belong to ``jkctl.kernels``.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from jkctl.errors import KernelNotFound
from jkctl.kube.podconfig import PodConfig

if TYPE_CHECKING:
    from jkctl.kube.quota import TeamUsage

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")


@dataclass(frozen=True, kw_only=True)
class LaunchSpec:
    """What a backend needs from a kernelspec to start a kernel."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    resource_dir: Path
    #: The kernelspec's checked ``metadata.jkctl`` block (image, resources, env, ...).
    #: The local backend reads only ``env``.
    pod: PodConfig = field(default_factory=PodConfig)


@dataclass(frozen=True, kw_only=True)
class ConnectionInfo:
    """Where the kernel's five ZeroMQ sockets are reached, and how to sign messages."""

    shell: str
    iopub: str
    stdin: str
    control: str
    hb: str
    key: bytes = field(repr=False)
    signature_scheme: str = "hmac-sha256"

    def endpoint(self, channel: str) -> str:
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        endpoint: str = getattr(self, channel)
        return endpoint


@dataclass(frozen=True, kw_only=True)
class Pending:
    """The kernel is not running yet, and the backend says why (e.g. "pulling image")."""

    incarnation: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class Running:
    """The kernel's process is up; its sockets may still take a moment to answer."""

    incarnation: int


@dataclass(frozen=True, kw_only=True)
class Died:
    """The kernel's process is gone. ``reason`` is one sentence a user can act on."""

    incarnation: int
    reason: str
    #: What to do about it, when the backend knows better than "read the log".
    hint: str = ""


LifecycleEvent = Pending | Running | Died


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where a kernel runs and what it was given, as its backend knows it.

    Pod fields are None on the local backend, ``pid`` is None on Kubernetes.
    ``condition`` is the backend's word on the kernel's home when it is not
    simply running: "pending: pulling image ...", "ended: ..." (from the pod
    as Kubernetes reports it; the kernel's own idle/busy is the manager's).
    """

    kernel_id: str
    kernelspec: str
    backend: str
    namespace: str | None = None
    pod: str | None = None
    node: str | None = None
    phase: str | None = None
    condition: str = ""
    #: When the kernel (its pod, or its process) was created, in epoch seconds.
    created: float | None = None
    image: str | None = None
    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)
    owner: str | None = None
    pid: int | None = None
    #: The last activity recorded beside the kernel (a pod annotation), epoch seconds.
    last_activity: float | None = None
    #: Whether the kernel's home has ended for good (a pod that failed or completed).
    ended: bool = False


@dataclass(frozen=True, kw_only=True)
class Lease:
    """A pod's lease: how long it outlives its last renewal, and when that was."""

    seconds: int
    #: The last renewal as the daemon wrote it (ISO 8601, the daemon's clock).
    renewed: str | None


@dataclass(frozen=True, kw_only=True)
class KernelEvent:
    """One event Kubernetes recorded about a kernel's pod."""

    time: str | None
    type: str
    reason: str
    message: str
    count: int = 1


@dataclass(frozen=True, kw_only=True)
class KernelDetails:
    """What `jkctl kernels describe` shows beyond the listing."""

    placement: Placement
    lease: Lease | None = None
    events: tuple[KernelEvent, ...] = ()
    log: tuple[str, ...] = ()
    #: What could not be read, and why (events or logs while the API is down).
    notes: tuple[str, ...] = ()


class KernelHandle(abc.ABC):
    """One kernel launched by a backend."""

    kernel_id: str
    kernelspec: str
    #: Whether :meth:`interrupt` can signal the kernel; if not, the manager interrupts
    #: with ``interrupt_request`` on the control channel even for signal-mode kernelspecs.
    can_signal: ClassVar[bool] = True
    #: The kernel's last activity as found beside it when it was re-discovered (epoch
    #: seconds), so a re-attached kernel is not taken for freshly used.
    last_activity: float | None = None
    #: Where the backend reads the kernel's last activity, to record it beside the
    #: kernel (the manager binds it; None until then).
    activity_source: Callable[[], float] | None = None

    @abc.abstractmethod
    def placement(self) -> Placement:
        """Where the kernel runs, from what the backend knows already (no API call)."""

    @abc.abstractmethod
    async def details(self, *, log_lines: int) -> KernelDetails:
        """Placement, lease, recent events and the last ``log_lines`` of output."""

    @abc.abstractmethod
    def log(
        self, *, follow: bool, tail: int | None
    ) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """The kernel's output, line by line; ``follow`` keeps it open until the kernel ends."""

    @property
    @abc.abstractmethod
    def connection(self) -> ConnectionInfo:
        """The current endpoints and key (a restart may change them)."""

    @property
    @abc.abstractmethod
    def incarnation(self) -> int:
        """0 at launch, incremented by every :meth:`restart`."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[LifecycleEvent]:
        """Lifecycle facts in the order they happened, until :meth:`terminate`
        or :meth:`detach`. One consumer. A :class:`Died` does not end the
        stream: a :meth:`restart` may follow."""

    @abc.abstractmethod
    async def interrupt(self) -> None:
        """Interrupt a kernel whose kernelspec says ``interrupt_mode: signal``."""

    @abc.abstractmethod
    async def restart(self, *, hard: bool = False) -> ConnectionInfo:
        """Start the kernel again under the same id, in place.

        Called after the manager asked the kernel to shut down for a restart
        (``shutdown_request`` with ``restart: true``); a backend that can
        watch the kernel exit and relaunch (a pod's wrapper) may leave the
        rest to it, others stop the process themselves. ``hard`` means the
        previous restart did not come back: replace the kernel by any means
        (the Kubernetes backend recreates the pod).

        Returns once the new process was launched (not once it answers);
        its facts follow in :meth:`events` under the next incarnation.
        """

    @abc.abstractmethod
    async def terminate(self) -> None:
        """Stop the kernel and remove everything it used. Idempotent."""

    @abc.abstractmethod
    async def detach(self) -> None:
        """Release the daemon's side (tunnels, watches) and leave the kernel
        running, for a later :meth:`Backend.discover`. Backends whose kernels
        cannot outlive the daemon terminate instead."""

    async def claim(self) -> None:  # noqa: B027 - a default: most backends record nothing
        """A kernel launched with ``pooled=True`` is handed to a user: from now on it is
        theirs, also to a later :meth:`Backend.discover`. Backends whose kernels die with
        the daemon have nothing to record."""


class Backend(abc.ABC):
    """Where kernels run."""

    name: ClassVar[str]
    #: Whether kernels keep running when the daemon stops without --stop-kernels.
    kernels_outlive_daemon: ClassVar[bool]

    @abc.abstractmethod
    async def open(self) -> None:
        """Get ready to launch (log in, check permissions) before the daemon serves.

        Raises a :class:`~jkctl.errors.JkctlError` saying what is wrong. The
        caller calls :meth:`aclose` whether or not this succeeded."""

    @abc.abstractmethod
    async def launch(
        self, spec: LaunchSpec, *, kernel_id: str, env: Mapping[str, str], pooled: bool = False
    ) -> KernelHandle:
        """Start a kernel. ``env`` holds the launch request's validated variables
        (``KERNEL_*``). Returns once the kernel exists (process spawned, pod
        created); whether it comes up is reported through its events. Raises
        :class:`~jkctl.errors.KernelStartError` when it cannot even be created.

        ``pooled``: started ahead of time for the warm pool, nobody's until
        :meth:`KernelHandle.claim`; :meth:`discover` does not re-attach such kernels
        (they are removed)."""

    def pool_can_serve(self, env: Mapping[str, str]) -> bool:
        """Whether a launch with these ``KERNEL_*`` variables gets the same kernel as
        one with none, so that a kernel started ahead of time can serve it."""
        return not env

    @abc.abstractmethod
    async def discover(self) -> list[KernelHandle]:
        """Kernels this daemon left running earlier, re-attached."""

    async def inventory(self, *, all_namespaces: bool) -> list[Placement]:
        """Every kernel of this daemon's the backend can find, attached or not (pods
        that ended, kernels in other namespaces). Backends with nothing to find
        beyond their own table return []."""
        del all_namespaces
        return []

    async def team_usage(self) -> TeamUsage | None:
        """The quota of the team the kernels run in; None where there is none."""
        return None

    async def describe(self, placement: Placement, *, log_lines: int) -> KernelDetails:
        """Details of a kernel :meth:`inventory` found but the daemon does not serve."""
        del log_lines
        raise _not_served(placement)

    def log(
        self, placement: Placement, *, follow: bool, tail: int | None
    ) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """The output of a kernel :meth:`inventory` found but the daemon does not serve."""
        del follow, tail
        raise _not_served(placement)

    async def remove(self, placement: Placement) -> None:
        """Stop and remove a kernel :meth:`inventory` found but the daemon does not serve."""
        raise _not_served(placement)

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the backend's own resources. Kernels were already terminated
        or detached by the manager."""


def _not_served(placement: Placement) -> KernelNotFound:
    return KernelNotFound(
        f"Kernel {placement.kernel_id} is not one this daemon serves.",
        hint="`jkctl kernels list` shows the kernels it serves.",
    )
