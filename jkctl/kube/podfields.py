"""What each field of ``metadata.jkctl`` takes: one check per field, and the cross-checks.

:func:`check_block` walks a block with a :class:`~.fieldcheck.Checker` and
returns it in canonical form (quantities as strings, ``imagePullSecrets`` as
names, profiles as name -> overrides). A *whole* block also gets the checks
that need several fields at once, after profiles were laid over it: requests
against limits, GPUs only as limits, every volume mount naming a volume, and
cpu and memory defaults filled in. A *fragment* (a profile) gets only the
field checks, so that the merged result is judged as a whole.

The rules are Kubernetes' own where Kubernetes has one (quantities, label
syntax, toleration operators, volume schemas), plus jkctl's reservations:
the ``connection`` and ``podinfo`` volumes, ``/var/run/jkctl``, ``JKCTL_*``
variables and ``jkctl.io/`` labels belong to the pod template.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

from . import names
from .fieldcheck import BAD, Checker
from .quantity import allowed, is_extended, parse_quantity, quantity_problem

GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_REQUESTS: Mapping[str, str] = {"cpu": "500m", "memory": "1Gi"}
DEFAULT_LIMITS: Mapping[str, str] = {"cpu": "2", "memory": "4Gi"}
PULL_POLICIES = ("IfNotPresent", "Always", "Never")
RESERVED_VOLUMES = ("connection", "podinfo")
RESERVED_ENV_PREFIX = "JKCTL_"
RESERVED_LABEL_PREFIX = "jkctl.io/"
RESERVED_MOUNT_DIR = PurePosixPath("/var/run/jkctl")
PROFILE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
_STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_TOLERATION_FIELDS = ("key", "operator", "value", "effect", "tolerationSeconds")
_TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_VOLUMES_REFERENCE = "the Kubernetes reference (kubectl explain pod.spec.volumes)"
_MOUNTS_REFERENCE = "the Kubernetes reference (kubectl explain pod.spec.containers.volumeMounts)"

# Fields people write at the top level that live elsewhere.
_MEANT = {
    "cpu": "resources.requests.cpu",
    "cpus": "resources.requests.cpu",
    "memory": "resources.requests.memory",
    "gpu": f"resources.limits.{GPU_RESOURCE}",
    "gpus": f"resources.limits.{GPU_RESOURCE}",
    "requests": "resources.requests",
    "limits": "resources.limits",
}

FieldCheck = Callable[[Checker, object, str], Any]


def check_block(
    checker: Checker, raw: object, path: str, *, fragment: bool, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """The canonical form of block `raw` at `path`, field by field; problems go to `checker`.

    A `fragment` (a profile) may not name profiles itself; a whole block
    then goes through :func:`complete_block`.
    """
    found = checker.mapping({} if raw is None else raw, path, example='{"image": "..."}')
    if found is None:
        return {}
    known = [key for key in FIELDS if not (fragment and key == "profiles")] + list(extra)
    checked: dict[str, Any] = {}
    for key, value in found.items():
        where = f"{path}.{key}"
        if key in extra:
            result = checker.string(value, where, allowed="text")
        elif key in known:
            result = FIELDS[key](checker, value, where)
        else:
            result = checker.unknown(where, str(key), known, meant=_MEANT.get(str(key).lower()))
        if result is not BAD:
            checked[str(key)] = result
    return checked


def complete_block(checker: Checker, checked: Mapping[str, Any], path: str) -> dict[str, Any]:
    """A whole block's cross-checks; returns it with the cpu and memory defaults filled in."""
    complete = dict(checked)
    _whole_resources(checker, complete, f"{path}.resources")
    _mounts_name_volumes(checker, complete, path)
    return complete


def _image(c: Checker, raw: object, path: str) -> Any:
    image = c.string(raw, path, allowed=names.IMAGE_ALLOWED)
    if image is not BAD and (problem := names.image_problem(image)):
        return c.add(path, problem, f"{path} takes {names.IMAGE_ALLOWED}.")
    return image


def _pull_policy(c: Checker, raw: object, path: str) -> Any:
    if raw not in PULL_POLICIES:
        return c.wrong(path, raw, "one of " + ", ".join(PULL_POLICIES))
    return raw


def _pull_secrets(c: Checker, raw: object, path: str) -> Any:
    found = c.array(raw, path, example='["team-registry"]')
    if found is None:
        return BAD
    secrets: list[str] = []
    for index, item in enumerate(found):
        where = f"{path}[{index}]"
        name = item.get("name") if isinstance(item, Mapping) else item  # both forms, as in a Pod
        allowed_here = f"a Secret's name: {names.DNS_SUBDOMAIN_ALLOWED}"
        if not isinstance(name, str):
            c.wrong(where, item, allowed_here)
        elif problem := names.dns_subdomain_problem(name):
            c.add(where, problem, f"{where} takes {allowed_here}.")
        else:
            secrets.append(name)
    return secrets


def _resources(c: Checker, raw: object, path: str) -> Any:
    example = '{"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}'
    found = c.mapping(raw, path, example=example)
    if found is None:
        return BAD
    checked: dict[str, dict[str, str]] = {}
    for side, amounts in found.items():
        where = f"{path}.{side}"
        if side not in ("requests", "limits"):
            c.unknown(where, str(side), ["requests", "limits"])
        elif (side_amounts := c.mapping(amounts, where, example='{"cpu": "2"}')) is not None:
            checked[side] = _amounts(c, side_amounts, where)
    return checked


def _amounts(c: Checker, amounts: Mapping[str, Any], path: str) -> dict[str, str]:
    checked: dict[str, str] = {}
    for resource, amount in amounts.items():
        where = f"{path}.{resource}"
        if not _known_resource(resource):
            guess = f"Did you mean {GPU_RESOURCE}? " if "gpu" in resource.lower() else ""
            c.add(
                where,
                "is not a resource Kubernetes knows",
                f"{guess}{path} takes cpu, memory, ephemeral-storage, hugepages-SIZE, or an "
                f"extended resource such as {GPU_RESOURCE}.",
            )
        elif isinstance(amount, bool) or not isinstance(amount, str | int | float):
            c.wrong(where, amount, allowed(resource))
        else:
            text = amount if isinstance(amount, str) else _number(amount)
            problem = quantity_problem(text, resource=resource)
            if problem is not None:
                c.add(where, problem, f"{where} takes {allowed(resource)}.")
            else:
                checked[resource] = text
    return checked


def _whole_resources(c: Checker, checked: dict[str, Any], path: str) -> None:
    resources: Mapping[str, Mapping[str, str]] = checked.get("resources", {})
    requests = dict(resources.get("requests", {}))
    limits = dict(resources.get("limits", {}))
    for resource in sorted(name for name in {*requests, *limits} if is_extended(name)):
        if resource not in limits:
            c.add(
                f"{path}.requests.{resource}",
                "is set without a limit",
                f"Set {path}.limits.{resource} instead: Kubernetes never overcommits "
                f"{resource}, so its request is its limit.",
            )
        elif resource in requests and _value(requests[resource]) != _value(limits[resource]):
            c.add(
                f"{path}.requests.{resource}",
                f"is {requests[resource]} but its limit is {limits[resource]}",
                f"Set only {path}.limits.{resource}: its request must equal its limit.",
            )
    # A kernel pod always has cpu and memory requests and limits: defaults fill
    # the gaps, bent so that they never contradict what the spec does set.
    for resource in ("cpu", "memory"):
        if resource not in requests:
            default = DEFAULT_REQUESTS[resource]
            limit = limits.get(resource)
            smaller = limit is not None and _value(limit) < _value(default)
            requests[resource] = limit if smaller and limit is not None else default
        if resource not in limits:
            default = DEFAULT_LIMITS[resource]
            request = requests[resource]
            limits[resource] = request if _value(request) > _value(default) else default
    for resource in sorted(set(requests) & set(limits)):
        if _value(requests[resource]) > _value(limits[resource]):
            c.add(
                f"{path}.requests.{resource}",
                f"is {requests[resource]}, more than its limit {limits[resource]}",
                f"Lower {path}.requests.{resource} or raise {path}.limits.{resource}.",
            )
    checked["resources"] = {"requests": requests, "limits": limits}


def _node_selector(c: Checker, raw: object, path: str) -> Any:
    return c.string_map(
        raw,
        path,
        example='{"nvidia.com/gpu.present": "true"}',
        key_problem=names.qualified_name_problem,
        key_allowed=f"node label keys: {names.QUALIFIED_NAME_ALLOWED}",
        value_problem=names.label_value_problem,
        value_allowed=names.LABEL_VALUE_ALLOWED,
    )


def _tolerations(c: Checker, raw: object, path: str) -> Any:
    example = '[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]'
    found = c.array(raw, path, example=example)
    if found is None:
        return BAD
    checked = [_toleration(c, item, f"{path}[{index}]") for index, item in enumerate(found)]
    return [toleration for toleration in checked if toleration is not BAD]


def _toleration(c: Checker, raw: object, path: str) -> Any:
    found = c.mapping(raw, path, example='{"key": "nvidia.com/gpu", "operator": "Exists"}')
    if found is None:
        return BAD
    before = len(c.problems)
    for key in found:
        if key not in _TOLERATION_FIELDS:
            c.unknown(f"{path}.{key}", str(key), _TOLERATION_FIELDS)
    key, value = found.get("key", ""), found.get("value", "")
    operator, effect = found.get("operator", "Equal"), found.get("effect", "")
    if not isinstance(key, str) or (key and names.qualified_name_problem(key)):
        c.wrong(f"{path}.key", key, f"a taint's key: {names.QUALIFIED_NAME_ALLOWED}")
    if operator not in ("Exists", "Equal"):
        c.wrong(f"{path}.operator", operator, "Exists or Equal")
    elif operator == "Exists" and value:
        c.add(f"{path}.value", "is set with operator Exists", f"Drop {path}.value, or use Equal.")
    elif not key:
        c.add(f"{path}.key", "is empty with operator Equal", f"Set {path}.key, or use Exists.")
    if not isinstance(value, str) or names.label_value_problem(value):
        c.wrong(f"{path}.value", value, names.LABEL_VALUE_ALLOWED)
    if effect not in ("", *_TOLERATION_EFFECTS):
        c.wrong(f"{path}.effect", effect, ", ".join(_TOLERATION_EFFECTS) + ", or nothing for all")
    seconds = found.get("tolerationSeconds")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int) or effect != "NoExecute"
    ):
        c.wrong(f"{path}.tolerationSeconds", seconds, "whole seconds, with effect NoExecute only")
    if len(c.problems) > before:
        return BAD
    return {name: found[name] for name in _TOLERATION_FIELDS if found.get(name) not in (None, "")}


def _env(c: Checker, raw: object, path: str) -> Any:
    def name_problem(name: str) -> str | None:
        if name.upper().startswith(RESERVED_ENV_PREFIX):
            return f"is {name!r}; names starting {RESERVED_ENV_PREFIX} are jkctl's own"
        problem = names.env_name_problem(name)
        return f"is {name!r}, which {problem}" if problem else None

    return c.string_map(
        raw,
        path,
        example='{"MPLBACKEND": "agg"}',
        key_problem=name_problem,
        key_allowed=names.ENV_NAME_ALLOWED,
    )


def _working_dir(c: Checker, raw: object, path: str) -> Any:
    text = c.string(raw, path, allowed="an absolute path such as /home/jovyan")
    if text is not BAD and not text.startswith("/"):
        return c.wrong(path, text, "an absolute path such as /home/jovyan")
    return text


def _user_id(c: Checker, raw: object, path: str) -> Any:
    lowest = 1 if path.endswith("runAsUser") else 0
    if isinstance(raw, bool) or not isinstance(raw, int) or not lowest <= raw < 2**31:
        why = " (kernel pods never run as root)" if raw == 0 and lowest else ""
        return c.wrong(path, raw, f"a numeric id from {lowest} up, such as 1000", why=why)
    return raw


def _account(c: Checker, raw: object, path: str) -> Any:
    name = c.string(raw, path, allowed=names.DNS_SUBDOMAIN_ALLOWED)
    if name is not BAD and (problem := names.dns_subdomain_problem(name)):
        return c.add(path, problem, f"{path} takes a ServiceAccount's name.")
    return name


def _own_key(key: str) -> str | None:
    if key.startswith(RESERVED_LABEL_PREFIX):
        return f"is {key!r}; keys under {RESERVED_LABEL_PREFIX} are jkctl's own"
    return names.qualified_name_problem(key)


def _labels(c: Checker, raw: object, path: str) -> Any:
    return c.string_map(
        raw,
        path,
        example='{"team": "geo"}',
        key_problem=_own_key,
        key_allowed=f"{names.QUALIFIED_NAME_ALLOWED}, not under {RESERVED_LABEL_PREFIX}",
        value_problem=names.label_value_problem,
        value_allowed=names.LABEL_VALUE_ALLOWED,
    )


def _annotations(c: Checker, raw: object, path: str) -> Any:
    return c.string_map(
        raw,
        path,
        example='{"example.com/cost-center": "42"}',
        key_problem=_own_key,
        key_allowed=f"{names.QUALIFIED_NAME_ALLOWED}, not under {RESERVED_LABEL_PREFIX}",
    )


def _volumes(c: Checker, raw: object, path: str) -> Any:
    example = '[{"name": "data", "persistentVolumeClaim": {"claimName": "geo-data"}}]'
    found = c.array(raw, path, example=example)
    if found is None:
        return BAD
    checked = []
    for index, item in enumerate(found):
        where = f"{path}[{index}]"
        if not c.kube_model("V1Volume", item, where, reference=_VOLUMES_REFERENCE):
            continue
        if item["name"] in RESERVED_VOLUMES:
            c.add(
                f"{where}.name",
                f"is {item['name']!r}, a volume of jkctl's pod template",
                f"Name it something other than {' or '.join(RESERVED_VOLUMES)}.",
            )
        else:
            checked.append(dict(item))
    return checked


def _volume_mounts(c: Checker, raw: object, path: str) -> Any:
    found = c.array(raw, path, example='[{"name": "data", "mountPath": "/data"}]')
    if found is None:
        return BAD
    checked = []
    for index, item in enumerate(found):
        where = f"{path}[{index}]"
        if not c.kube_model("V1VolumeMount", item, where, reference=_MOUNTS_REFERENCE):
            continue
        mount = PurePosixPath(item["mountPath"])
        inside = mount == RESERVED_MOUNT_DIR or RESERVED_MOUNT_DIR in mount.parents
        if not mount.is_absolute() or inside:
            c.wrong(
                f"{where}.mountPath",
                item["mountPath"],
                f"an absolute path outside {RESERVED_MOUNT_DIR}, such as /data",
            )
        else:
            checked.append(dict(item))
    return checked


def _mounts_name_volumes(c: Checker, checked: Mapping[str, Any], path: str) -> None:
    declared = {volume["name"] for volume in checked.get("volumes", ())}
    for index, mount in enumerate(checked.get("volumeMounts", ())):
        if mount["name"] not in declared:
            c.add(
                f"{path}.volumeMounts[{index}].name",
                f"is {mount['name']!r}, which {path}.volumes does not declare",
                f"Add a volume named {mount['name']!r} to {path}.volumes.",
            )


def _template_values(c: Checker, raw: object, path: str) -> Any:
    found = c.mapping(raw, path, example='{"data_claim": "geo-data"}')
    return dict(found) if found is not None else BAD


def _profiles(c: Checker, raw: object, path: str) -> Any:
    if isinstance(raw, list | tuple) and all(isinstance(name, str) for name in raw):
        raw = {name: {} for name in raw}
    example = '["small", "large", "gpu"], or {"gpu": {"image": "..."}} to adjust one'
    found = c.mapping(raw, path, example=example)
    if found is None:
        return BAD
    checked: dict[str, dict[str, Any]] = {}
    for name, overrides in found.items():
        where = f"{path}.{name}"
        if not PROFILE_NAME.match(name):
            c.wrong(where, name, "profile names: lower-case letters, digits and '-'")
        else:
            checked[name] = check_block(c, overrides, where, fragment=True, extra=("displayName",))
    return checked


def _known_resource(name: str) -> bool:
    if name in _STANDARD_RESOURCES or name.startswith("hugepages-"):
        return True
    return "/" in name and names.qualified_name_problem(name) is None


def _number(value: int | float) -> str:
    return f"{Decimal(repr(value)).normalize():f}" if isinstance(value, float) else str(value)


def _value(quantity: str) -> Decimal:
    return parse_quantity(quantity)


FIELDS: dict[str, FieldCheck] = {
    "image": _image,
    "imagePullPolicy": _pull_policy,
    "imagePullSecrets": _pull_secrets,
    "resources": _resources,
    "nodeSelector": _node_selector,
    "tolerations": _tolerations,
    "env": _env,
    "workingDir": _working_dir,
    "runAsUser": _user_id,
    "runAsGroup": _user_id,
    "serviceAccountName": _account,
    "labels": _labels,
    "annotations": _annotations,
    "volumes": _volumes,
    "volumeMounts": _volume_mounts,
    "templateValues": _template_values,
    "profiles": _profiles,
}
