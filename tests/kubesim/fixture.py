"""pytest plugin: a kubesim cluster per test session (per xdist worker), and a namespace per test.

`kubesim` starts `python -m tests.kubesim` in its own process group, waits
for its ready line, and yields a `Kubesim` handle: the admin kubeconfig,
the server URL, users, namespaces and the fault commands (sent over the
control socket). Faults that last N seconds return at once; the test
observes the effect while it lasts. Teardown stops the process group
(SIGTERM, then SIGKILL if it lingers) and fails if any process of it, or
any process it started (pods run in sessions of their own), survives.

`kubesim_short_backoff` is a second such cluster whose kubelet backs off
from 0.1 s instead of 10 s, for tests of crash loops and failing pulls.

`kube_namespace` is a fresh namespace for one test, deleted afterwards
(without waiting for the deletion to finish).

Registered from `tests/conftest.py` with `pytest_plugins`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.kubesim.control import ControlClient

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


class Kubesim:
    """A running kubesim: what a test needs to point clients at it and to break it."""

    def __init__(
        self,
        *,
        kubeconfig: Path,
        server: str,
        control: ControlClient,
        workdir: Path,
        pid: int | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.server = server
        self.control = control
        self.pid = pid  # the process (and process group) running it, if it is a subprocess
        self._workdir = workdir

    # -- users and namespaces --------------------------------------------------

    def new_user(self, name: str, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig for a new user (a fresh token on each call).

        The admin kubeconfig also gains a context named after the user.
        """
        text = self.control.call("create_user", name=name, groups=list(groups))
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        path = self._workdir / f"user-{safe}-{time.monotonic_ns()}.kubeconfig"
        path.write_text(text)
        path.chmod(0o600)
        return path

    def create_namespace(self, prefix: str = "test") -> str:
        name: str = self.control.call("create_namespace", prefix=prefix)
        return name

    def delete_namespace(self, name: str) -> None:
        self.control.call("delete_namespace", name=name)

    # -- faults ----------------------------------------------------------------

    def close_portforwards(self) -> int:
        """Close every port-forward websocket and its pod connections; returns how many."""
        closed: int = self.control.call("close_portforwards")
        return closed

    def refuse_api(self, seconds: float) -> None:
        """Connections to the API port are refused for `seconds`; open ones are dropped now."""
        self.control.call("refuse_api", seconds=seconds)

    def wait_api_listening(self, timeout: float = 20.0) -> None:
        """Block until the API port listens again (after `refuse_api`); at once if it does."""
        self.control.call("wait_api_listening", timeout=timeout)

    def delay_api(self, seconds: float) -> None:
        """For the next `seconds`, each API request is answered `seconds` late."""
        self.control.call("delay_api", seconds=seconds)

    def restart_api(self) -> None:
        """Drop every connection, watch and stream, and listen again on the same port."""
        self.control.call("restart_api")

    def kill_container(self, namespace: str, pod: str, container: str | None = None) -> None:
        self.control.call("kill_container", namespace=namespace, pod=pod, container=container)

    def lose_pod(self, namespace: str, pod: str) -> None:
        self.control.call("lose_pod", namespace=namespace, pod=pod)

    def set_node_ready(self, node: str, ready: bool) -> None:
        self.control.call("set_node_ready", node=node, ready=ready)

    def fail_images(self, *names: str) -> None:
        self.control.call("fail_images", images=list(names))

    def provide_image_paths(self, image: str, paths: dict[str, str]) -> None:
        """Containers of `image` see each path as a symlink to a host path (its "contents")."""
        self.control.call("provide_image_paths", image=image, paths=paths)

    def set_pull_delay(self, seconds: float) -> None:
        self.control.call("set_pull_delay", seconds=seconds)


def socket_path(workdir: Path) -> Path:
    """`workdir/control.sock`, or a short path if that exceeds the Unix socket limit."""
    path = workdir / "control.sock"
    if len(str(path)) < 100:
        return path
    digest = hashlib.sha256(str(workdir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"kubesim-{digest}.sock"


def _read_ready_line(process: subprocess.Popen[bytes], deadline: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        buffered = b""
        while b"\n" not in buffered:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise TimeoutError("kubesim did not report ready in time")
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"kubesim exited before it was ready (code {process.wait()})")
            buffered += chunk
    return buffered.split(b"\n", 1)[0].decode()


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            state, group = fields[0], int(fields[2])
            if group == pgid and state != "Z":
                members.append(int(entry.name))
    return members


def descendants(pid: int) -> list[int]:
    """Live (non-zombie) processes below `pid` in the process tree.

    Pod processes are among them although they run in sessions (and process
    groups) of their own, as the kubelet starts them.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, frontier = [], [pid]
    while frontier:
        below = children.get(frontier.pop(), [])
        found += below
        frontier += below
    return found


POD_UID_ENV = {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}


def pod_processes(kubesim: Kubesim, uid: str) -> list[int]:
    """Host pids of the processes kubesim runs for pod `uid`, found by their environment.

    kubesim does not label pod processes (a kubelet does not either): a test
    that wants to find them gives its containers `POD_UID_ENV`, the pod's uid
    through the downward API.
    """
    assert kubesim.pid is not None, "the cluster runs in this process"
    marker = f"POD_UID={uid}".encode()
    found = []
    for pid in descendants(kubesim.pid):
        with contextlib.suppress(OSError):
            if marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found.append(pid)
    return found


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the group, wait, SIGKILL whatever is left, and check nothing survives:
    neither the group nor any process kubesim started (its pods)."""
    pgid = process.pid  # start_new_session made it the group leader
    # Taken before the stop: once kubesim is gone, its pods are no one's children.
    with _pidfds(descendants(pgid)) as started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)  # a clean stop kills the pods first
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)
        deadline = time.monotonic() + STOP_TIMEOUT
        with _pidfds(group_members(pgid)) as members:
            _wait_for_exit(members, deadline)
        _wait_for_exit(started, deadline)
        left = group_members(pgid)
        assert not left, f"kubesim left processes behind: {left}"
        survivors = sorted(pid for pid, fd in started.items() if not exited(fd))
        assert not survivors, f"kubesim left pod processes behind: {survivors}"


@contextlib.contextmanager
def _pidfds(pids: list[int]) -> Iterator[dict[int, int]]:
    """A pidfd per process still there (it names that process even if its pid is reused)."""
    fds: dict[int, int] = {}
    try:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                fds[pid] = os.pidfd_open(pid)
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)


def exited(pidfd: int) -> bool:
    """Whether the process behind `pidfd` has exited (without waiting)."""
    with selectors.DefaultSelector() as selector:
        selector.register(pidfd, selectors.EVENT_READ)
        return bool(selector.select(0))


def wait_exited(pidfd: int, timeout: float) -> bool:
    """Wait up to `timeout` seconds for the process behind `pidfd` to exit; whether it did."""
    with selectors.DefaultSelector() as selector:
        selector.register(pidfd, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def _wait_for_exit(pidfds: dict[int, int], deadline: float) -> None:
    """Wait until each process has exited (its pidfd turns readable), or the deadline.

    The caller keeps ownership of the pidfds."""
    with selectors.DefaultSelector() as selector:
        for fd in pidfds.values():
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() and (remaining := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(remaining):
                selector.unregister(key.fileobj)


@contextlib.contextmanager
def run_kubesim(workdir: Path, *extra_args: str) -> Iterator[Kubesim]:
    """Start `python -m tests.kubesim` in its own process group; stop it on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "admin.kubeconfig"
    control_socket = socket_path(workdir)
    log = (workdir / "kubesim.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.kubesim",
            "--kubeconfig",
            str(kubeconfig),
            "--control-socket",
            str(control_socket),
            "--state-dir",
            str(workdir / "state"),
            *extra_args,
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
    )
    try:
        line = _read_ready_line(process, time.monotonic() + START_TIMEOUT)
        server = re.search(r"server=(\S+)", line)
        assert server is not None, f"unexpected ready line: {line!r}"
        yield Kubesim(
            kubeconfig=kubeconfig,
            server=server.group(1),
            control=ControlClient(control_socket),
            workdir=workdir,
            pid=process.pid,
        )
    finally:
        try:
            stop_process_group(process)
        finally:
            if process.stdout is not None:
                process.stdout.close()
            log.close()


@pytest.fixture(scope="session")
def kubesim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubesim]:
    with run_kubesim(tmp_path_factory.mktemp("kubesim")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kubesim_short_backoff(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubesim]:
    """A cluster of its own whose crash-loop and image-pull back-off starts at 0.1 s, not 10 s.

    For tests that watch a pod go through back-off (CrashLoopBackOff,
    ImagePullBackOff) in well under a second; `kubesim` keeps the kubelet's
    real timings. Started on first use, once per session (per xdist worker).
    """
    with run_kubesim(
        tmp_path_factory.mktemp("kubesim-short-backoff"), "--backoff-base", "0.1"
    ) as cluster:
        yield cluster


@pytest.fixture
def kube_namespace(kubesim: Kubesim, request: pytest.FixtureRequest) -> Iterator[str]:
    prefix = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") or "test"
    name = kubesim.create_namespace(prefix)
    try:
        yield name
    finally:
        kubesim.delete_namespace(name)
