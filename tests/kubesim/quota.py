"""ResourceQuota: usage, the admission check on create, and the status controller.

Usage is measured as the real evaluators measure it:

- a pod is charged `count/pods` always, and `pods`, `cpu`/`requests.cpu`,
  `memory`/`requests.memory`, `limits.cpu`, `limits.memory` and
  `requests.<extended>` (e.g. `requests.nvidia.com/gpu`) while it is not
  Succeeded/Failed (and not past its deletion grace period); a pod's
  request is the sum over its containers, or its largest init container
  if that is more;
- other objects are charged `count/<resource>[.<group>]`, and for the core
  types that have one, their legacy name (`secrets`, `configmaps`, ...).

Admission (pods and counted objects, on create): if a quota limits cpu or
memory, each container must state it ("failed quota: q: must specify
limits.cpu for: app"); then usage plus the request must stay within every
quota's hard limits, or the create is a 403 with the real text ("exceeded
quota: q, requested: requests.memory=2Gi, used: requests.memory=0,
limited: requests.memory=1Gi"). kubesim measures usage from the store at
admission time, so back-to-back creates never race the controller.

The controller keeps every quota's `status.hard` and `status.used` current,
reacting to writes through store watches.

Not here: quota scopes and scope selectors.
"""

from __future__ import annotations

import asyncio
import calendar
import time
from collections.abc import Iterable, Mapping
from typing import Any

from tests.kubesim import resources
from tests.kubesim.quantity import ZERO, Quantity, parse
from tests.kubesim.resources import ResourceType
from tests.kubesim.status import ApiError
from tests.kubesim.store import Store

Usage = dict[str, Quantity]

_ONE = parse("1")
_COMPUTE_REQUIRED = {
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
}
_LEGACY_COUNT_NAMES = {
    "secrets": "secrets",
    "configmaps": "configmaps",
    "services": "services",
    "persistentvolumeclaims": "persistentvolumeclaims",
    "replicationcontrollers": "replicationcontrollers",
    "resourcequotas": "resourcequotas",
}


def _is_extended(name: str) -> bool:
    native = "/" not in name or "kubernetes.io/" in name
    return not native and not name.startswith("requests.")


def _sum(lists: Iterable[Mapping[str, Any]]) -> Usage:
    result: Usage = {}
    for listing in lists:
        for name, value in listing.items():
            result[name] = result.get(name, ZERO) + parse(value)
    return result


def _pod_totals(pod: Mapping[str, Any], section: str) -> Usage:
    spec = pod.get("spec") or {}
    listings = [
        ((c.get("resources") or {}).get(section) or {}) for c in spec.get("containers") or []
    ]
    total = _sum(listings)
    for init in spec.get("initContainers") or []:
        for name, value in ((init.get("resources") or {}).get(section) or {}).items():
            quantity = parse(value)
            if quantity > total.get(name, ZERO):
                total[name] = quantity
    return total


def compute_usage(requests: Mapping[str, Quantity], limits: Mapping[str, Quantity]) -> Usage:
    """`podComputeUsageHelper`: the quota names one set of requests and limits charges."""
    usage: Usage = {"pods": _ONE}
    for name in ("cpu", "memory", "ephemeral-storage"):
        if name in requests:
            usage[name] = requests[name]
            usage[f"requests.{name}"] = requests[name]
        if name in limits:
            usage[f"limits.{name}"] = limits[name]
    for name, value in requests.items():
        if _is_extended(name):
            usage[f"requests.{name}"] = value
    return usage


def _charged(pod: Mapping[str, Any], now: float) -> bool:
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    meta = pod.get("metadata") or {}
    stamp = meta.get("deletionTimestamp")
    if stamp and meta.get("deletionGracePeriodSeconds") is not None:
        deadline = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
        return now <= deadline
    return True


def object_count_name(rtype: ResourceType) -> str:
    return f"count/{rtype.plural}" + (f".{rtype.group}" if rtype.group else "")


def usage_of(rtype: ResourceType, obj: Mapping[str, Any], now: float) -> Usage:
    usage: Usage = {object_count_name(rtype): _ONE}
    if not rtype.group and rtype.plural in _LEGACY_COUNT_NAMES:
        usage[_LEGACY_COUNT_NAMES[rtype.plural]] = _ONE
    if rtype is resources.PODS and _charged(obj, now):
        usage.update(compute_usage(_pod_totals(obj, "requests"), _pod_totals(obj, "limits")))
    return usage


def _counted_type(name: str) -> ResourceType | None:
    if name in ("pods",) or name.startswith(("requests.", "limits.")) or name in ("cpu", "memory"):
        return resources.PODS
    if name in _LEGACY_COUNT_NAMES:
        return resources.get("", name)
    if name.startswith("count/"):
        plural, _, group = name.removeprefix("count/").partition(".")
        return resources.by_plural(group, plural)
    return None


def namespace_usage(store: Store, namespace: str, names: Iterable[str]) -> Usage:
    """Current usage in `namespace` of each quota resource in `names` (zero if none)."""
    wanted = set(names)
    used: Usage = dict.fromkeys(wanted, ZERO)
    now = time.time()
    types = {rtype for name in wanted if (rtype := _counted_type(name)) is not None}
    for rtype in types:
        for obj in store.scan(rtype, namespace):
            for name, value in usage_of(rtype, obj, now).items():
                if name in wanted:
                    used[name] = used[name] + value
    return used


def _hard(quota: Mapping[str, Any]) -> Usage:
    return {k: parse(v) for k, v in ((quota.get("spec") or {}).get("hard") or {}).items()}


def _pretty(usage: Mapping[str, Quantity]) -> str:
    return ",".join(f"{name}={usage[name]}" for name in sorted(usage))


def _forbidden(rtype: ResourceType, name: str, message: str) -> ApiError:
    qualified = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
    return ApiError(
        403,
        "Forbidden",
        f'{qualified} "{name}" is forbidden: {message}',
        details={
            "name": name,
            "kind": rtype.plural,
            **({"group": rtype.group} if rtype.group else {}),
        },
    )


def _missing_constraints(pod: Mapping[str, Any], required: set[str]) -> str | None:
    spec = pod.get("spec") or {}
    missing: dict[str, set[str]] = {}
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        res = container.get("resources") or {}
        requests = {k: parse(v) for k, v in (res.get("requests") or {}).items()}
        limits = {k: parse(v) for k, v in (res.get("limits") or {}).items()}
        for name in required - set(compute_usage(requests, limits)):
            missing.setdefault(name, set()).add(container.get("name") or "")
    if not missing:
        return None
    parts = [f"{name} for: {','.join(sorted(missing[name]))}" for name in sorted(missing)]
    return "must specify " + "; ".join(parts)


def admit(store: Store, rtype: ResourceType, obj: Mapping[str, Any], namespace: str) -> None:
    """Refuse a create that a quota in `namespace` does not allow."""
    quotas = sorted(
        store.scan(resources.RESOURCEQUOTAS, namespace), key=lambda q: q["metadata"]["name"]
    )
    if not quotas:
        return
    name = obj["metadata"].get("name") or ""
    delta = usage_of(rtype, obj, time.time())
    pertinent = []
    for quota in quotas:
        hard = _hard(quota)
        if not set(hard) & set(delta) and not (
            rtype is resources.PODS and set(hard) & _COMPUTE_REQUIRED
        ):
            continue
        if rtype is resources.PODS:
            problem = _missing_constraints(obj, set(hard) & _COMPUTE_REQUIRED)
            if problem:
                raise _forbidden(
                    rtype, name, f"failed quota: {quota['metadata']['name']}: {problem}"
                )
        pertinent.append((quota, hard))
    for quota, hard in pertinent:
        requested = {k: v for k, v in delta.items() if k in hard}
        used = namespace_usage(store, namespace, requested)
        exceeded = [k for k in requested if used[k] + requested[k] > hard[k]]
        if exceeded:
            raise _forbidden(
                rtype,
                name,
                f"exceeded quota: {quota['metadata']['name']}, "
                f"requested: {_pretty({k: requested[k] for k in exceeded})}, "
                f"used: {_pretty({k: used[k] for k in exceeded})}, "
                f"limited: {_pretty({k: hard[k] for k in exceeded})}",
            )


def quota_status(store: Store, quota: Mapping[str, Any]) -> dict[str, Any]:
    hard = _hard(quota)
    used = namespace_usage(store, quota["metadata"]["namespace"], hard)
    return {
        "hard": {k: str(v) for k, v in hard.items()},
        "used": {k: str(used[k]) for k in hard},
    }


def refresh(store: Store, namespace: str) -> None:
    """Bring every quota in `namespace` up to date (no write if nothing changed)."""
    for quota in list(store.scan(resources.RESOURCEQUOTAS, namespace)):
        status = quota_status(store, quota)
        if quota.get("status") != status:
            store.mutate(
                resources.RESOURCEQUOTAS,
                namespace,
                quota["metadata"]["name"],
                lambda q, status=status: q.__setitem__("status", status),
            )


class QuotaController:
    """Keeps quota status current: one watch per stored type, refreshing the namespace touched."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def run(self) -> None:
        stored = [
            rt for rt in resources.RESOURCE_TYPES if rt.namespaced and rt not in resources.REVIEWS
        ]
        async with asyncio.TaskGroup() as group:
            for rtype in stored:
                group.create_task(self._follow(rtype))

    async def _follow(self, rtype: ResourceType) -> None:
        async with self._store.watch(rtype) as watch:
            async for event in watch:
                namespace = event.object["metadata"].get("namespace")
                if namespace:
                    refresh(self._store, namespace)
