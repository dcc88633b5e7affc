"""`jkctl disconnect`: stop the daemon, and with --stop-kernels its kernels too.

The daemon is asked over its API (``POST /jkctl/shutdown``), or with SIGTERM
if it does not answer; this command then waits until the daemon has released
its lock on the state folder, i.e. has really exited.
"""

from __future__ import annotations

import os
import signal

import click

from jkctl import paths
from jkctl.daemon.state import StateFiles, read_token, running_daemon, wait_until_stopped
from jkctl.errors import DaemonError

_STOP_TIMEOUT = 60.0


@click.command()
@click.option("--stop-kernels", is_flag=True, help="Also stop the kernels the daemon runs.")
def disconnect(stop_kernels: bool) -> None:
    """Stop the jkctl daemon (running kernels are left alone unless --stop-kernels)."""
    from jkctl.daemon.client import DaemonClient

    files = StateFiles(dir=paths.state_dir())
    record = running_daemon(files)
    if record is None:
        click.echo("jkctl: no daemon is running.", err=True)
        return
    client = DaemonClient(url=record.url, token=read_token(files))
    try:
        kernels = len(client.get("/api/kernels"))
        client.post("/jkctl/shutdown", {"stop_kernels": stop_kernels})
    except DaemonError:
        kernels = -1
        os.kill(record.pid, signal.SIGTERM)
    if not wait_until_stopped(files, timeout=_STOP_TIMEOUT):
        raise DaemonError(
            f"The jkctl daemon (pid {record.pid}) did not stop within {_STOP_TIMEOUT:.0f} seconds.",
            hint=f"Stop it by hand: kill {record.pid}",
        )
    click.echo(f"jkctl: stopped the daemon at {record.url} (pid {record.pid}).", err=True)
    if kernels > 0:
        one = kernels == 1
        these = "its kernel" if one else f"its {kernels} kernels"
        if record.backend == "local":
            click.echo(f"jkctl: {these} (local) stopped with it.", err=True)
        elif stop_kernels:
            click.echo(f"jkctl: {these} {'was' if one else 'were'} stopped.", err=True)
        else:
            click.echo(
                f"jkctl: {these} {'keeps' if one else 'keep'} running; `jkctl connect` "
                f"re-attaches {'it' if one else 'them'}.",
                err=True,
            )
