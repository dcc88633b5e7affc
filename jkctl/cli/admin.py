"""`jkctl admin`: a cluster admin divides the cluster among teams.

::

    jkctl admin team create geo --cpu 64 --memory 256Gi --gpu 4 [--max-kernels 40]
        [--default-kernel-cpu 1 --default-kernel-memory 4Gi]
        [--members alice,bob] [--group geo-team]
    jkctl admin team update geo --gpu 8
    jkctl admin team list [-o json|yaml]
    jkctl admin team delete geo [--force] [--yes]
    jkctl admin team kubeconfig geo --user alice [--expiration 24h] > alice.kubeconfig
    jkctl admin render team geo --cpu 64 --memory 256Gi ... [-o yaml|json]

Thin, like every command: options become a :class:`~jkctl.admin.spec.TeamSpec`
or :class:`~jkctl.admin.spec.TeamOptions`, :mod:`jkctl.admin` does the work.
Results go to stdout (the objects applied, kubectl-style; the team table or
its JSON; the kubeconfig; the rendered manifests), status and questions to
stderr.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from jkctl.admin.spec import TeamOptions, TeamSpec, team_spec
from jkctl.kube import amounts

if TYPE_CHECKING:
    from jkctl.admin.teams import TeamStatus
    from jkctl.kube.client import KubeClient
    from jkctl.kube.login import KubeconfigLogin
    from jkctl.kube.quota import QuotaLine

T = TypeVar("T")
Command = Callable[..., Any]


def _connection(command: Command) -> Command:
    command = click.option(
        "--context", default=None, help="Kubeconfig context (default: the current one)."
    )(command)
    return click.option(
        "--kubeconfig", default=None, help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."
    )(command)


def _team_options(command: Command) -> Command:
    options = [
        click.option(
            "--group",
            "groups",
            multiple=True,
            metavar="GROUP",
            help="A group whose users are members (repeatable); replaces the groups on update.",
        ),
        click.option(
            "--members",
            multiple=True,
            metavar="USER,...",
            help="Users who may run kernels, comma-separated; replaces the members on update.",
        ),
        click.option(
            "--default-kernel-memory",
            metavar="SIZE",
            help="Memory for a kernel that asks for none (default: 4Gi, at most the team's).",
        ),
        click.option(
            "--default-kernel-cpu",
            metavar="CPUS",
            help="CPUs for a kernel that asks for none (default: 1, at most the team's).",
        ),
        click.option(
            "--max-kernels",
            type=int,
            metavar="N",
            help="Most pods (kernels) at once (default: no limit).",
        ),
        click.option(
            "--gpu", metavar="N", help="NVIDIA GPUs the team may use at once (default: 0)."
        ),
        click.option(
            "--memory",
            metavar="SIZE",
            help="Memory the team's kernels may use in all, such as 256Gi.",
        ),
        click.option(
            "--cpu", metavar="CPUS", help="CPUs the team's kernels may use in all, such as 64."
        ),
    ]
    for option in options:
        command = option(command)
    return command


def _options(values: dict[str, Any]) -> TeamOptions:
    return TeamOptions(
        cpu=values["cpu"],
        memory=values["memory"],
        gpu=values["gpu"],
        max_kernels=values["max_kernels"],
        default_kernel_cpu=values["default_kernel_cpu"],
        default_kernel_memory=values["default_kernel_memory"],
        members=values["members"] or None,
        groups=values["groups"] or None,
    )


def _login(kubeconfig: str | None, context: str | None) -> KubeconfigLogin:
    from jkctl.kube.login import kubeconfig_login

    return kubeconfig_login(kubeconfig=Path(kubeconfig) if kubeconfig else None, context=context)


def _run(
    kubeconfig: str | None,
    context: str | None,
    work: Callable[[KubeClient], Awaitable[T]],
    *,
    login: KubeconfigLogin | None = None,
) -> T:
    """Log in with the admin's kubeconfig and run ``work(kube)`` on an event loop."""
    from jkctl.kube.client import KubeClient

    login = login or _login(kubeconfig, context)

    async def main() -> T:
        async with KubeClient(login) as kube:
            return await work(kube)

    return asyncio.run(main())


def _status(text: str) -> None:
    click.echo(f"jkctl: {text}", err=True)


def _share(spec: TeamSpec) -> str:
    gpus = f"{spec.gpu} GPU" + ("" if spec.gpu == 1 else "s")
    cpus = amounts.parse(spec.cpu)
    parts = [f"{amounts.cpus(cpus)} CPU" + ("" if cpus == 1 else "s")]
    parts += [amounts.size(amounts.parse(spec.memory)) + " memory", gpus]
    if spec.max_kernels is not None:
        parts.append(f"at most {spec.max_kernels} kernels")
    return ", ".join(parts)


def _who(spec: TeamSpec) -> str:
    people = [*spec.members, *(f"group {group}" for group in spec.groups)]
    return ", ".join(people) if people else "nobody yet (add --members or --group)"


# -- the groups ------------------------------------------------------------------------


@click.group()
def admin() -> None:
    """Divide the cluster among teams: namespaces, quotas and access."""


@admin.group()
def team() -> None:
    """Create, change, list and delete teams, and write members' kubeconfigs."""


@admin.group()
def render() -> None:
    """Print the manifests `jkctl admin` would apply, for GitOps."""


# -- team commands -----------------------------------------------------------------------


@team.command()
@click.argument("name")
@_team_options
@_connection
def create(name: str, kubeconfig: str | None, context: str | None, **values: Any) -> None:
    """Create team NAME: a namespace with a quota, kernel defaults and access for its members.

    Running it again with the same options changes nothing; a team that
    exists with other settings is refused (use `update`).
    """
    from jkctl.admin.teams import create_team

    spec = team_spec(name, _options(values))
    applied = _run(kubeconfig, context, lambda kube: create_team(kube, spec))
    for line in applied:
        click.echo(str(line))
    _status(f"team {name} has {_share(spec)}; members: {_who(spec)}.")
    _status(f"members run kernels there with: jkctl connect --namespace {spec.namespace}")


@team.command()
@click.argument("name")
@_team_options
@_connection
def update(name: str, kubeconfig: str | None, context: str | None, **values: Any) -> None:
    """Change team NAME: options given replace the team's; the rest stays as it is."""
    from jkctl.admin.apply import Change
    from jkctl.admin.teams import update_team

    spec, applied = _run(
        kubeconfig, context, lambda kube: update_team(kube, name, _options(values))
    )
    for line in applied:
        click.echo(str(line))
    changed = sum(1 for line in applied if line.change is not Change.UNCHANGED)
    plural = "object" if changed == 1 else "objects"
    verdict = f"updated ({changed} {plural} changed)" if changed else "unchanged"
    _status(f"team {name} {verdict}: {_share(spec)}; members: {_who(spec)}.")


@team.command("list")
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@_connection
def list_(output: str, kubeconfig: str | None, context: str | None) -> None:
    """List teams with their quota (used / hard), running kernels and members."""
    from jkctl.admin.teams import list_teams

    teams = _run(kubeconfig, context, list_teams)
    if output == "table":
        _team_table(teams)
        return
    document = {"teams": [_team_document(status) for status in teams]}
    if output == "json":
        click.echo(json.dumps(document, indent=2))
    else:
        import yaml

        click.echo(yaml.safe_dump(document, sort_keys=False), nl=False)


@team.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete even while kernels run (they are stopped).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--wait/--no-wait", default=True, help="Wait until the namespace is gone (default: wait)."
)
@click.option("--timeout", type=float, default=300.0, help="Seconds to wait (default: 300).")
@_connection
def delete(
    *,
    name: str,
    force: bool,
    yes: bool,
    wait: bool,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
) -> None:
    """Delete team NAME: its namespace and everything in it."""
    from jkctl.admin.teams import delete_team, plan_deletion, require_idle

    deletion = _run(kubeconfig, context, lambda kube: plan_deletion(kube, name))
    require_idle(deletion, force=force)
    if not yes:
        count = len(deletion.running)
        running = f", stopping {count} running pod{'' if count == 1 else 's'}" if count else ""
        click.confirm(
            f"Delete team {name} and everything in namespace {name}{running}?",
            abort=True,
            err=True,
        )
    _run(
        kubeconfig,
        context,
        lambda kube: delete_team(kube, deletion, wait=timeout if wait else None),
    )
    click.echo(f"namespace/{name} deleted")
    if not wait:
        _status(f"team {name} is being deleted; its namespace goes once its pods have stopped.")


@team.command("kubeconfig")
@click.argument("name")
@click.option("--user", required=True, help="The member; their ServiceAccount takes this name.")
@click.option(
    "--expiration",
    default="24h",
    show_default=True,
    help="How long the token works: 30m, 12h, 30d (the cluster may cap it).",
)
@_connection
def kubeconfig_(
    name: str, user: str, expiration: str, kubeconfig: str | None, context: str | None
) -> None:
    """Print a kubeconfig for member USER of team NAME, with a service-account token.

    For clusters whose people log in with service-account tokens. Redirect
    it to a file and hand it over: `jkctl connect --kubeconfig FILE`.
    """
    from jkctl.admin.memberconfig import (
        check_member_name,
        member_kubeconfig,
        parse_expiration,
    )

    seconds = parse_expiration(expiration)
    check_member_name(user)
    login = _login(kubeconfig, context)
    made = _run(
        kubeconfig,
        context,
        lambda kube: member_kubeconfig(
            kube, login, team=name, user=user, expiration_seconds=seconds
        ),
        login=login,
    )
    click.echo(made.text, nl=False)
    stamp = made.expires.strftime("%Y-%m-%d %H:%M UTC")
    _status(
        f"kubeconfig for {user} in team {name} (as {made.username}); the token expires {stamp}."
    )


# -- render --------------------------------------------------------------------------------


@render.command("team")
@click.argument("name")
@_team_options
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml")
def render_team(name: str, output: str, **values: Any) -> None:
    """Print the objects `jkctl admin team create NAME ...` would apply."""
    from jkctl.admin.manifests import team_manifests, to_json, to_yaml

    objects = team_manifests(team_spec(name, _options(values)))
    click.echo(to_json(objects) if output == "json" else to_yaml(objects), nl=output == "json")


# -- list output ---------------------------------------------------------------------------


def _team_table(teams: Sequence[TeamStatus]) -> None:
    console = Console(soft_wrap=True)
    if not teams:
        _status("no teams yet; create one with jkctl admin team create NAME --cpu N --memory SIZE")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("TEAM", "CPU", "MEMORY", "GPU", "KERNELS", "MEMBERS"):
        table.add_column(column, no_wrap=True)
    for status in teams:
        usage = status.usage
        table.add_row(
            status.name + (" (deleting)" if status.terminating else ""),
            _pair(usage.line("cpu"), amounts.cpus),
            _pair(usage.line("memory"), amounts.size),
            _pair(usage.line("gpu"), amounts.count),
            _kernels(status),
            ", ".join([*status.members, *(f"group:{group}" for group in status.groups)]) or "-",
        )
    console.print(table)


def _pair(line: QuotaLine | None, say: Callable[[Fraction], str]) -> str:
    if line is None:
        return "-"
    return f"{say(line.used)} / {say(line.hard)}"


def _kernels(status: TeamStatus) -> str:
    limit = status.usage.line("kernels")
    return (
        f"{status.kernels_running} / {amounts.count(limit.hard)}"
        if limit
        else str(status.kernels_running)
    )


def _team_document(status: TeamStatus) -> dict[str, Any]:
    usage = status.usage

    def numbers(dimension: str, *, whole: bool) -> dict[str, Any] | None:
        line = usage.line(dimension)
        if line is None:
            return None
        if whole:
            return {"used": int(line.used), "hard": int(line.hard)}
        return {"used": float(line.used), "hard": float(line.hard)}

    kernels = usage.line("kernels")
    return {
        "name": status.name,
        "namespace": usage.namespace,
        "terminating": status.terminating,
        "cpu": numbers("cpu", whole=False),
        "memory_bytes": numbers("memory", whole=True),
        "gpu": numbers("gpu", whole=True),
        "kernels": {
            "running": status.kernels_running,
            "max": int(kernels.hard) if kernels else None,
        },
        "members": list(status.members),
        "groups": list(status.groups),
    }
