"""Running the daemon: lock the state folder, bind 127.0.0.1, serve until asked to stop.

:func:`run_daemon` is the daemon's whole life, used both in the foreground
(``jkctl connect --foreground``) and by the detached process
(``python -m jkctl.daemon``). In order: take the state folder's lock (one
daemon per folder), build and open the backend (so a backend that cannot
work -- no cluster, missing permissions -- fails before anything is
announced), bind the port (for "any port", the last daemon's port again if it
is free, so configured clients find the restarted daemon), start serving, write
``daemon.json``, and call ``on_ready``. It stops on SIGTERM/SIGINT or on
``POST /jkctl/shutdown``, then closes websockets, stops or detaches kernels,
and removes ``daemon.json``.
"""

from __future__ import annotations

import asyncio
import datetime
import getpass
import logging
import os
import resource
import signal
import socket
import time
from collections.abc import Callable

from aiohttp import web

from jkctl import __version__
from jkctl.backends.factory import create_backend
from jkctl.backends.kubernetes.settings import KubeBackendSettings
from jkctl.daemon.app import make_app
from jkctl.daemon.appkeys import DaemonControl, DaemonInfo
from jkctl.daemon.settings import DaemonSettings
from jkctl.daemon.state import (
    DaemonLock,
    DaemonRecord,
    StateFiles,
    load_or_create_daemon_id,
    load_or_create_token,
    read_last_port,
    write_last_port,
    write_record,
)
from jkctl.errors import DaemonError

logger = logging.getLogger(__name__)


async def run_daemon(
    settings: DaemonSettings, *, on_ready: Callable[[DaemonRecord, str], None]
) -> None:
    """Serve until stopped. ``on_ready(record, token)`` is called once it answers requests."""
    files = StateFiles(dir=settings.state_dir)
    _raise_open_file_limit()
    with DaemonLock(files):
        token = load_or_create_token(files)
        backend = create_backend(
            settings.backend,
            runtime_dir=files.runtime_dir,
            kubernetes=_kube_settings(settings, files)
            if settings.backend == "kubernetes"
            else None,
        )
        try:
            await backend.open()
            sock = _bind_port(settings.port, files)
        except BaseException:
            await backend.aclose()
            raise
        port = int(sock.getsockname()[1])
        write_last_port(files, port)
        control = DaemonControl()
        info = DaemonInfo(
            pid=os.getpid(),
            url=f"http://127.0.0.1:{port}",
            started=time.time(),
            log_file=str(files.log_file),
        )
        app = make_app(
            settings=settings, backend=backend, token=token, port=port, control=control, info=info
        )
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        loop = asyncio.get_running_loop()
        try:
            await runner.setup()
            await web.SockSite(runner, sock).start()
            record = DaemonRecord(
                url=info.url,
                pid=info.pid,
                port=port,
                backend=settings.backend,
                context=settings.context,
                namespace=settings.namespace,
                started_at=datetime.datetime.fromtimestamp(info.started, datetime.UTC).isoformat(
                    timespec="seconds"
                ),
                version=__version__,
                log_file=info.log_file,
            )
            write_record(files, record)
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, control.stop)
            logger.info(
                "jkctl daemon %s serving %s (backend %s, pid %d)",
                __version__,
                record.url,
                settings.backend,
                record.pid,
            )
            on_ready(record, token)
            await control.stop_requested.wait()
            logger.info("stopping%s", " and stopping kernels" if control.stop_kernels else "")
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            await runner.cleanup()
            await backend.aclose()  # closed already unless the app never started
            sock.close()
    logger.info("jkctl daemon stopped")


def _kube_settings(settings: DaemonSettings, files: StateFiles) -> KubeBackendSettings:
    return KubeBackendSettings(
        kubeconfig=settings.kubeconfig,
        context=settings.context,
        namespace=settings.namespace,
        daemon_id=load_or_create_daemon_id(files),
        owner=_login_name(),
        runtime_dir=files.runtime_dir,
        lease_seconds=settings.lease_seconds,
        node_wait=settings.node_wait,
    )


def _raise_open_file_limit() -> None:
    """Allow as many open files as the system lets this user have.

    Each Kubernetes kernel holds about 20 descriptors (ZeroMQ sockets, the
    tunnel's listeners and connections, their websockets); a soft limit of
    1024, common on Linux and lower on macOS, would cap a daemon near 50 kernels.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:  # macOS refuses more than OPEN_MAX
            logger.info("cannot raise the open file limit from %d: %s", soft, exc)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _bind_port(port: int, files: StateFiles) -> socket.socket:
    """The port asked for; for "any port", the last daemon's again if it is free, so that
    clients configured with the daemon's URL find it after a restart."""
    if port == 0 and (last := read_last_port(files)):
        try:
            return _bind(last)
        except DaemonError:
            logger.info("port %d of the last daemon is taken; listening on another", last)
    return _bind(port)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise DaemonError(
            f"Cannot listen on 127.0.0.1:{port}: {exc.strerror}.",
            hint="Pick another --port, or 0 for any free port.",
        ) from exc
    sock.setblocking(False)
    return sock
