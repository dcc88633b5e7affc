"""A team's quota in words a data scientist reads: usage, what fits, and why a kernel did not.

`jkctl admin` gives each team a namespace with a ResourceQuota. Two things
follow for the people who run kernels there:

- when a kernel pod is refused for exceeding the quota, the API server says
  "exceeded quota: jkctl-team, requested: requests.cpu=8, used:
  requests.cpu=60, limited: requests.cpu=64".
  :func:`explain_quota_exceeded` turns that (and the namespace's quotas, for
  the team's name) into "team geo has 60 of 64 CPUs in use; this kernel asks
  for 8", at once, instead of a pod that never appears;
- before starting a kernel, :func:`team_usage` reads the quotas' status
  (used / hard, kept current by the API server) into a :class:`TeamUsage`
  that can say itself in one line ("team geo: 60 of 64 CPUs, ...") and tell
  whether a kernel of a given size would fit (:meth:`TeamUsage.shortfalls`),
  in the same words as the refusal.

Several quotas in one namespace all apply; for each resource the one with
the least room left is the one that matters, so that is the one reported.

Not here: the quota objects themselves (`jkctl.admin` writes them) and the
decision what to do about a refusal (the Kubernetes backend's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from jkctl.errors import KubeError, QuotaExceeded

from . import amounts
from .client import KubeClient
from .objects import KubeObject
from .resources import RESOURCE_QUOTAS

#: The label on a team's namespace and on every object jkctl admin makes for it.
TEAM_LABEL = "jkctl.io/team"
GPU = "nvidia.com/gpu"

_QUOTA_MESSAGE = re.compile(
    r"exceeded quota: (?P<quota>[^,]+), requested: (?P<requested>.*?), "
    r"used: (?P<used>.*?), limited: (?P<limited>.*)$"
)
# Quota resource names that measure the same thing, under one dimension name.
_DIMENSION = {
    "cpu": "cpu",
    "requests.cpu": "cpu",
    "limits.cpu": "limits.cpu",
    "memory": "memory",
    "requests.memory": "memory",
    "limits.memory": "limits.memory",
    f"requests.{GPU}": "gpu",
    "pods": "kernels",
    "count/pods": "kernels",
}
#: (used, hard, asked) per exceeded dimension.
Exceeded = dict[str, tuple[Fraction, Fraction, Fraction]]
_ORDER = ("cpu", "memory", "gpu", "kernels", "limits.cpu", "limits.memory")


@dataclass(frozen=True, kw_only=True)
class QuotaLine:
    """One quota resource: how much is used of how much the team may use."""

    resource: str
    used: Fraction
    hard: Fraction

    @property
    def free(self) -> Fraction:
        return max(self.hard - self.used, Fraction(0))


@dataclass(frozen=True, kw_only=True)
class TeamUsage:
    """A namespace's quota usage, tightest quota per resource; no lines means no quota."""

    team: str
    namespace: str
    lines: Mapping[str, QuotaLine] = field(default_factory=dict)

    def line(self, dimension: str) -> QuotaLine | None:
        """The line for ``cpu``, ``memory``, ``gpu``, ``kernels``, ``limits.cpu`` ..."""
        found = [line for line in self.lines.values() if _dimension(line.resource) == dimension]
        return min(found, key=lambda line: line.free) if found else None

    def summary(self) -> str:
        """`team geo: 60 of 64 CPUs, 250 GiB of 256 GiB memory, 2 of 4 GPUs, 3 of 40 kernels`."""
        parts = []
        for dimension in ("cpu", "memory", "gpu", "kernels"):
            line = self.line(dimension)
            if line is not None:
                parts.append(_amounts(dimension, line.used, line.hard))
        if not parts:
            return f"team {self.team}: no quota"
        return f"team {self.team}: " + ", ".join(parts) + " in use"

    def shortfalls(
        self, *, requests: Mapping[str, str], limits: Mapping[str, str] | None = None
    ) -> list[str]:
        """Why a kernel with these requests and limits would be refused now (empty: it fits)."""
        charges = kernel_charges(requests=requests, limits=limits or {})
        exceeded: Exceeded = {}
        for resource, asked in charges.items():
            dimension = _dimension(resource)
            line = self.line(dimension)
            if line is not None and line.used + asked > line.hard:
                exceeded[dimension] = (line.used, line.hard, asked)
        return _sentences(self.team, exceeded)


def kernel_charges(
    *, requests: Mapping[str, str], limits: Mapping[str, str]
) -> dict[str, Fraction]:
    """What a one-container pod is charged against a quota, by quota resource name.

    As the API server defaults them, requests missing from ``requests`` are
    taken from ``limits``.
    """
    effective = {**limits, **requests}
    charges = {"pods": Fraction(1)}
    for name, text in effective.items():
        if name in ("cpu", "memory") or "/" in name:  # extended resources: requests only
            charges[f"requests.{name}"] = amounts.parse(text)
    for name in ("cpu", "memory"):
        if name in limits:
            charges[f"limits.{name}"] = amounts.parse(limits[name])
    return charges


def usage_from_quotas(quotas: Sequence[KubeObject], *, namespace: str) -> TeamUsage:
    """A :class:`TeamUsage` from a namespace's ResourceQuota objects (as listed)."""
    lines: dict[str, QuotaLine] = {}
    for quota in quotas:
        status = quota.get("status") or {}
        hard = status.get("hard") or (quota.get("spec") or {}).get("hard") or {}
        used = status.get("used") or {}
        for resource, limit in hard.items():
            line = QuotaLine(
                resource=resource,
                used=amounts.parse(str(used.get(resource, "0"))),
                hard=amounts.parse(str(limit)),
            )
            if resource not in lines or line.free < lines[resource].free:
                lines[resource] = line
    return TeamUsage(team=team_name(quotas, namespace=namespace), namespace=namespace, lines=lines)


async def team_usage(kube: KubeClient, *, namespace: str | None = None) -> TeamUsage:
    """The quota usage of ``namespace`` (default: the context's), read from its quotas' status."""
    namespace = namespace or kube.namespace
    listed = await kube.list(RESOURCE_QUOTAS, namespace=namespace)
    return usage_from_quotas(listed["items"], namespace=namespace)


def team_name(quotas: Iterable[KubeObject], *, namespace: str) -> str:
    """The team a namespace belongs to, from its quotas' team label; else the namespace."""
    for quota in quotas:
        team = ((quota.get("metadata") or {}).get("labels") or {}).get(TEAM_LABEL)
        if team:
            return str(team)
    return namespace


def explain_quota_exceeded(
    error: QuotaExceeded, quotas: Sequence[KubeObject], *, namespace: str
) -> QuotaExceeded:
    """The refusal said as "team geo has 60 of 64 CPUs in use; this kernel asks for 8".

    ``quotas`` are the namespace's ResourceQuota objects; they name the team.
    An error whose message is not the API server's quota wording comes back
    unchanged.
    """
    said = str((error.status or {}).get("message") or error.context or "")
    found = _QUOTA_MESSAGE.search(said)
    if found is None:
        return error
    requested, used, limited = (_pairs(found[part]) for part in ("requested", "used", "limited"))
    exceeded: Exceeded = {}
    for resource, asked in requested.items():
        if resource in used and resource in limited:
            exceeded.setdefault(_dimension(resource), (used[resource], limited[resource], asked))
    team = team_name(quotas, namespace=namespace)
    sentences = _sentences(team, exceeded)
    if not sentences:
        return error
    return QuotaExceeded(
        "; ".join(sentences),
        hint=f"shut down kernels you no longer need or start a smaller one; a cluster admin can "
        f"raise the quota (jkctl admin team update {team} ...)",
        context=said,
        status=error.status,
    )


async def humane_quota_error(
    kube: KubeClient, error: QuotaExceeded, *, namespace: str | None = None
) -> QuotaExceeded:
    """:func:`explain_quota_exceeded` with the quotas read here; if they cannot be, ``error``."""
    namespace = namespace or kube.namespace
    try:
        listed = await kube.list(RESOURCE_QUOTAS, namespace=namespace)
    except KubeError:
        listed = {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": []}
    return explain_quota_exceeded(error, listed["items"], namespace=namespace)


# -- words -----------------------------------------------------------------------------


def _dimension(resource: str) -> str:
    return _DIMENSION.get(resource, resource)


def _pairs(text: str) -> dict[str, Fraction]:
    pairs = {}
    for item in text.split(","):
        name, _, value = item.strip().partition("=")
        if name and value:
            try:
                pairs[name] = amounts.parse(value)
            except ValueError:
                continue
    return pairs


def _sentences(team: str, exceeded: Exceeded) -> list[str]:
    """One sentence per exceeded dimension; a limit is only mentioned if its request fits."""
    sentences = []
    ordered = sorted(exceeded, key=lambda d: _ORDER.index(d) if d in _ORDER else len(_ORDER))
    for dimension in ordered:
        if dimension.startswith("limits.") and dimension.removeprefix("limits.") in exceeded:
            continue
        used, hard, asked = exceeded[dimension]
        sentences.append(_sentence(team, dimension, used, hard, asked))
    return sentences


def _sentence(team: str, dimension: str, used: Fraction, hard: Fraction, asked: Fraction) -> str:
    if dimension == "kernels":
        return (
            f"team {team} has {amounts.count(used)} of {amounts.count(hard)} kernels running; "
            "this kernel would be one more"
        )
    if dimension.startswith("limits."):
        base = dimension.removeprefix("limits.")
        return (
            f"team {team} has {_amounts(base, used, hard)} in use, counting limits; "
            f"this kernel's limit is {_amount(base, asked)}"
        )
    return f"team {team} has {_amounts(dimension, used, hard)} in use; this kernel asks for " + (
        _amount(dimension, asked)
    )


def _amounts(dimension: str, used: Fraction, hard: Fraction) -> str:
    """`60 of 64 CPUs`, `250 GiB of 256 GiB memory`, `2 of 4 GPUs`."""
    if dimension == "cpu":
        return f"{amounts.cpus(used)} of {amounts.cpus(hard)} {_plural('CPU', hard)}"
    if dimension == "memory":
        return f"{amounts.size(used)} of {amounts.size(hard)} memory"
    if dimension == "gpu":
        return f"{amounts.count(used)} of {amounts.count(hard)} {_plural('GPU', hard)}"
    if dimension == "kernels":
        return f"{amounts.count(used)} of {amounts.count(hard)} kernels"
    return f"{amounts.decimal(used)} of {amounts.decimal(hard)} {dimension}"


def _amount(dimension: str, value: Fraction) -> str:
    if dimension == "cpu":
        return amounts.cpus(value)
    if dimension == "memory":
        return amounts.size(value)
    if dimension == "gpu":
        return amounts.count(value)
    return amounts.decimal(value)


def _plural(noun: str, value: Fraction) -> str:
    return noun if value == 1 else noun + "s"
