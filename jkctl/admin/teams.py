"""Teams on a cluster: create, update, list and delete, the admin's rights checked first.

Each operation first asks the API server (SelfSubjectAccessReview) whether
the admin may do everything it is about to do, and says in one sentence what
is missing; finding out on the fourth of six objects would leave half a team.

- :func:`create_team` applies a new team's objects. Run again with the same
  options it creates what is missing and changes nothing else; a team that
  exists with other settings is refused (:class:`~jkctl.errors.TeamExists`,
  listing the differences), since silently changing a team is `update`'s
  job. A namespace that exists but is not a team is never taken over.
- :func:`update_team` reads the team's spec back from its objects, lays the
  given options over it and applies the result: only what differs is
  patched.
- :func:`list_teams` reads every team's quota usage, running kernels and
  members.
- :func:`plan_deletion` / :func:`delete_team`: a team with kernels running
  is refused unless forced; deleting the namespace removes everything in it,
  and :func:`delete_team` waits (on a watch) until it is gone.

Not here: asking the admin to confirm, and printing (the CLI's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from jkctl.errors import (
    KubeForbidden,
    KubeNotFound,
    TeamBusy,
    TeamError,
    TeamExists,
    TeamNotFound,
)
from jkctl.kube.access import AccessCheck, describe_missing, missing_access
from jkctl.kube.client import KubeClient, Propagation
from jkctl.kube.objects import KubeObject, resource_version
from jkctl.kube.quota import TEAM_LABEL, TeamUsage, usage_from_quotas
from jkctl.kube.resources import (
    LIMIT_RANGES,
    NAMESPACES,
    PODS,
    RESOURCE_QUOTAS,
    ROLE_BINDINGS,
    Resource,
)

from . import manifests
from .apply import Applied, Change, apply_planned, plan
from .spec import TeamOptions, TeamSpec, check_team_name, team_spec

_RBAC = "rbac.authorization.k8s.io"
_TEAM_OBJECTS = (
    ("resourcequotas", ""),
    ("limitranges", ""),
    ("roles", _RBAC),
    ("rolebindings", _RBAC),
    ("networkpolicies", "networking.k8s.io"),
)
APPLY_CHECKS = (
    AccessCheck(verb="create", resource="namespaces", cluster=True),
    AccessCheck(verb="get", resource="namespaces"),
    AccessCheck(verb="patch", resource="namespaces"),
    *(
        AccessCheck(verb=verb, resource=resource, group=group)
        for verb in ("get", "create", "patch")
        for resource, group in _TEAM_OBJECTS
    ),
)
LIST_CHECKS = (AccessCheck(verb="list", resource="namespaces", cluster=True),)
DELETE_CHECKS = (
    AccessCheck(verb="get", resource="namespaces"),
    AccessCheck(verb="delete", resource="namespaces"),
    AccessCheck(verb="list", resource="pods"),
)
_ACTIVE_PHASES = ("Pending", "Running")


@dataclass(frozen=True, kw_only=True)
class TeamStatus:
    """One team as `jkctl admin team list` shows it."""

    name: str
    usage: TeamUsage
    #: Pods that have not finished: kernels, and builds or pre-pulls started by members.
    kernels_running: int
    members: tuple[str, ...]
    groups: tuple[str, ...]
    terminating: bool


@dataclass(frozen=True, kw_only=True)
class TeamDeletion:
    """What deleting a team would remove: its name and the pods still running in it."""

    name: str
    running: tuple[str, ...]


async def require_admin_access(
    kube: KubeClient, checks: Sequence[AccessCheck], *, team: str | None, doing: str
) -> None:
    """Raise KubeForbidden naming every missing right, if any is.

    ``team`` is the namespace the namespaced checks are about; None when
    all checks are cluster-wide.
    """
    team = team or kube.namespace
    missing = await missing_access(kube, checks, namespace=team)
    if not missing:
        return
    cluster = [check for check in missing if check.cluster]
    local = [check for check in missing if not check.cluster]
    phrases = []
    if cluster:
        said = describe_missing(cluster, namespace=team)
        phrases.append(_inner(said, team) + " (cluster-wide)")
    if local:
        phrases.append(
            _inner(describe_missing(local, namespace=team), team) + f" in namespace {team}"
        )
    raise KubeForbidden(
        f"you may not {'; nor '.join(phrases)}, which {doing} needs",
        hint="run jkctl admin with a kubeconfig context of a cluster admin, or ask one for "
        "these rights",
        context=f'as user "{kube.credentials.user}" of context "{kube.credentials.context}"',
    )


def _inner(sentence: str, team: str) -> str:
    return sentence.removeprefix("you may not ").removesuffix(f" in namespace {team}")


# -- create and update -------------------------------------------------------------------


async def create_team(kube: KubeClient, spec: TeamSpec) -> list[Applied]:
    """Make a team; idempotent for the same spec, refused for another one."""
    await require_admin_access(
        kube, APPLY_CHECKS, team=spec.name, doing=f"creating team {spec.name}"
    )
    plans = [await plan(kube, obj) for obj in manifests.team_manifests(spec)]
    namespace = plans[0]
    if namespace.current is not None and not _is_team(namespace.current):
        raise TeamExists(
            f"namespace {spec.name} already exists and is not a jkctl team",
            hint="pick another team name; jkctl admin does not take over namespaces it did "
            "not make",
        )
    if namespace.current is not None and namespace.current["metadata"].get("deletionTimestamp"):
        raise TeamError(
            f"team {spec.name} is being deleted",
            hint=f"wait until it is gone (kubectl get namespace {spec.name}), then create it again",
        )
    differing = [planned for planned in plans if planned.change is Change.CONFIGURED]
    if differing:
        changes = "; ".join(
            f"{planned.ref} {', '.join(planned.differences())}" for planned in differing
        )
        raise TeamExists(
            f"team {spec.name} already exists with other settings",
            hint=f"change it with jkctl admin team update {spec.name} (same options), or "
            "delete it first",
            context=f"differences (now -> asked): {changes}",
        )
    return [await apply_planned(kube, planned) for planned in plans]


async def read_team_spec(kube: KubeClient, name: str) -> TeamSpec | None:
    """The team's current spec as its objects say; None if its quota is gone."""
    await _team_namespace(kube, name)
    quota, limits, binding = await asyncio.gather(
        _get(kube, RESOURCE_QUOTAS, manifests.QUOTA, name),
        _get(kube, LIMIT_RANGES, manifests.LIMIT_RANGE, name),
        _get(kube, ROLE_BINDINGS, manifests.ROLE_BINDING, name),
    )
    return manifests.spec_from_objects(name, quota=quota, limits=limits, binding=binding)


async def update_team(
    kube: KubeClient, name: str, options: TeamOptions
) -> tuple[TeamSpec, list[Applied]]:
    """Lay ``options`` over the team's current spec and apply what differs."""
    check_team_name(name)
    await require_admin_access(kube, APPLY_CHECKS, team=name, doing=f"updating team {name}")
    base = await read_team_spec(kube, name)
    if base is None and not (options.cpu and options.memory):
        raise TeamError(
            f"team {name} has lost its ResourceQuota {manifests.QUOTA}, so its share is unknown",
            hint=f"give it again: jkctl admin team update {name} --cpu N --memory SIZE",
        )
    spec = team_spec(name, options, base=base)
    applied = []
    for obj in manifests.team_manifests(spec):
        applied.append(await apply_planned(kube, await plan(kube, obj)))
    return spec, applied


# -- list --------------------------------------------------------------------------------


async def list_teams(kube: KubeClient) -> list[TeamStatus]:
    """Every team on the cluster, by name, with usage, running kernels and members."""
    await require_admin_access(kube, LIST_CHECKS, team=None, doing="listing teams")
    listed = await kube.list(NAMESPACES, label_selector=TEAM_LABEL)
    namespaces = sorted(listed["items"], key=lambda ns: str(ns["metadata"]["name"]))
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(_team_status(kube, ns)) for ns in namespaces]
    return [task.result() for task in tasks]


async def _team_status(kube: KubeClient, namespace: KubeObject) -> TeamStatus:
    name = str(namespace["metadata"]["name"])
    quotas, pods, binding = await asyncio.gather(
        kube.list(RESOURCE_QUOTAS, namespace=name),
        kube.list(PODS, namespace=name),
        _get(kube, ROLE_BINDINGS, manifests.ROLE_BINDING, name),
    )
    subjects = (binding or {}).get("subjects") or []
    usage = usage_from_quotas(quotas["items"], namespace=name)
    return TeamStatus(
        name=str(namespace["metadata"].get("labels", {}).get(TEAM_LABEL) or name),
        usage=usage,
        kernels_running=len(_active(pods["items"])),
        members=tuple(s["name"] for s in subjects if s.get("kind") == "User"),
        groups=tuple(s["name"] for s in subjects if s.get("kind") == "Group"),
        terminating=bool(namespace["metadata"].get("deletionTimestamp")),
    )


# -- delete ------------------------------------------------------------------------------


async def plan_deletion(kube: KubeClient, name: str) -> TeamDeletion:
    """What deleting the team would remove; writes nothing."""
    check_team_name(name)
    await require_admin_access(kube, DELETE_CHECKS, team=name, doing=f"deleting team {name}")
    await _team_namespace(kube, name)
    pods = await kube.list(PODS, namespace=name)
    running = tuple(str(pod["metadata"]["name"]) for pod in _active(pods["items"]))
    return TeamDeletion(name=name, running=running)


def require_idle(deletion: TeamDeletion, *, force: bool) -> None:
    """Refuse to delete a team whose kernels still run, unless ``force``."""
    if deletion.running and not force:
        count = len(deletion.running)
        shown = ", ".join(deletion.running[:5]) + (", ..." if count > 5 else "")
        raise TeamBusy(
            f"team {deletion.name} has {count} {'pod' if count == 1 else 'pods'} running "
            f"({shown}); deleting it would stop them",
            hint="ask the team to shut their kernels down, or pass --force to stop them with "
            "the team",
        )


async def delete_team(kube: KubeClient, deletion: TeamDeletion, *, wait: float | None) -> None:
    """Delete the team's namespace (and so everything in it); wait up to ``wait`` seconds."""
    answer = await kube.delete(NAMESPACES, deletion.name, propagation=Propagation.BACKGROUND)
    if wait is None:
        return
    try:
        async with asyncio.timeout(wait):
            await wait_namespace_gone(kube, deletion.name, since=resource_version(answer))
    except TimeoutError:
        raise TeamError(
            f"team {deletion.name} is still being deleted after {wait:.0f} seconds",
            hint=f"it goes once its pods have stopped; see kubectl get pods -n {deletion.name}",
        ) from None


async def wait_namespace_gone(kube: KubeClient, name: str, *, since: str = "") -> None:
    """Return once namespace ``name`` no longer exists (a watch, not a polling loop)."""
    while True:
        try:
            current = await kube.get(NAMESPACES, name)
        except KubeNotFound:
            return
        async with kube.watch(
            NAMESPACES,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version(current) or since or None,
        ) as events:
            async for event in events:
                if event["type"] == "DELETED":
                    return
        # The watch ended (its timeoutSeconds): look again, then watch again.


# -- helpers -----------------------------------------------------------------------------


def _is_team(namespace: KubeObject) -> bool:
    return TEAM_LABEL in (namespace.get("metadata", {}).get("labels") or {})


async def _team_namespace(kube: KubeClient, name: str) -> KubeObject:
    try:
        namespace = await kube.get(NAMESPACES, name)
    except KubeNotFound:
        raise TeamNotFound(
            f"there is no team {name}",
            hint="see the teams with jkctl admin team list, or create it with "
            f"jkctl admin team create {name} --cpu N --memory SIZE",
        ) from None
    if not _is_team(namespace):
        raise TeamNotFound(
            f"namespace {name} is not a jkctl team",
            hint="jkctl admin only changes namespaces it made; see them with jkctl admin team list",
        )
    return namespace


async def _get(
    kube: KubeClient, resource: Resource, name: str, namespace: str
) -> KubeObject | None:
    try:
        return await kube.get(resource, name, namespace=namespace)
    except KubeNotFound:
        return None


def _active(pods: Sequence[KubeObject]) -> list[KubeObject]:
    return [
        pod
        for pod in pods
        if (pod.get("status") or {}).get("phase") in _ACTIVE_PHASES
        and not pod["metadata"].get("deletionTimestamp")
    ]
