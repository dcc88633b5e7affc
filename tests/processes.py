"""Real processes the tests and benchmarks drive: a jkctl daemon, a Jupyter Server gateway.

Both are started as a user would start them and waited for by reading what
they print (no sleeps): the daemon's ``jupyter lab --gateway-url`` line on
stdout, Jupyter Server's "is running at" log line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.kube_users import Namespace

LAB_LINE = re.compile(r"^jupyter lab --gateway-url=(\S+) --GatewayClient\.auth_token=(\S+)$")


def isolated_env(root: Path) -> dict[str, str]:
    """An environment whose jkctl and Jupyter folders are under ``root``, with no kubeconfig."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JKCTL_", "JUPYTER_"))}
    env.pop("KUBECONFIG", None)
    env.update(
        HOME=str(root / "home"),
        JKCTL_STATE_DIR=str(root / "state"),
        JKCTL_DATA_DIR=str(root / "data"),
        JKCTL_CONFIG_DIR=str(root / "config"),
        JUPYTER_CONFIG_DIR=str(root / "jupyter-config"),
        JUPYTER_DATA_DIR=str(root / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(root / "jupyter-runtime"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    (root / "home").mkdir(parents=True, exist_ok=True)
    return env


@dataclass
class RunningDaemon:
    process: subprocess.Popen[str]
    url: str
    token: str
    root: Path
    env: dict[str, str]
    backend: str = "local"
    #: The kubesim namespace (and user) of a Kubernetes daemon.
    kube: Any = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None

    def kernel_gone(self, kernel_id: str, pid: int) -> bool:
        """Whether a kernel that was shut down left nothing: its process (local, by the pid
        it reported), or its pod and Secret (Kubernetes)."""
        if self.backend == "local":
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False
        return not self.kube.leftovers(f"jkctl.io/kernel-id={kernel_id}")

    def stop(self, *, stop_kernels: bool = False) -> None:
        """Stop the daemon (SIGTERM, or asking it to stop its kernels too)."""
        if stop_kernels:
            self.request("POST", "/jkctl/shutdown", {"stop_kernels": True})
        else:
            self.process.terminate()
        self.process.wait(timeout=60)
        assert self.process.stdout is not None
        self.process.stdout.close()


def start_daemon(
    root: Path,
    *extra: str,
    env_overrides: dict[str, str] | None = None,
    launcher: list[str] | None = None,
) -> RunningDaemon:
    """``jkctl connect --foreground`` in ``root``; returns once it printed its line.

    ``launcher`` replaces ``python -m jkctl`` (e.g. to run it under cProfile).
    """
    env = isolated_env(root)
    env.update(env_overrides or {})
    log = open(root / "daemon-foreground.log", "w")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        [
            *(launcher or [sys.executable, "-m", "jkctl"]),
            "connect",
            "--foreground",
            "--port",
            "0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    log.close()
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    match = LAB_LINE.match(line)
    if not match:
        process.kill()
        process.wait()
        raise RuntimeError(
            f"daemon did not start: {line!r}\n{(root / 'daemon-foreground.log').read_text()}"
        )
    return RunningDaemon(process=process, url=match[1], token=match[2], root=root, env=env)


def start_kube_daemon(
    root: Path,
    namespace: Namespace,
    *extra: str,
    env_overrides: dict[str, str] | None = None,
    launcher: list[str] | None = None,
) -> RunningDaemon:
    """A daemon on the Kubernetes backend serving ``namespace`` as its user."""
    daemon = start_daemon(
        root,
        *("--backend", "kubernetes", "--kubeconfig", str(namespace.kubeconfig)),
        *("--namespace", namespace.name, *extra),
        env_overrides=env_overrides,
        launcher=launcher,
    )
    daemon.backend, daemon.kube = "kubernetes", namespace
    return daemon


def write_kernelspec(folder: Path, name: str, **spec: Any) -> Path:
    """A kernelspec folder ``folder/name`` with the given kernel.json fields."""
    target = folder / name
    target.mkdir(parents=True, exist_ok=True)
    spec.setdefault("display_name", name)
    spec.setdefault("language", "python")
    (target / "kernel.json").write_text(json.dumps(spec))
    return target


IPYKERNEL_ARGV = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


_READY = "jkctl-test: jupyter_server is listening"
#: Jupyter Server's own entry point, plus one line once it listens: it binds its
#: socket in the first callback of its event loop, after logging "is running at".
_JUPYTER_SERVER_MAIN = f"""
import sys
from jupyter_server.serverapp import ServerApp
app = ServerApp.instance()
app.initialize(sys.argv[1:])
app.io_loop.add_callback(lambda: print({_READY!r}, file=sys.stderr, flush=True))
app.start()
"""


@dataclass
class RunningJupyterServer:
    process: subprocess.Popen[str]
    socket_path: Path
    token: str
    log: list[str]
    reader: threading.Thread

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.reader.join(timeout=60)
        assert self.process.stderr is not None
        self.process.stderr.close()


def start_jupyter_server(root: Path, daemon: RunningDaemon) -> RunningJupyterServer:
    """A real Jupyter Server using the daemon as its gateway, on a Unix socket."""
    env = isolated_env(root)
    socket_path = root / "jupyter.sock"
    token = "jupyter-test-token"
    (root / "notebooks").mkdir(exist_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _JUPYTER_SERVER_MAIN,
            f"--gateway-url={daemon.url}",
            f"--GatewayClient.auth_token={daemon.token}",
            f"--ServerApp.sock={socket_path}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root / 'notebooks'}",
            "--ServerApp.open_browser=False",
            "--allow-root",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    log: list[str] = []
    ready = threading.Event()

    def read_log() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            if line.startswith(_READY):
                ready.set()
        ready.set()

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    ready.wait()
    if process.poll() is not None:
        reader.join()
        assert process.stderr is not None
        process.stderr.close()
        raise RuntimeError("jupyter_server did not start:\n" + "".join(log))
    return RunningJupyterServer(
        process=process, socket_path=socket_path, token=token, log=log, reader=reader
    )
