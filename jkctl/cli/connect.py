"""`jkctl connect`: start the daemon (or reuse the running one) and print how to use it.

On Kubernetes it also says the team's quota (used / hard, from the
namespace's ResourceQuotas) and warns when a kernel of the default
kernelspec would not fit now.

Status goes to stderr; stdout carries exactly one line, the command to run:
``jupyter lab --gateway-url=http://127.0.0.1:PORT --GatewayClient.auth_token=TOKEN``.

By default the daemon is started detached (its own session, output in the
log file) and this command waits on a pipe until the daemon says it is
serving, or why it could not start (for the Kubernetes backend: the cluster
cannot be reached, the credentials are rejected, or the user lacks a
permission -- said in one sentence). ``--foreground`` runs it in this process
instead. A daemon already running on the same state folder is reused when it
serves the same backend, context and namespace (resolved from the kubeconfig
when not given: its current context and that context's namespace).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import select
import sys
import time
from pathlib import Path
from typing import Any

import click

from jkctl.daemon.settings import DaemonSettings, resolve_settings
from jkctl.daemon.state import DaemonRecord, StateFiles, read_token, running_daemon
from jkctl.errors import DaemonError, DaemonNotRunning, ErrorPayload, JkctlError, UsageError

_START_TIMEOUT = 60.0


@click.command()
@click.option("--foreground", is_flag=True, help="Run the daemon in this terminal (debugging).")
@click.option(
    "--port", type=int, default=None, help="Port on 127.0.0.1; 0 (default) picks a free one."
)
@click.option(
    "--backend",
    type=click.Choice(["local", "kubernetes"]),
    default=None,
    help="Where kernels run (default: kubernetes if a kubeconfig exists, else local).",
)
@click.option(
    "--kernel-templates",
    "kernel_templates",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Extra kernelspec folder (repeatable); searched before the others.",
)
@click.option("--context", default=None, help="Kubeconfig context (default: the current one).")
@click.option("--namespace", "-n", default=None, help="Namespace (default: the context's).")
@click.option(
    "--kubeconfig", default=None, help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."
)
@click.option(
    "--warm-pool",
    "warm_pool",
    multiple=True,
    metavar="KERNELSPEC=SIZE",
    help="Keep SIZE kernels of KERNELSPEC started ahead of time (repeatable; default none).",
)
@click.option(
    "--node-wait",
    "node_wait",
    default=None,
    metavar="DURATION",
    help="On clusters that add nodes on demand: how long a kernel that no node fits waits "
    "for one (e.g. 10m; default: it fails at once).",
)
@click.option("--lab", is_flag=True, help="Then start JupyterLab wired to the daemon.")
def connect(
    *,
    foreground: bool,
    port: int | None,
    backend: str | None,
    kernel_templates: tuple[Path, ...],
    context: str | None,
    namespace: str | None,
    kubeconfig: str | None,
    warm_pool: tuple[str, ...],
    node_wait: str | None,
    lab: bool,
) -> None:
    """Start the jkctl daemon and print the `jupyter lab` line that uses it."""
    if lab and foreground:
        raise UsageError(
            "--lab and --foreground cannot be combined.",
            hint="Run `jkctl connect --foreground` in one terminal, the printed line in another.",
        )
    settings = resolve_settings(
        flags={
            "port": port,
            "backend": backend,
            "kernel_templates": kernel_templates,
            "context": context,
            "namespace": namespace,
            "kubeconfig": kubeconfig,
            "warm_pool": warm_pool,
            "node_wait": node_wait,
        }
    )
    files = StateFiles(dir=settings.state_dir)
    running = running_daemon(files)
    if running is not None:
        record, token = _reuse(running, settings, files)
    else:
        click.echo(f"jkctl: {_describe(settings)}.", err=True)
        if foreground:
            _run_in_foreground(settings)
            return
        record, token = _start_detached(settings, files)
        click.echo(
            f"jkctl: daemon running at {record.url} (pid {record.pid}); log: {record.log_file}",
            err=True,
        )
    _check_answers(record, token)
    if record.backend == "kubernetes":
        _say_quota(record, token)
    line = lab_command(record.url, token)
    click.echo(line)
    if lab:
        _start_lab(record.url, token)


def lab_command(url: str, token: str) -> str:
    return f"jupyter lab --gateway-url={url} --GatewayClient.auth_token={token}"


def _reuse(
    running: DaemonRecord, settings: DaemonSettings, files: StateFiles
) -> tuple[DaemonRecord, str]:
    wanted = (settings.backend, settings.context, settings.namespace)
    if (running.backend, running.context, running.namespace) != wanted:
        target = _target(running.backend, running.context, running.namespace)
        raise DaemonError(
            f"A jkctl daemon for another target ({target}) is already running at {running.url}.",
            hint="Run `jkctl disconnect` first, or use another JKCTL_STATE_DIR.",
        )
    click.echo(
        f"jkctl: reusing the daemon at {running.url} "
        f"(pid {running.pid}, {running.backend} backend).",
        err=True,
    )
    return running, read_token(files)


def _describe(settings: DaemonSettings) -> str:
    described = f"{settings.backend} backend ({settings.backend_reason})"
    if settings.backend == "kubernetes":
        described += f", context {settings.context}, namespace {settings.namespace}"
    if settings.warm_pool:
        pools = ", ".join(f"{size} {name}" for name, size in settings.warm_pool)
        described += f"; warm pool: {pools}"
    return described


def _target(backend: str, context: str | None, namespace: str | None) -> str:
    if backend == "local":
        return "local backend"
    return f"context {context or 'current'}, namespace {namespace or 'default'}"


def _run_in_foreground(settings: DaemonSettings) -> None:
    import asyncio
    import logging

    from jkctl.daemon.server import run_daemon

    logging.getLogger("jkctl").setLevel(logging.INFO)

    def ready(record: DaemonRecord, token: str) -> None:
        click.echo(
            f"jkctl: daemon running at {record.url} (pid {record.pid}); Ctrl-C stops it.", err=True
        )
        click.echo(lab_command(record.url, token))
        sys.stdout.flush()

    asyncio.run(run_daemon(settings, on_ready=ready))


def _start_detached(settings: DaemonSettings, files: StateFiles) -> tuple[DaemonRecord, str]:
    files.ensure()
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    log_fd = os.open(files.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    argv = [
        sys.executable,
        "-m",
        "jkctl.daemon",
        "--settings",
        settings.to_json(),
        "--ready-fd",
        str(write_end),
    ]
    try:
        pid = os.posix_spawn(
            sys.executable,
            argv,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(write_end)
        os.close(log_fd)
    try:
        message = _read_message(read_end, timeout=_START_TIMEOUT)
    finally:
        os.close(read_end)
    if "ready" in message:
        return DaemonRecord(**message["ready"]), read_token(files)
    _reap(pid)
    if "error" in message:
        payload: ErrorPayload = message["error"]
        raise JkctlError.from_payload(payload)
    raise DaemonError(
        "The jkctl daemon exited while starting.",
        context=_log_tail(files.log_file),
        hint=f"The log has the details: {files.log_file}",
    )


def _read_message(fd: int, *, timeout: float) -> dict[str, Any]:
    """The daemon's one JSON line on the ready pipe ({} if it closed without one)."""
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DaemonError(
                f"The jkctl daemon did not start within {timeout:.0f} seconds.",
                hint="See its log; `jkctl disconnect` stops it if it is still starting.",
            )
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    try:
        message = json.loads(data) if data.strip() else {}
    except ValueError:
        message = {}
    return message if isinstance(message, dict) else {}


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n  ".join(text.strip().splitlines()[-lines:])


def _check_answers(record: DaemonRecord, token: str) -> None:
    from jkctl.daemon.client import DaemonClient

    try:
        DaemonClient(url=record.url, token=token).get("/api")
    except DaemonNotRunning as exc:
        raise DaemonError(
            f"The jkctl daemon at {record.url} (pid {record.pid}) runs but does not answer.",
            hint=f"Stop it with `jkctl disconnect` (or `kill {record.pid}`), then connect again.",
        ) from exc


def _say_quota(record: DaemonRecord, token: str) -> None:
    """The team's quota, used / hard, and a warning if a default kernel would not fit now."""
    from jkctl.daemon.client import DaemonClient

    try:
        quota = DaemonClient(url=record.url, token=token).get("/jkctl/v1/quota")
    except JkctlError as error:
        click.echo(f"jkctl: note: the team's quota could not be read: {error.message}", err=True)
        return
    team = quota.get("team")
    if not team:
        return
    click.echo(f"jkctl: {team['summary']}.", err=True)
    if quota.get("shortfalls"):
        click.echo(
            f"jkctl: warning: a new {quota['kernelspec']} kernel would not fit now: "
            + "; ".join(quota["shortfalls"])
            + ". Stop kernels you no longer need (`jkctl kernels list`), or start a smaller one.",
            err=True,
        )


def _start_lab(url: str, token: str) -> None:
    if importlib.util.find_spec("jupyterlab") is None:
        raise JkctlError(
            "JupyterLab is not installed in this Python environment; the daemon keeps running.",
            hint="Install it with `pip install jupyterlab`, then run the `jupyter lab` line above.",
        )
    sys.stdout.flush()
    os.execv(
        sys.executable,
        [
            sys.executable,
            "-m",
            "jupyterlab",
            f"--gateway-url={url}",
            f"--GatewayClient.auth_token={token}",
        ],
    )
