"""The daemon application's shared state, as typed ``web.AppKey``s.

Handlers reach the kernel manager, sessions and settings through these keys
(set when the app is built or in its cleanup context), never through module
globals. :class:`DaemonControl` is how a request (``POST /jkctl/shutdown``)
or a signal asks the daemon to stop, and whether to stop its kernels too.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass

from aiohttp import web

from jkctl.daemon.sessions import SessionStore
from jkctl.daemon.settings import DaemonSettings
from jkctl.kernels.manager import KernelManager


class DaemonControl:
    def __init__(self) -> None:
        self.stop_requested = asyncio.Event()
        self.stop_kernels = False

    def stop(self, *, stop_kernels: bool = False) -> None:
        self.stop_kernels = self.stop_kernels or stop_kernels
        self.stop_requested.set()


@dataclass(frozen=True, kw_only=True)
class DaemonInfo:
    """What `jkctl status` says about the daemon itself."""

    pid: int
    url: str
    #: Epoch seconds.
    started: float
    log_file: str


SETTINGS = web.AppKey("settings", DaemonSettings)
INFO = web.AppKey("info", DaemonInfo)
CONTROL = web.AppKey("control", DaemonControl)
MANAGER = web.AppKey("manager", KernelManager)
SESSIONS = web.AppKey("sessions", SessionStore)
WEBSOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse[bool]]] = web.AppKey("websockets")
