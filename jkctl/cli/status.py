"""`jkctl status`: is the daemon running, where, since when, what it serves, and its kernels.

The daemon answers for itself (``GET /jkctl/v1/status``). ``-o json`` prints
the same as one object for scripts::

    {"daemon": {"pid": 1, "url": "...", "uptime_seconds": 3.0, "started_at": "...",
                "backend": "kubernetes", "version": "...", "log_file": "..."},
     "context": "geo", "namespace": "geo",
     "kernels": {"total": 2, "by_state": {"idle": 1, "busy": 1}},
     "culling": {"idle_timeout_seconds": 0, "disconnected_timeout_seconds": 7200},
     "lease_seconds": 7200}

With no daemon running, ``daemon`` and ``kernels`` are null (`jkctl kernels
list` still finds kernels in the cluster then).
"""

from __future__ import annotations

from typing import Any

import click

from jkctl import paths
from jkctl.cli.output import emit
from jkctl.daemon.state import StateFiles, read_token, running_daemon
from jkctl.durations import say_duration


@click.command()
@click.option("-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text")
def status(output: str) -> None:
    """Show whether the daemon runs, its URL, uptime, backend and kernel counts."""
    report = _report(StateFiles(dir=paths.state_dir()))
    if output != "text":
        emit(report, output)
        return
    daemon = report["daemon"]
    if daemon is None:
        click.echo("daemon    not running (start it with `jkctl connect`)")
        return
    kernels = report["kernels"]
    states = ", ".join(f"{n} {state}" for state, n in sorted(kernels["by_state"].items()))
    culling = report.get("culling") or {}
    rows = [
        ("daemon", f"running, pid {daemon['pid']}, up {say_duration(daemon['uptime_seconds'])}"),
        ("url", daemon["url"]),
        ("backend", daemon["backend"]),
        ("context", report["context"] or "-"),
        ("namespace", report["namespace"] or "-"),
        ("kernels", f"{kernels['total']}" + (f" ({states})" if states else "")),
        ("culling", _culling(culling)),
    ]
    if report.get("lease_seconds"):
        rows.append(("lease", f"{say_duration(report['lease_seconds'])} without a renewal"))
    rows.append(("log", daemon["log_file"]))
    for label, value in rows:
        click.echo(f"{label:<10}{value}")


def _culling(culling: dict[str, Any]) -> str:
    def rule(seconds: float | None) -> str:
        return f"after {say_duration(seconds)} idle" if seconds else "never"

    return (
        f"disconnected kernels {rule(culling.get('disconnected_timeout_seconds'))}, "
        f"connected ones {rule(culling.get('idle_timeout_seconds'))}"
    )


def _report(files: StateFiles) -> dict[str, Any]:
    from jkctl.daemon.client import DaemonClient

    record = running_daemon(files)
    if record is None:
        return {"daemon": None, "context": None, "namespace": None, "kernels": None}
    report: dict[str, Any] = DaemonClient(url=record.url, token=read_token(files)).get(
        "/jkctl/v1/status"
    )
    return report
