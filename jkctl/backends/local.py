"""The local backend: kernels as subprocesses of the daemon, from the same kernelspecs.

It is the embedded default on a machine with no kubeconfig, and the reference
the relay is measured against. Each kernel gets a connection file (five
``tcp://127.0.0.1`` ports, a fresh HMAC key) written 0600 into the daemon's
runtime folder, and runs in its own session (process group) so a signal-mode
interrupt or a terminate reaches everything it started.

Kernels are children of the daemon and stop with it: ``JPY_PARENT_PID`` makes
ipykernel exit if the daemon is killed, and :meth:`LocalBackend.aclose`
terminates the rest. There is nothing to re-discover after a restart.

A kernel's output (stdout and stderr) is logged by the daemon and its last
lines kept, for `jkctl kernels logs` and `describe`; `logs -f` follows it.

Of ``metadata.jkctl`` only ``env`` applies here (images and resources are
the Kubernetes backend's business). A launch request's ``KERNEL_WORKING_DIR``
becomes the kernel's working directory when it exists on this machine.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from pathlib import Path

from jkctl.backends.base import (
    Backend,
    ConnectionInfo,
    Died,
    KernelDetails,
    KernelHandle,
    LaunchSpec,
    LifecycleEvent,
    Placement,
    Running,
)
from jkctl.errors import KernelStartError

logger = logging.getLogger(__name__)

#: argv[0] values that mean "the Python running jkctl", as jupyter_client treats them.
_PYTHON_NAMES = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info)}
_TERMINATE_GRACE = 3.0
_OUTPUT_TAIL_LINES = 20
#: Lines of a kernel's output kept for `jkctl kernels logs`.
_LOG_LINES = 1000
#: The lowest port handed to kernels (well above the ports services usually claim).
_PORT_FLOOR = 20000


class LocalBackend(Backend):
    """Kernels as local subprocesses."""

    name = "local"
    kernels_outlive_daemon = False

    def __init__(self, *, runtime_dir: Path) -> None:
        self._runtime_dir = runtime_dir
        self._reserved_ports: set[int] = set()
        self._kernels: dict[str, LocalKernel] = {}

    async def launch(
        self, spec: LaunchSpec, *, kernel_id: str, env: Mapping[str, str], pooled: bool = False
    ) -> LocalKernel:
        del pooled  # local kernels die with the daemon: nothing outlives it to tell apart
        from jupyter_client.connect import write_connection_file

        self._runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        connection_file = self._runtime_dir / f"kernel-{kernel_id}.json"
        ports = self._allocate_ports(5)
        key = secrets.token_hex(32).encode()
        shell, iopub, stdin, control, hb = ports
        write_connection_file(
            str(connection_file),
            shell_port=shell,
            iopub_port=iopub,
            stdin_port=stdin,
            control_port=control,
            hb_port=hb,
            ip="127.0.0.1",
            key=key,
            transport="tcp",
            kernel_name=spec.name,
        )
        connection = ConnectionInfo(
            shell=f"tcp://127.0.0.1:{shell}",
            iopub=f"tcp://127.0.0.1:{iopub}",
            stdin=f"tcp://127.0.0.1:{stdin}",
            control=f"tcp://127.0.0.1:{control}",
            hb=f"tcp://127.0.0.1:{hb}",
            key=key,
        )
        kernel = LocalKernel(
            kernel_id=kernel_id,
            kernelspec=spec.name,
            argv=_format_argv(spec, connection_file=connection_file),
            env=_kernel_env(spec, kernel_id=kernel_id, request_env=env),
            cwd=_working_dir(env, kernel_id=kernel_id),
            connection=connection,
            connection_file=connection_file,
            on_gone=lambda: self._forget(kernel_id, ports),
        )
        self._kernels[kernel_id] = kernel
        try:
            await kernel.spawn()
        except BaseException:
            await kernel.terminate()
            raise
        return kernel

    async def open(self) -> None:
        self._runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    async def discover(self) -> list[KernelHandle]:
        return []

    async def aclose(self) -> None:
        for kernel in list(self._kernels.values()):
            await kernel.terminate()

    def _allocate_ports(self, count: int) -> list[int]:
        """Free ports for a kernel, from *below* the system's ephemeral port range.

        Not ``bind(0)``: ephemeral ports are what every program's ``bind(0)``
        returns and what every outgoing connection on the machine takes as its
        source port, so in the moment between choosing a port and the kernel
        binding it, someone else may take it and the kernel dies of EADDRINUSE
        (how Enterprise Gateway loses kernels under concurrent starts). Below
        the range only programs asking for a fixed port compete. Ports are
        remembered until the kernel is gone, so concurrent starts never share one.
        """
        low, _ = _ephemeral_range()
        if low - _PORT_FLOOR < 1000:  # an unusual system: take what the OS gives
            return self._allocate_ephemeral(count)
        ports: list[int] = []
        while len(ports) < count:
            port = _PORT_FLOOR + secrets.randbelow(low - _PORT_FLOOR)
            if port not in self._reserved_ports and port not in ports and _is_free(port):
                ports.append(port)
        self._reserved_ports.update(ports)
        return ports

    def _allocate_ephemeral(self, count: int) -> list[int]:
        held: list[socket.socket] = []
        ports: list[int] = []
        try:
            while len(ports) < count:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(sock)
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
                if port not in self._reserved_ports:
                    ports.append(port)
        finally:
            for sock in held:
                sock.close()
        self._reserved_ports.update(ports)
        return ports

    def _forget(self, kernel_id: str, ports: list[int]) -> None:
        self._kernels.pop(kernel_id, None)
        self._reserved_ports.difference_update(ports)


class LocalKernel(KernelHandle):
    """One local kernel process (and its successors after restarts)."""

    def __init__(
        self,
        *,
        kernel_id: str,
        kernelspec: str,
        argv: list[str],
        env: dict[str, str],
        cwd: str | None,
        connection: ConnectionInfo,
        connection_file: Path,
        on_gone: collections.abc.Callable[[], None],
    ) -> None:
        self.kernel_id = kernel_id
        self.kernelspec = kernelspec
        self._argv = argv
        self._env = env
        self._cwd = cwd
        self._connection = connection
        self._connection_file = connection_file
        self._on_gone = on_gone
        self._incarnation = 0
        self._events: asyncio.Queue[LifecycleEvent | None] = asyncio.Queue()
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._expect_exit = False
        self._closed = False
        self._created = time.time()
        self._output = OutputLog(_LOG_LINES)

    @property
    def connection(self) -> ConnectionInfo:
        return self._connection

    def placement(self) -> Placement:
        return Placement(
            kernel_id=self.kernel_id,
            kernelspec=self.kernelspec,
            backend="local",
            created=self._created,
            pid=self.pid,
        )

    async def details(self, *, log_lines: int) -> KernelDetails:
        return KernelDetails(placement=self.placement(), log=self._output.tail(log_lines))

    @contextlib.asynccontextmanager
    async def log(self, *, follow: bool, tail: int | None) -> AsyncIterator[AsyncIterator[str]]:
        lines = self._output.read(follow=follow, tail=tail)
        try:
            yield lines
        finally:
            await lines.aclose()

    @property
    def incarnation(self) -> int:
        return self._incarnation

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def events(self) -> AsyncIterator[LifecycleEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def spawn(self) -> None:
        try:
            process = await asyncio.create_subprocess_exec(
                *self._argv,
                env=self._env,
                cwd=self._cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise KernelStartError(
                f"Kernelspec '{self.kernelspec}' could not run {self._argv[0]!r}: "
                f"{exc.strerror or exc}.",
                hint="Check the kernelspec's argv: its program must be installed on this machine.",
            ) from exc
        self._process = process
        self._expect_exit = False
        logger.info(
            "kernel %s: started %s (pid %d, incarnation %d)",
            self.kernel_id,
            self.kernelspec,
            process.pid,
            self._incarnation,
        )
        self._supervisor = asyncio.create_task(self._supervise(process, self._incarnation))
        self._events.put_nowait(Running(incarnation=self._incarnation))

    async def _supervise(self, process: asyncio.subprocess.Process, incarnation: int) -> None:
        """Log the kernel's output, keep its tail, and report its exit."""
        tail: collections.deque[str] = collections.deque(maxlen=_OUTPUT_TAIL_LINES)
        assert process.stdout is not None
        pending = b""
        while chunk := await process.stdout.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace").rstrip()
                if line:
                    tail.append(line)
                    self._output.append(line)
                    logger.info("kernel %s output: %s", self.kernel_id, line)
        if pending.strip():
            tail.append(pending.decode(errors="replace").rstrip())
            self._output.append(tail[-1])
        code = await process.wait()
        if self._expect_exit:
            return
        logger.warning("kernel %s: process exited with code %s", self.kernel_id, code)
        reason = f"The kernel process exited with code {code}"
        if tail:
            reason += f"; its last output was: {tail[-1]}"
        self._events.put_nowait(Died(incarnation=incarnation, reason=reason + "."))

    async def interrupt(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)

    async def restart(self, *, hard: bool = False) -> ConnectionInfo:
        del hard  # always hard: the process may have ignored the shutdown request
        await self._stop_process()
        self._incarnation += 1
        await self.spawn()
        return self._connection

    async def terminate(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._stop_process()
        finally:
            self._connection_file.unlink(missing_ok=True)
            self._output.close()
            self._events.put_nowait(None)
            self._on_gone()

    async def detach(self) -> None:
        # A local kernel cannot be re-attached by a later daemon: stop it.
        await self.terminate()

    async def _stop_process(self) -> None:
        process, supervisor = self._process, self._supervisor
        self._expect_exit = True
        try:
            if process is not None and process.returncode is None:
                _signal_group(process, signal.SIGTERM)
                try:
                    async with asyncio.timeout(_TERMINATE_GRACE):
                        await process.wait()
                except TimeoutError:
                    logger.warning("kernel %s: did not stop on SIGTERM; killing it", self.kernel_id)
                    _signal_group(process, signal.SIGKILL)
                    await process.wait()
        finally:
            if supervisor is not None:
                supervisor.cancel()
                await asyncio.wait([supervisor])


class OutputLog:
    """The last lines of a kernel's output, and readers following new ones."""

    def __init__(self, size: int) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=size)
        self._count = 0  # lines ever appended: where a follower is
        self._changed = asyncio.Event()
        self._closed = False

    def append(self, line: str) -> None:
        self._lines.append(line)
        self._count += 1
        self._wake()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def tail(self, count: int) -> tuple[str, ...]:
        return tuple(self._lines)[-count:] if count > 0 else ()

    async def read(self, *, follow: bool, tail: int | None) -> AsyncGenerator[str, None]:
        """The last ``tail`` lines (all kept, if None), then new ones while ``follow``."""
        kept = list(self._lines)
        for line in kept if tail is None else self.tail(tail):
            yield line
        seen = self._count
        while follow and not self._closed:
            changed = self._changed
            await changed.wait()
            fresh = self._count - seen
            seen = self._count
            for line in list(self._lines)[-fresh:] if fresh else ():
                yield line

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def _ephemeral_range() -> tuple[int, int]:
    """The ports the OS hands out for bind(0) and outgoing connections."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535  # IANA's range, used by macOS and BSDs


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _signal_group(process: asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _format_argv(spec: LaunchSpec, *, connection_file: Path) -> list[str]:
    """The kernelspec's argv with its placeholders filled, as jupyter_client does."""
    substitutions = {
        "{connection_file}": str(connection_file),
        "{resource_dir}": str(spec.resource_dir),
        "{prefix}": sys.prefix,
    }
    argv = []
    for template in spec.argv:
        arg = template
        for placeholder, value in substitutions.items():
            arg = arg.replace(placeholder, value)
        argv.append(arg)
    if argv and argv[0] in _PYTHON_NAMES:
        argv[0] = sys.executable
    return argv


def _kernel_env(
    spec: LaunchSpec, *, kernel_id: str, request_env: Mapping[str, str]
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(spec.env)
    env.update(spec.pod.env)
    env.update(request_env)
    env["KERNEL_ID"] = kernel_id
    # ipykernel exits when this process does: no orphans if the daemon is killed.
    env["JPY_PARENT_PID"] = str(os.getpid())
    return env


def _working_dir(request_env: Mapping[str, str], *, kernel_id: str) -> str | None:
    wanted = request_env.get("KERNEL_WORKING_DIR")
    if not wanted:
        return None
    if Path(wanted).is_dir():
        return wanted
    logger.warning(
        "kernel %s: KERNEL_WORKING_DIR %r is not a folder here; using the daemon's",
        kernel_id,
        wanted,
    )
    return None
