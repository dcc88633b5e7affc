"""Apply semantics for a team's objects: create what is missing, patch what differs, nothing else.

Each object jkctl wants is compared with the one the cluster has. Missing, it
is created; present, a JSON merge patch is computed holding only the fields
jkctl sets whose values differ — nothing when nothing differs, so a second
run writes nothing and every resourceVersion stays as it was.

Why a computed merge patch, and not the alternatives:

- **replace (PUT)** sends the whole object: it would drop what others added
  (labels, annotations, a policy engine's fields) and needs a
  read-modify-write loop on conflicts;
- **server-side apply** is the principled answer (field ownership, conflicts
  between managers), but it needs the server to track managedFields per
  field with each type's list-map keys; jkctl's test API server (kubesim)
  does not, and a stand-in that only looked like it would test nothing;
- a **merge patch** of the differing fields leaves every field jkctl does
  not set alone, is supported everywhere, and has exactly the semantics the
  team objects need: maps merge (labels, quota entries), and the lists jkctl
  sets (Role rules, RoleBinding subjects, LimitRange items) are jkctl's
  alone, so replacing them whole is right.

What this does not do: delete fields jkctl stopped setting (a team's options
only ever change values, never remove keys) or delete objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jkctl.errors import KubeNotFound
from jkctl.kube.client import KubeClient, PatchType
from jkctl.kube.objects import KubeObject
from jkctl.kube.resources import (
    LIMIT_RANGES,
    NAMESPACES,
    NETWORK_POLICIES,
    RESOURCE_QUOTAS,
    ROLE_BINDINGS,
    ROLES,
    SERVICE_ACCOUNTS,
    Resource,
)

_RESOURCES = {
    ("v1", "Namespace"): NAMESPACES,
    ("v1", "ResourceQuota"): RESOURCE_QUOTAS,
    ("v1", "LimitRange"): LIMIT_RANGES,
    ("v1", "ServiceAccount"): SERVICE_ACCOUNTS,
    ("rbac.authorization.k8s.io/v1", "Role"): ROLES,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ROLE_BINDINGS,
    ("networking.k8s.io/v1", "NetworkPolicy"): NETWORK_POLICIES,
}


class Change(StrEnum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, kw_only=True)
class Planned:
    """One object's fate before anything is written: ``patch`` is None to create it."""

    desired: KubeObject
    patch: KubeObject | None
    current: KubeObject | None = None

    @property
    def change(self) -> Change:
        if self.patch is None:
            return Change.CREATED
        return Change.CONFIGURED if self.patch else Change.UNCHANGED

    @property
    def ref(self) -> str:
        """`resourcequota/jkctl-team`, as kubectl names objects."""
        return f"{self.desired['kind'].lower()}/{self.desired['metadata']['name']}"

    def differences(self) -> list[str]:
        """`spec.hard.requests.cpu 64 -> 32` for each field the patch changes."""
        return [
            f"{'.'.join(path)} {_show(_at(self.current or {}, path))} -> {_show(value)}"
            for path, value in _leaves(self.patch or {}, ())
        ]


@dataclass(frozen=True, kw_only=True)
class Applied:
    ref: str
    change: Change
    object: KubeObject

    def __str__(self) -> str:
        return f"{self.ref} {self.change}"


def resource_of(obj: KubeObject) -> Resource:
    return _RESOURCES[(str(obj["apiVersion"]), str(obj["kind"]))]


def merge_patch(desired: KubeObject, current: KubeObject) -> KubeObject:
    """The fields of ``desired`` whose values ``current`` does not have, as a merge patch."""
    patch: KubeObject = {}
    for key, want in desired.items():
        have = current.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            nested = merge_patch(want, have)
            if nested:
                patch[key] = nested
        elif want != have:
            patch[key] = want
    return patch


async def read_current(kube: KubeClient, desired: KubeObject) -> KubeObject | None:
    meta = desired["metadata"]
    try:
        return await kube.get(resource_of(desired), meta["name"], namespace=meta.get("namespace"))
    except KubeNotFound:
        return None


async def plan(kube: KubeClient, desired: KubeObject) -> Planned:
    """Compare one object with the cluster's; writes nothing."""
    current = await read_current(kube, desired)
    if current is None:
        return Planned(desired=desired, patch=None)
    return Planned(desired=desired, patch=merge_patch(desired, current), current=current)


async def apply_planned(kube: KubeClient, planned: Planned) -> Applied:
    """Carry out a plan: create, patch, or (unchanged) nothing at all."""
    desired = planned.desired
    resource = resource_of(desired)
    meta = desired["metadata"]
    if planned.patch is None:
        written = await kube.create(resource, desired, namespace=meta.get("namespace"))
    elif planned.patch:
        written = await kube.patch(
            resource,
            meta["name"],
            planned.patch,
            namespace=meta.get("namespace"),
            patch_type=PatchType.MERGE,
        )
    else:
        written = desired
    return Applied(ref=planned.ref, change=planned.change, object=written)


async def apply(kube: KubeClient, desired: KubeObject) -> Applied:
    """Plan and apply one object."""
    return await apply_planned(kube, await plan(kube, desired))


def _leaves(
    patch: dict[str, Any], prefix: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], Any]]:
    for key, value in patch.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def _at(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return ",".join(
            str(item.get("name", item)) if isinstance(item, dict) else str(item) for item in value
        )
    return str(value)
