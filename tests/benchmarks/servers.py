"""The servers a benchmark run compares: jkctl daemons and the Jupyter Server reference.

Every server here speaks the same Jupyter REST and websocket API, so one
client drives them all (:mod:`tests.benchmarks.sessions`):

- ``jkctl local``: ``jkctl connect --foreground --backend local``;
- ``jkctl kubesim``: the same on the Kubernetes backend, against a kubesim
  cluster started for the run, as a user holding only jkctl's Role in a
  namespace of its own;
- ``jupyter_server``: Jupyter Server 2.x serving local kernels itself (the
  test extra's ``jupyter_server``), with its iopub rate limits off, so its
  throughput is comparable; ``jupyter_server (defaults)`` is the same with
  its default settings, measured only for how much output it delivers.

The benchmark kernelspec ``bench`` is the bundled ``python3`` with small pod
requests (10m CPU, 64Mi), so that 100 kernels fit on kubesim's 8-CPU node as
they would on a namespace sized for them; on the local backend it is the same
kernel as ``python3``.

Each server is started as a user starts it and waited for by what it prints.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.kube_users import jkctl_namespace
from tests.kubesim.fixture import Kubesim, run_kubesim
from tests.processes import (
    IPYKERNEL_ARGV,
    RunningDaemon,
    isolated_env,
    start_daemon,
    start_kube_daemon,
)

BENCH_SPEC = "bench"
BENCH_POD = {
    "jkctl": {
        "image": "quay.io/jupyter/base-notebook:2024-12-02",
        "resources": {
            "requests": {"cpu": "10m", "memory": "64Mi"},
            "limits": {"cpu": "2", "memory": "1Gi"},
        },
    }
}


@dataclass
class Server:
    """A running Jupyter-protocol server: where it is, how to reach it, its process."""

    name: str
    url: str
    token: str
    pid: int
    #: The environment a CLI talking to it runs with (jkctl daemons only).
    env: dict[str, str] = field(default_factory=dict)
    daemon: RunningDaemon | None = None
    process: subprocess.Popen[str] | None = None
    kubesim: Kubesim | None = None
    namespace: str = ""

    @property
    def is_jkctl(self) -> bool:
        return self.daemon is not None

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop(stop_kernels=True)
        elif self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=60)


def write_bench_kernelspec(folder: Path) -> Path:
    target = folder / BENCH_SPEC
    target.mkdir(parents=True, exist_ok=True)
    (target / "kernel.json").write_text(
        json.dumps(
            {
                "argv": IPYKERNEL_ARGV,
                "display_name": "Python 3 (benchmark)",
                "language": "python",
                "metadata": BENCH_POD,
            }
        )
    )
    return folder


def jkctl_local(root: Path, *extra: str, launcher: list[str] | None = None) -> Server:
    templates = write_bench_kernelspec(root / "templates")
    daemon = start_daemon(
        root, "--backend", "local", "--kernel-templates", str(templates), *extra, launcher=launcher
    )
    return Server(
        name="jkctl local",
        url=daemon.url,
        token=daemon.token,
        pid=daemon.process.pid,
        env=daemon.env,
        daemon=daemon,
    )


def jkctl_kubesim(
    root: Path,
    kubesim: Kubesim,
    *extra: str,
    name: str = "jkctl kubesim",
    prefix: str = "bench",
    launcher: list[str] | None = None,
) -> Server:
    templates = write_bench_kernelspec(root / "templates")
    namespace = jkctl_namespace(kubesim, prefix)
    daemon = start_kube_daemon(
        root, namespace, "--kernel-templates", str(templates), *extra, launcher=launcher
    )
    env = dict(daemon.env, KUBECONFIG=str(namespace.kubeconfig))
    return Server(
        name=name,
        url=daemon.url,
        token=daemon.token,
        pid=daemon.process.pid,
        env=env,
        daemon=daemon,
        kubesim=kubesim,
        namespace=namespace.name,
    )


@contextlib.contextmanager
def kubesim_cluster(root: Path) -> Iterator[Kubesim]:
    with run_kubesim(root / "kubesim") as cluster:
        yield cluster


_READY = "jkctl-bench: jupyter_server is listening"
_MAIN = f"""
import sys
from jupyter_server.serverapp import ServerApp
app = ServerApp.instance()
app.initialize(sys.argv[1:])
app.io_loop.add_callback(lambda: print({_READY!r}, file=sys.stderr, flush=True))
app.start()
"""


def jupyter_server(root: Path, *, defaults: bool = False) -> Server:
    """Jupyter Server 2.x on 127.0.0.1 serving local kernels (``python3`` and ``bench``)."""
    root.mkdir(parents=True, exist_ok=True)
    env = isolated_env(root)
    kernels = Path(env["JUPYTER_DATA_DIR"]) / "kernels"
    write_bench_kernelspec(kernels)
    python3 = kernels / "python3"
    python3.mkdir(parents=True, exist_ok=True)
    (python3 / "kernel.json").write_text(
        json.dumps({"argv": IPYKERNEL_ARGV, "display_name": "Python 3", "language": "python"})
    )
    port = _free_port()
    token = "bench-token"
    (root / "notebooks").mkdir(exist_ok=True)
    limits = [] if defaults else ["--ZMQChannelsWebsocketConnection.limit_rate=False"]
    log = (root / "jupyter_server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _MAIN,
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root / 'notebooks'}",
            "--ServerApp.open_browser=False",
            "--allow-root",
            *limits,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    ready = threading.Event()

    def read_log() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.write(line)
            if line.startswith(_READY):
                log.flush()
                ready.set()
        log.close()
        ready.set()

    threading.Thread(target=read_log, daemon=True).start()
    ready.wait(timeout=120)
    if process.poll() is not None or not ready.is_set():
        process.kill()
        raise RuntimeError(f"jupyter_server did not start; see {root / 'jupyter_server.log'}")
    return Server(
        name="jupyter_server (defaults)" if defaults else "jupyter_server",
        url=f"http://127.0.0.1:{port}",
        token=token,
        pid=process.pid,
        process=process,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
