"""Pod sandboxes and container processes: spawning the shim, signalling, port-forward dialing.

A `Sandbox` is the pod's pause process (its network and UTS namespaces); a
`ContainerProcess` is one run of one container (the shim plus the container's
pid 1 in its own PID and mount namespaces, see shim.py). Processes are
spawned from the event loop's thread, each in its own session, with
PR_SET_PDEATHSIG set in the shim: if kubesim dies, every shim dies, and with
it every container's PID namespace.

`dial` connects to 127.0.0.1:PORT inside a sandbox's network namespace: a
fresh thread setns()es into the namespace, creates and connects the socket
there (a socket stays in the namespace it was created in), and setns()es
back before it ends. Nothing a pod listens on is reachable from the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHIM = Path(__file__).with_name("shim.py")
CLONE_NEWNET = 0x40000000
START_TIMEOUT = 30.0


class StartError(Exception):
    """The shim could not start the container; the message is the runtime's."""


@dataclass(frozen=True)
class Started:
    process: asyncio.subprocess.Process
    pid: int | None  # the container's pid 1, as the host sees it


async def spawn_shim(spec: dict[str, Any], spec_path: Path, *, capture: bool) -> Started:
    """Run the shim with `spec`; returns once the workload has exec'ed (or failed to)."""
    spec = {**spec, "parent": os.getpid()}
    _write_spec(spec_path, spec)
    read_fd, write_fd = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            str(SHIM),
            str(spec_path),
            str(write_fd),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    try:
        async with asyncio.timeout(START_TIMEOUT):
            report = await _read_all(read_fd)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    pid = None
    errors = []
    for line in report.decode(errors="replace").splitlines():
        word, _, rest = line.partition(" ")
        if word == "pid":
            pid = int(rest)
        elif word == "error":
            errors.append(rest)
    if errors:
        await process.wait()
        raise StartError(errors[0])
    if spec["mode"] == "sandbox" and "ready" not in report.decode():
        await process.wait()
        raise StartError(f"failed to start sandbox: exit status {process.returncode}")
    return Started(process, pid)


def _write_spec(path: Path, spec: dict[str, Any]) -> None:
    path.write_text(json.dumps(spec))  # a small local file: not worth a thread


async def _read_all(fd: int) -> bytes:
    """Read a pipe to EOF without a thread: the loop watches the fd."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    try:
        return await reader.read()
    finally:
        transport.close()


class Sandbox:
    def __init__(self, started: Started, sandbox_id: str) -> None:
        self._process = started.process
        self.id = sandbox_id
        self.pid = started.process.pid

    @classmethod
    async def start(cls, *, hostname: str, directory: Path, sandbox_id: str) -> Sandbox:
        spec = {"mode": "sandbox", "hostname": hostname[:63]}
        started = await spawn_shim(spec, directory / "sandbox.json", capture=False)
        return cls(started, sandbox_id)

    @property
    def running(self) -> bool:
        return self._process.returncode is None

    def namespace(self, kind: str) -> str:
        return f"/proc/{self.pid}/ns/{kind}"

    async def stop(self) -> None:
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        await self._process.wait()


class ContainerProcess:
    """One running container: signal it, wait for it, read its output streams."""

    def __init__(self, started: Started) -> None:
        self.shim = started.process
        self.pid = started.pid
        self._pidfd: int | None = None
        if started.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                self._pidfd = os.pidfd_open(started.pid)

    def signal(self, signum: int) -> None:
        """Signal the container's pid 1 (as a runtime does), never another process."""
        if self._pidfd is not None and self.shim.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signum)

    async def wait(self) -> int:
        """The exit code as the runtime reports it (128+N for signal N)."""
        code = await self.shim.wait()
        self._close_pidfd()
        return code if code >= 0 else 128 - code

    async def kill(self) -> int:
        self.signal(signal.SIGKILL)
        if self.shim.returncode is None and self._pidfd is None:
            with contextlib.suppress(ProcessLookupError):
                self.shim.kill()
        return await self.wait()

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def _dial_in_namespace(netns: str, port: int) -> socket.socket:
    libc = ctypes.CDLL(None, use_errno=True)
    host = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns}")
        try:
            errors = []
            for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                sock = socket.socket(family, socket.SOCK_STREAM)
                try:
                    sock.connect((address, port))
                except OSError as error:
                    sock.close()
                    errors.append(error)
                    continue
                sock.setblocking(False)
                return sock
            raise ConnectionRefusedError(*errors)
        finally:
            if libc.setns(host, CLONE_NEWNET) != 0:
                # A thread stuck in the pod's namespace must not live on.
                os._exit(70)
    finally:
        os.close(host)
        os.close(target)


async def dial(netns: str, port: int) -> socket.socket:
    """A connected, non-blocking socket to 127.0.0.1:port (or [::1]) inside `netns`."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[socket.socket] = loop.create_future()

    def deliver(result: socket.socket | None, error: BaseException | None) -> None:
        if future.cancelled():
            if result is not None:
                result.close()
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            sock = _dial_in_namespace(netns, port)
        except BaseException as error:  # handed to the loop, raised there
            loop.call_soon_threadsafe(deliver, None, error)
        else:
            loop.call_soon_threadsafe(deliver, sock, None)

    thread = threading.Thread(target=work, name=f"kubesim-dial-{port}", daemon=True)
    thread.start()
    try:
        return await future
    finally:
        thread.join()  # connect() on a loopback address returns at once
