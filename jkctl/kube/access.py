"""Checking up front what the user may do in a namespace (SelfSubjectAccessReview).

Before `jkctl connect` serves anything it asks the API server whether the
user may create pods and secrets, open pods/portforward, read pods/log and
events: finding out at the first kernel start, halfway through a pod
creation, is worse. The reviews run concurrently (one round trip in all),
and whatever is missing is said in one sentence: "you may not create
pods/portforward or get pods/log in namespace geo".

This module only asks; which permissions a feature needs is its caller's
knowledge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from jkctl.errors import KubeForbidden

from .client import KubeClient
from .resources import SELF_SUBJECT_ACCESS_REVIEWS


@dataclass(frozen=True, kw_only=True)
class AccessCheck:
    """One permission: ``verb`` on ``resource``[/``subresource``] in API ``group``.

    ``cluster`` asks about the cluster scope (creating or listing namespaces)
    rather than the namespace the checks run in.
    """

    verb: str
    resource: str
    subresource: str = ""
    group: str = ""
    cluster: bool = False

    @property
    def target(self) -> str:
        """`pods/portforward`, `jobs.batch`: the resource as kubectl names it."""
        resource = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{resource}/{self.subresource}" if self.subresource else resource

    def __str__(self) -> str:
        return f"{self.verb} {self.target}"


async def missing_access(
    kube: KubeClient, checks: Iterable[AccessCheck], *, namespace: str | None = None
) -> list[AccessCheck]:
    """The checks the user fails in ``namespace`` (default: the context's), in the given order."""
    namespace = namespace or kube.namespace
    wanted = list(dict.fromkeys(checks))
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_allowed(kube, check, namespace)) for check in wanted]
    except BaseExceptionGroup as failed:
        # All reviews fail the same way (API down, token rejected): one error
        # says it, keeping its own cause.
        raise failed.exceptions[0]  # noqa: B904 -- the group is context, not the cause
    return [check for check, task in zip(wanted, tasks, strict=True) if not task.result()]


async def require_access(
    kube: KubeClient, checks: Iterable[AccessCheck], *, namespace: str | None = None
) -> None:
    """Raise KubeForbidden naming everything missing, if anything is."""
    namespace = namespace or kube.namespace
    missing = await missing_access(kube, checks, namespace=namespace)
    if missing:
        raise KubeForbidden(
            describe_missing(missing, namespace=namespace),
            hint=f"ask a namespace admin for a Role that grants it, or pick another namespace "
            f"(kubectl auth can-i --list -n {namespace} shows what you may do)",
            context=f'as user "{kube.credentials.user}" of context "{kube.credentials.context}"',
        )


def describe_missing(missing: Sequence[AccessCheck], *, namespace: str) -> str:
    """One sentence: `you may not create pods or secrets, or get pods/log in namespace geo`."""
    by_verb: dict[str, list[str]] = {}
    for check in missing:
        by_verb.setdefault(check.verb, []).append(check.target)
    phrases = [f"{verb} {_either(targets)}" for verb, targets in by_verb.items()]
    if len(phrases) > 1 and any(len(targets) > 1 for targets in by_verb.values()):
        joined = ", ".join(phrases[:-1]) + ", or " + phrases[-1]
    else:
        joined = _either(phrases)
    return f"you may not {joined} in namespace {namespace}"


def _either(items: Sequence[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]


async def _allowed(kube: KubeClient, check: AccessCheck, namespace: str) -> bool:
    attributes = {"verb": check.verb, "resource": check.resource}
    if not check.cluster:
        attributes["namespace"] = namespace
    if check.group:
        attributes["group"] = check.group
    if check.subresource:
        attributes["subresource"] = check.subresource
    review = await kube.create(
        SELF_SUBJECT_ACCESS_REVIEWS,
        {
            "apiVersion": SELF_SUBJECT_ACCESS_REVIEWS.api_version,
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        },
    )
    return bool(review.get("status", {}).get("allowed", False))
