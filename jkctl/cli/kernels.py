"""`jkctl kernels list|describe|logs|stop`: the kernels you have, wherever they run.

Where the answers come from, said on stderr every time:

- a daemon runs for this state folder (and the target flags, if given, name
  its cluster and namespace): it is asked (``/jkctl/v1/...``), which adds
  what only it knows: idle or busy, connections, last activity to the
  second; the CLI does not log in to Kubernetes at all;
- no daemon runs: the kernel pods are read from the cluster by their
  labels, with the user's kubeconfig (:mod:`jkctl.kernels.cluster`); the
  pods of this state folder's daemon, the ones `jkctl connect` would
  re-attach. Connections are unknown then, and last activity is the one
  the daemon last recorded on the pod;
- no daemon and no kubeconfig: kernels run inside the daemon on this
  machine, so none run.

Ids are shown short (8 characters) and any unique prefix is accepted.
`stop` asks before stopping more than one kernel unless ``--yes``.
Results on stdout (a table, or ``-o json|yaml``), notes and questions on
stderr.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from jkctl.cli.cluster import cluster_options
from jkctl.cli.kernel_sources import choose_source
from jkctl.cli.output import emit, output_option
from jkctl.durations import parse_duration, say_duration
from jkctl.errors import JkctlError, UsageError
from jkctl.kernels.ids import resolve_kernel_id, short_id

_ALL_NAMESPACES = click.option(
    "-A", "--all-namespaces", is_flag=True, help="Kernels in every namespace, not just one."
)


@click.group("kernels")
def kernels() -> None:
    """List, inspect, follow and stop your kernels."""


# -- list ------------------------------------------------------------------------------------


@kernels.command("list")
@_ALL_NAMESPACES
@cluster_options
@output_option("table")
def list_(
    *,
    all_namespaces: bool,
    kubeconfig: Path | None,
    kube_context: str | None,
    namespace: str | None,
    output: str,
) -> None:
    """List your kernels: state, pod, node, age, activity, connections, resources."""
    source = choose_source(kubeconfig, kube_context, namespace)
    _note(source.origin)
    listing = source.listing(all_namespaces=all_namespaces)
    for note in listing.get("notes") or []:
        _note(f"note: {note}")
    if output != "table":
        emit(listing, output)
        return
    rows = listing["kernels"]
    if not rows:
        elsewhere = listing.get("backend") == "kubernetes" and not all_namespaces
        _note("no kernels" + (" (-A looks in every namespace)" if elsewhere else "") + ".")
    else:
        _table(rows, namespaces=all_namespaces)
    team = listing.get("team")
    if team:
        click.echo(team["summary"])


def _table(rows: list[dict[str, Any]], *, namespaces: bool) -> None:
    now = time.time()
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = ["ID", "KERNELSPEC", "STATE", "POD", "NODE", "AGE", "LAST ACTIVITY", "CONN"]
    columns = (["NAMESPACE"] if namespaces else []) + columns + ["CPU", "MEMORY", "GPU"]
    for column in columns:
        table.add_column(column, no_wrap=column != "STATE")
    for row in rows:
        requests = row.get("requests") or {}
        local = row["backend"] == "local"
        cells = [
            short_id(row["id"]),
            row["kernelspec"],
            _state(row),
            f"none (pid {row['pid']})" if local else row["pod"] or "-",
            "this machine" if local else row["node"] or "-",
            _ago(row.get("created"), now, suffix=""),
            _ago(row.get("last_activity"), now),
            "-" if row.get("connections") is None else str(row["connections"]),
            requests.get("cpu") or "-",
            requests.get("memory") or "-",
            requests.get("gpu") or "-",
        ]
        if namespaces:
            cells.insert(0, row.get("namespace") or "-")
        table.add_row(*(escape(cell) for cell in cells))
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = 1000  # a pipe or a file gets whole rows, as kubectl prints them
    console.print(table)


def _state(row: dict[str, Any]) -> str:
    return f"{row['state']}: {row['reason']}" if row.get("reason") else str(row["state"])


def _ago(stamp: str | None, now: float, *, suffix: str = " ago") -> str:
    if not stamp:
        return "-"
    import datetime

    moment = datetime.datetime.fromisoformat(stamp).timestamp()
    return say_duration(now - moment) + suffix


# -- describe --------------------------------------------------------------------------------


@kernels.command()
@click.argument("kernel_id", metavar="ID")
@_ALL_NAMESPACES
@click.option(
    "--log-lines", type=click.IntRange(min=0), default=20, show_default=True, help="Log lines."
)
@cluster_options
@output_option("text")
def describe(
    *,
    kernel_id: str,
    all_namespaces: bool,
    log_lines: int,
    kubeconfig: Path | None,
    kube_context: str | None,
    namespace: str | None,
    output: str,
) -> None:
    """Show one kernel: pod, node, image, resources, lease, events, last log lines."""
    source = choose_source(kubeconfig, kube_context, namespace)
    _note(source.origin)
    details = source.describe(kernel_id, all_namespaces=all_namespaces, log_lines=log_lines)
    if output != "text":
        emit(details, output)
        return
    _print_details(details)


def _print_details(model: dict[str, Any]) -> None:
    now = time.time()

    def amounts(found: dict[str, Any] | None) -> str:
        shown = ", ".join(f"{k} {v}" for k, v in (found or {}).items() if v)
        return shown or "-"

    lease = model.get("lease")
    renewed = lease and lease.get("renewed")
    rows = [
        ("Kernel", model["id"]),
        ("Kernelspec", model["kernelspec"]),
        ("State", _state(model)),
        ("Backend", model["backend"]),
        ("Namespace", model.get("namespace") or "-"),
        ("Pod", model.get("pod") or f"none (pid {model.get('pid')})"),
        ("Node", model.get("node") or "-"),
        ("Phase", model.get("phase") or "-"),
        ("Image", model.get("image") or "-"),
        ("Created", _when(model.get("created"), now)),
        ("Last activity", _when(model.get("last_activity"), now)),
        (
            "Connections",
            "unknown (no daemon)" if model.get("connections") is None else model["connections"],
        ),
        ("Requests", amounts(model.get("requests"))),
        ("Limits", amounts(model.get("limits"))),
        (
            "Lease",
            f"{say_duration(lease['seconds'])}, renewed {_when(renewed, now)}" if lease else "-",
        ),
    ]
    if "cull_at" in model:  # a daemon serves it
        cull_at = model["cull_at"]
        rows.append(
            ("Culled", f"at {cull_at} if it stays idle" if cull_at else "not now (busy, or off)")
        )
    elif lease and renewed and model["state"] not in ("ended",):
        ends = _ago(renewed, now + 0.0)
        rows.append(
            (
                "Ends",
                f"when its lease lapses, {say_duration(lease['seconds'])} after "
                f"its last renewal ({ends}), unless a daemon renews it",
            )
        )
    for label, value in rows:
        click.echo(f"{label + ':':<15}{value}")
    events = model.get("events") or []
    click.echo("Events:" + ("" if events else " none"))
    for event in events:
        times = f" (x{event['count']})" if event.get("count", 1) > 1 else ""
        click.echo(
            f"  {_ago(event.get('time'), now):<10} {event['type']:<8} {event['reason']:<18} "
            f"{event['message']}{times}"
        )
    log = model.get("log") or []
    click.echo(f"Log (last {len(log)} lines):" if log else "Log: empty")
    for line in log:
        click.echo(f"  {line}")
    for note in model.get("notes") or []:
        _note(f"note: could not read {note}")


def _when(stamp: str | None, now: float) -> str:
    return f"{stamp} ({_ago(stamp, now)})" if stamp else "-"


# -- logs ------------------------------------------------------------------------------------


@kernels.command()
@click.argument("kernel_id", metavar="ID")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until it ends.")
@click.option("--tail", type=click.IntRange(min=0), default=None, help="Only the last N lines.")
@_ALL_NAMESPACES
@cluster_options
def logs(
    *,
    kernel_id: str,
    follow: bool,
    tail: int | None,
    all_namespaces: bool,
    kubeconfig: Path | None,
    kube_context: str | None,
    namespace: str | None,
) -> None:
    """Print a kernel's output (its container's log); -f follows it."""
    source = choose_source(kubeconfig, kube_context, namespace)
    _note(source.origin)
    source.logs(
        kernel_id,
        all_namespaces=all_namespaces,
        follow=follow,
        tail=tail,
        write=click.echo,
    )


# -- stop ------------------------------------------------------------------------------------


@kernels.command()
@click.argument("kernel_ids", metavar="[ID]...", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Stop every kernel listed.")
@click.option(
    "--idle",
    metavar="DURATION",
    default=None,
    help="Stop kernels idle at least this long (30m, 2h, 1d). Without a daemon, idle "
    "means no activity recorded on the pod for that long.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before stopping several kernels.")
@_ALL_NAMESPACES
@cluster_options
def stop(
    *,
    kernel_ids: tuple[str, ...],
    every: bool,
    idle: str | None,
    yes: bool,
    all_namespaces: bool,
    kubeconfig: Path | None,
    kube_context: str | None,
    namespace: str | None,
) -> None:
    """Stop kernels: IDs (unique prefixes), --all, or those --idle for a DURATION."""
    if kernel_ids and every:
        raise UsageError("Give kernel ids or --all, not both.", hint="Drop one of them.")
    if not (kernel_ids or every or idle):
        raise UsageError(
            "Say which kernels to stop.", hint="Give their ids, --all, or --idle DURATION."
        )
    idle_seconds = _duration(idle) if idle is not None else None
    source = choose_source(kubeconfig, kube_context, namespace)
    _note(source.origin)
    rows = source.listing(all_namespaces=all_namespaces)["kernels"]
    chosen = _choose(rows, kernel_ids, idle_seconds=idle_seconds)
    if not chosen:
        _note("no kernels to stop" + (f" (none idle for {idle})." if idle else "."))
        return
    if len(chosen) > 1 and not yes:
        for row in chosen:
            _note(f"  {short_id(row['id'])}  {row['kernelspec']:<16} {_state(row)}")
        click.confirm(f"Stop these {len(chosen)} kernels?", abort=True, err=True)
    result = source.stop([row["id"] for row in chosen], all_namespaces=all_namespaces)
    for kernel_id in result["stopped"]:
        click.echo(f"stopped {short_id(kernel_id)}")
    for failure in result["failed"]:
        error = JkctlError.from_payload(failure["error"])
        _note(f"could not stop {short_id(failure['id'])}: {error.message}")
    if result["failed"]:
        count = len(result["failed"])
        raise JkctlError(
            f"{count} of {len(chosen)} kernels could not be stopped.",
            hint="The messages above say why; `jkctl kernels list` shows what is left.",
        )


def _choose(
    rows: list[dict[str, Any]], prefixes: Iterable[str], *, idle_seconds: float | None
) -> list[dict[str, Any]]:
    by_id = {row["id"]: row for row in rows}
    wanted = list(prefixes)
    if wanted:
        chosen = [by_id[resolve_kernel_id(prefix, by_id)] for prefix in wanted]
    else:
        chosen = list(rows)
    if idle_seconds is not None:
        now = time.time()
        chosen = [row for row in chosen if _idle_for(row, now) >= idle_seconds]
    unique: dict[str, dict[str, Any]] = {row["id"]: row for row in chosen}
    return list(unique.values())


def _idle_for(row: dict[str, Any], now: float) -> float:
    """How long a kernel has been idle, as far as one can tell; -1: not idle."""
    if row["state"] not in ("idle", "running", "ended"):
        return -1.0
    stamp = row.get("last_activity") or row.get("created")
    if not stamp:
        return -1.0
    import datetime

    return now - datetime.datetime.fromisoformat(stamp).timestamp()


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--idle: {exc}.", hint="Write e.g. --idle 2h or --idle 30m.") from None


# -- notes on stderr ----------------------------------------------------------------------


def _note(text: str) -> None:
    click.echo(f"jkctl: {text}" if not text.startswith("  ") else text, err=True)
