"""`jkctl status`: is the daemon running, where, since when, and how many kernels.

``-o json`` prints the same as one object for scripts::

    {"daemon": {"pid": 1, "url": "...", "uptime_seconds": 3.0, "started_at": "...",
                "backend": "local", "version": "...", "log_file": "..."},
     "context": null, "namespace": null,
     "kernels": {"total": 2, "by_state": {"idle": 1, "busy": 1}}}

With no daemon running, ``daemon`` and ``kernels`` are null.
"""

from __future__ import annotations

import datetime
import json
from collections import Counter
from typing import Any

import click

from jkctl import paths
from jkctl.daemon.state import StateFiles, read_token, running_daemon


@click.command()
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
def status(output: str) -> None:
    """Show whether the daemon runs, its URL, uptime, backend and kernel counts."""
    report = _report(StateFiles(dir=paths.state_dir()))
    if output == "json":
        click.echo(json.dumps(report, indent=2))
        return
    daemon = report["daemon"]
    if daemon is None:
        click.echo("daemon   not running (start it with `jkctl connect`)")
        return
    kernels = report["kernels"]
    states = ", ".join(f"{n} {state}" for state, n in sorted(kernels["by_state"].items()))
    rows = [
        ("daemon", f"running, pid {daemon['pid']}, up {_duration(daemon['uptime_seconds'])}"),
        ("url", daemon["url"]),
        ("backend", daemon["backend"]),
        ("context", report["context"] or "-"),
        ("namespace", report["namespace"] or "-"),
        ("kernels", f"{kernels['total']}" + (f" ({states})" if states else "")),
        ("log", daemon["log_file"]),
    ]
    for label, value in rows:
        click.echo(f"{label:<10}{value}")


def _report(files: StateFiles) -> dict[str, Any]:
    from jkctl.daemon.client import DaemonClient

    record = running_daemon(files)
    if record is None:
        return {"daemon": None, "context": None, "namespace": None, "kernels": None}
    started = datetime.datetime.fromisoformat(record.started_at)
    uptime = (datetime.datetime.now(datetime.UTC) - started).total_seconds()
    kernels = DaemonClient(url=record.url, token=read_token(files)).get("/api/kernels")
    by_state = Counter(str(kernel.get("execution_state")) for kernel in kernels)
    return {
        "daemon": {
            "pid": record.pid,
            "url": record.url,
            "uptime_seconds": round(uptime, 1),
            "started_at": record.started_at,
            "backend": record.backend,
            "version": record.version,
            "log_file": record.log_file,
        },
        "context": record.context,
        "namespace": record.namespace,
        "kernels": {"total": len(kernels), "by_state": dict(by_state)},
    }


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
