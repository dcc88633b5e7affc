"""The kernel pod's wrapper script: lease expiry, in-place restarts, signals.

The script runs under dash here (the strictest common /bin/sh), with the
downward API's annotations file simulated in a temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from jkctl.kube.podtemplate import kernel_command

SHELL = "/usr/bin/dash" if Path("/usr/bin/dash").exists() else "/bin/sh"


def write_annotations(podinfo: Path, **annotations: str) -> None:
    lines = "".join(f'{key}="{value}"\n' for key, value in annotations.items())
    staged = podinfo / "annotations.new"
    staged.write_text(lines)
    staged.replace(podinfo / "annotations")  # atomic, like the kubelet's ..data swap


def wait_for(condition: object, *, seconds: float = 10.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {seconds}s")
        time.sleep(0.02)


@pytest.fixture
def podinfo(tmp_path: Path) -> Path:
    folder = tmp_path / "podinfo"
    folder.mkdir()
    return folder


def start(
    podinfo: Path,
    argv: list[str],
    *,
    interval: str = "0.1",
    connection_file: str = "/unused",
    path: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    command = kernel_command(argv, connection_file=connection_file)
    command[0] = SHELL
    env = {
        **os.environ,
        **({"PATH": path} if path is not None else {}),
        "JKCTL_PODINFO": str(podinfo),
        "JKCTL_LEASE_CHECK_SECONDS": interval,
        "TMPDIR": str(podinfo),
        **(extra_env or {}),
    }
    # A session of its own, so teardown can kill the kernel with the wrapper, as
    # the end of a container does.
    return subprocess.Popen(
        command, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_lapsed_lease_stops_the_kernel_and_ends_cleanly(
    podinfo: Path, processes: list[subprocess.Popen[str]]
) -> None:
    write_annotations(podinfo, **{"jkctl.io/lease-seconds": "1", "jkctl.io/lease-renewed": "a"})
    started = time.monotonic()
    wrapper = start(podinfo, python("import time; time.sleep(60)"))
    processes.append(wrapper)
    _, stderr = wrapper.communicate(timeout=15)
    assert wrapper.returncode == 0
    assert "no daemon renewed this kernel's lease for 1s" in stderr
    assert time.monotonic() - started < 5


def test_renewals_keep_the_kernel_alive(
    podinfo: Path, processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    # `date +%s` has whole-second resolution, so a lease must be at least 2 s to be
    # told apart from renewals every 0.2 s.
    write_annotations(podinfo, **{"jkctl.io/lease-seconds": "2", "jkctl.io/lease-renewed": "0"})
    alive = tmp_path / "alive"
    wrapper = start(
        podinfo,
        python(f"import pathlib, time; pathlib.Path({str(alive)!r}).touch(); time.sleep(60)"),
    )
    processes.append(wrapper)
    wait_for(alive.exists)
    renewed_until = time.monotonic() + 2.5
    renewal = 0
    while time.monotonic() < renewed_until:
        renewal += 1
        write_annotations(
            podinfo, **{"jkctl.io/lease-seconds": "2", "jkctl.io/lease-renewed": str(renewal)}
        )
        assert wrapper.poll() is None, "the kernel stopped although its lease was renewed"
        time.sleep(0.2)  # the renewal cadence under test, not a wait for a condition
    wrapper.wait(timeout=15)  # renewals stop: the lease lapses
    assert wrapper.returncode == 0


def test_no_lease_annotation_means_no_expiry(
    podinfo: Path, processes: list[subprocess.Popen[str]]
) -> None:
    wrapper = start(podinfo, python("print('done')"))
    processes.append(wrapper)
    # An unannotated pod must not be stopped; a clean exit is a restart, and five
    # quick clean exits in a row mean a kernel that cannot stay up.
    _, stderr = wrapper.communicate(timeout=30)
    assert wrapper.returncode == 1
    assert stderr.count("exited cleanly; starting it again") == 4
    assert "keeps exiting at once; giving up" in stderr


def test_clean_exit_restarts_in_place(
    podinfo: Path, processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    code = (
        "import pathlib, time\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        "count = len(runs.read_text()) if runs.exists() else 0\n"
        "runs.write_text('x' * (count + 1))\n"
        "raise SystemExit(0) if count == 0 else time.sleep(60)\n"
    )
    wrapper = start(podinfo, python(code))
    processes.append(wrapper)
    wait_for(lambda: runs.exists() and runs.read_text() == "xx")
    assert wrapper.poll() is None


def test_lease_watcher_never_outlives_its_kernel(
    podinfo: Path, processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    wrapper = start(
        podinfo,
        python(f"import pathlib, time; pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"),
    )
    processes.append(wrapper)
    wait_for(ready.exists)
    group = os.getpgid(wrapper.pid)
    wrapper.kill()  # the wrapper dies hard, as if its container's pid 1 were killed alone
    wrapper.wait()
    members = [pid for pid in _pids() if _pgid(pid) == group]
    kernel = [pid for pid in members if "time.sleep(60)" in _cmdline(pid)]
    assert kernel, "the kernel should still run: only the wrapper was killed"
    os.kill(kernel[0], signal.SIGKILL)
    wait_for(lambda: not [pid for pid in _pids() if _pgid(pid) == group])


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_crash_ends_the_container_with_the_kernel_status(
    podinfo: Path, processes: list[subprocess.Popen[str]]
) -> None:
    wrapper = start(podinfo, python("raise SystemExit(3)"))
    processes.append(wrapper)
    wrapper.wait(timeout=10)
    assert wrapper.returncode == 3


def test_sigterm_reaches_the_kernel(
    podinfo: Path, processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    ready, got_term = tmp_path / "ready", tmp_path / "term"
    code = (
        "import pathlib, signal, time\n"
        f"signal.signal(signal.SIGTERM, lambda *_: (pathlib.Path({str(got_term)!r}).touch(), "
        "exit(0)))\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(60)\n"
    )
    wrapper = start(podinfo, python(code))
    processes.append(wrapper)
    wait_for(ready.exists)
    wrapper.send_signal(signal.SIGTERM)
    wrapper.wait(timeout=10)
    assert wrapper.returncode == 143
    assert got_term.exists()


# -- the output keeper ---------------------------------------------------------------

#: A stand-in kernel: publishes numbered lines on its connection file's iopub port.
PUBLISHER = """
import json, sys, time, zmq
info = json.load(open(sys.argv[1]))
open(sys.argv[2], "w").write(str(info["iopub_port"]))
pub = zmq.Context().socket(zmq.PUB)
pub.bind(f"tcp://127.0.0.1:{info['iopub_port']}")
i = 0
while True:
    i += 1
    pub.send_multipart([b"stream", b"<IDS|MSG>", str(i).encode()])
    time.sleep(0.01)
"""


def connection_json(tmp_path: Path) -> tuple[Path, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    path = tmp_path / "connection.json"
    path.write_text(json.dumps({"transport": "tcp", "ip": "127.0.0.1", "iopub_port": port}))
    return path, port


def iopub_port_the_kernel_binds(
    podinfo: Path,
    processes: list[subprocess.Popen[str]],
    tmp_path: Path,
    connection: Path,
    launcher: list[str],
    **options: Any,
) -> int:
    """Run PUBLISHER (after ``launcher``) under the wrapper; the iopub port it was given."""
    told = tmp_path / "port"
    wrapper = start(
        podinfo,
        [*launcher, PUBLISHER, str(connection), str(told)],
        connection_file=str(connection),
        **options,
    )
    processes.append(wrapper)
    wait_for(lambda: told.exists() and told.read_text() != "", seconds=15)
    return int(told.read_text())


def test_the_keeper_serves_the_kernels_iopub_and_ends_with_the_wrapper(
    podinfo: Path, processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    connection, port = connection_json(tmp_path)
    told = tmp_path / "port"
    wrapper = start(
        podinfo,
        [sys.executable, "-c", PUBLISHER, str(connection), str(told)],
        connection_file=str(connection),
    )
    processes.append(wrapper)
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.SUBSCRIBE, b"jkctl-resume:live")
    sub.connect(f"tcp://127.0.0.1:{port}")
    try:
        numbered = []
        deadline = time.monotonic() + 15
        while len(numbered) < 5:
            assert time.monotonic() < deadline, "no numbered output through the keeper"
            if sub.poll(100):
                frames = sub.recv_multipart()
                if len(frames) > 2:
                    assert frames[0].startswith(b"jkctl-seq:")
                    numbered.append(int(frames[-1]))
        assert numbered == list(range(numbered[0], numbered[0] + 5))
        assert told.read_text() != str(port)  # the kernel publishes to the keeper
    finally:
        sub.close()
        context.term()
    group = os.getpgid(wrapper.pid)
    wrapper.terminate()
    wrapper.wait(timeout=15)
    wait_for(lambda: not [pid for pid in _pids() if _pgid(pid) == group])


def test_without_pyzmq_the_kernel_gets_the_connection_file_as_it_is(
    podinfo: Path, processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    connection, port = connection_json(tmp_path)
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("python3", "python"):
        (fake / name).write_text("#!/bin/sh\nexit 3\n")  # as the keeper does without zmq
        (fake / name).chmod(0o755)
    # The kernel's argv starts with a shell, so the wrapper has only PATH's Pythons to try.
    exec_python = 'exec "$0" -c "$1" "$2" "$3"'
    told = iopub_port_the_kernel_binds(
        podinfo,
        processes,
        tmp_path,
        connection,
        [SHELL, "-c", exec_python, sys.executable],
        path=f"{fake}:{os.environ['PATH']}",
    )
    assert told == port


def test_the_keeper_can_be_turned_off(
    podinfo: Path, processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    connection, port = connection_json(tmp_path)
    told = iopub_port_the_kernel_binds(
        podinfo,
        processes,
        tmp_path,
        connection,
        [sys.executable, "-c"],
        extra_env={"KERNEL_OUTPUT_KEEPER": "0"},
    )
    assert told == port  # the kernel binds the iopub port itself
