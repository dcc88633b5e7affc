"""Enterprise Gateway's launch variables (``KERNEL_*``), checked and applied to a pod.

A launch request's ``env`` (what Jupyter Server's GatewayClient sends, and
what EG's users already pass) can tune the kernel's pod. Each variable is
checked for its syntax here and refused with a 400 saying which variable and
what it takes; none can add structure to the pod (values only ever become
single fields, and the pod template emits every value as one JSON literal).

=======================  ====================================================
variable                 effect
=======================  ====================================================
KERNEL_USERNAME          1-128 printable characters: the pod's owner label
                         (made label-safe) and ``jkctl.io/username``
KERNEL_NAMESPACE         must be the daemon's namespace, if given (see below)
KERNEL_IMAGE             an image reference; replaces the kernelspec's image
KERNEL_CPUS[_LIMIT]      a CPU quantity (``2``, ``0.5``, ``500m``): requests.cpu
                         (limits.cpu); a request above the spec's limit
                         raises the limit with it
KERNEL_MEMORY[_LIMIT]    a memory quantity (``4Gi``, ``512Mi``, ``2G``), at
                         least 16Mi: requests.memory (limits.memory), likewise
KERNEL_GPUS[_LIMIT]      a whole number of NVIDIA GPUs (``nvidia.com/gpu``,
                         request = limit, as Kubernetes requires), with the
                         toleration GPU nodes' taint usually asks for
KERNEL_WORKING_DIR       an absolute path: the container's workingDir
KERNEL_UID, KERNEL_GID   a user/group id other than 0: runAsUser/runAsGroup
KERNEL_VOLUMES,          refused: volumes are structure, which belongs in a
KERNEL_VOLUME_MOUNTS     kernelspec's pod settings, not in a request
=======================  ====================================================

Every ``KERNEL_*`` variable (but the refused ones and ``KERNEL_ID``, which
jkctl sets) also reaches the kernel's environment, as with EG.

**KERNEL_NAMESPACE** may only name the daemon's own namespace. The daemon
checked its permissions there before serving, watches its pods there, renews
their leases there, and a restarted daemon finds its kernels by listing that
namespace: a kernel elsewhere would be outside all of that (and listing
every namespace needs cluster-wide rights most users do not have). Use one
daemon per namespace: ``jkctl connect --namespace NAME``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from jkctl.errors import UsageError

from .requirements import PodRequirements

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TOLERATION: Mapping[str, str] = {
    "key": GPU_RESOURCE,
    "operator": "Exists",
    "effect": "NoSchedule",
}
_REFUSED = ("KERNEL_VOLUMES", "KERNEL_VOLUME_MOUNTS")
_SET_BY_JKCTL = ("KERNEL_ID",)
_MAX_GPUS = 64
_MIN_MEMORY = Decimal(16 * 2**20)

_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$")
_DNS_LABEL = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
# The distribution reference grammar: a first component is a registry only if it has a
# dot or a port, or is localhost; the path is lower-case.
_REGISTRY = r"(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|[A-Za-z0-9-]+)(?::[0-9]+)?"
_IMAGE = re.compile(
    rf"^(?:(?={_REGISTRY}/)(?:localhost(?::[0-9]+)?|[^/]*[.:][^/]*)/)?"
    rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[0-9a-f]{64})?$"
)
_CPU = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?P<suffix>m?)$")
_MEMORY = re.compile(
    r"^(?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
)
_BINARY_SUFFIXES = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_DECIMAL_SUFFIXES = ("k", "M", "G", "T", "P", "E")
_MEMORY_FACTOR: dict[str, int] = {
    "": 1,
    **{suffix: 2 ** (10 * (i + 1)) for i, suffix in enumerate(_BINARY_SUFFIXES)},
    **{suffix: 10 ** (3 * (i + 1)) for i, suffix in enumerate(_DECIMAL_SUFFIXES)},
}


@dataclass(frozen=True, kw_only=True)
class LaunchVariables:
    """A launch request's ``KERNEL_*`` variables, checked."""

    username: str | None = None
    image: str | None = None
    cpus: str | None = None
    cpus_limit: str | None = None
    memory: str | None = None
    memory_limit: str | None = None
    gpus: int | None = None
    gpus_limit: int | None = None
    working_dir: str | None = None
    uid: int | None = None
    gid: int | None = None
    #: What reaches the kernel's environment.
    env: Mapping[str, str] = field(default_factory=dict)


def parse_launch_env(env: Mapping[str, str], *, namespace: str) -> LaunchVariables:
    """Check the ``KERNEL_*`` variables of a launch for a daemon serving ``namespace``."""
    for name in _REFUSED:
        if name in env:
            raise UsageError(
                f"The launch variable {name} is not supported: a launch request cannot add "
                "volumes to a kernel's pod.",
                hint="Give the kernelspec the volumes it needs (metadata.jkctl) and start that.",
            )
    for name, value in env.items():
        if not _PRINTABLE.match(value) and value:
            raise _invalid(name, value, "printable text on one line")
    _check_namespace(env.get("KERNEL_NAMESPACE"), namespace)
    username = env.get("KERNEL_USERNAME") or None
    if username is not None and len(username) > 128:
        raise _invalid("KERNEL_USERNAME", username, "a user name of at most 128 characters")
    image = env.get("KERNEL_IMAGE") or None
    if image is not None and not _IMAGE.fullmatch(image):
        raise _invalid(
            "KERNEL_IMAGE", image, "an image reference such as quay.io/jupyter/scipy-notebook:2024"
        )
    working_dir = env.get("KERNEL_WORKING_DIR") or None
    if working_dir is not None and (not working_dir.startswith("/") or len(working_dir) > 1024):
        raise _invalid("KERNEL_WORKING_DIR", working_dir, "an absolute path inside the image")
    return LaunchVariables(
        username=username,
        image=image,
        cpus=_cpu(env, "KERNEL_CPUS"),
        cpus_limit=_cpu(env, "KERNEL_CPUS_LIMIT"),
        memory=_memory(env, "KERNEL_MEMORY"),
        memory_limit=_memory(env, "KERNEL_MEMORY_LIMIT"),
        gpus=_count(env, "KERNEL_GPUS"),
        gpus_limit=_count(env, "KERNEL_GPUS_LIMIT"),
        working_dir=working_dir,
        uid=_id(env, "KERNEL_UID"),
        gid=_id(env, "KERNEL_GID"),
        env={k: v for k, v in env.items() if k not in _REFUSED and k not in _SET_BY_JKCTL},
    )


def apply_launch(requirements: PodRequirements, launch: LaunchVariables) -> PodRequirements:
    """The kernelspec's pod with the launch's choices laid over it."""
    requests, limits = dict(requirements.requests), dict(requirements.limits)
    for resource, request, limit, magnitude in (
        ("cpu", launch.cpus, launch.cpus_limit, cpu_value),
        ("memory", launch.memory, launch.memory_limit, memory_value),
    ):
        if request is not None:
            requests[resource] = request
        if limit is not None:
            limits[resource] = limit
        if resource in requests and resource in limits:
            wanted, allowed = magnitude(requests[resource]), magnitude(limits[resource])
            if wanted > allowed:
                if limit is not None:
                    raise UsageError(
                        f"The launch asks for {requests[resource]} {resource} but limits it to "
                        f"{limits[resource]}.",
                        hint=f"Make KERNEL_{_NAMES[resource]}_LIMIT at least "
                        f"KERNEL_{_NAMES[resource]}.",
                    )
                limits[resource] = requests[resource]  # asked for more: allow it
    gpus = launch.gpus_limit if launch.gpus_limit is not None else launch.gpus
    tolerations = requirements.tolerations
    if gpus is not None:
        if launch.gpus is not None and launch.gpus_limit is not None and launch.gpus != gpus:
            raise UsageError(
                "KERNEL_GPUS and KERNEL_GPUS_LIMIT differ; Kubernetes needs a GPU request to "
                "equal its limit.",
                hint="Pass only KERNEL_GPUS.",
            )
        requests.pop(GPU_RESOURCE, None)
        limits.pop(GPU_RESOURCE, None)
        if gpus:
            requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(gpus)
            if not any(t.get("key") == GPU_RESOURCE for t in tolerations):
                tolerations = (*tolerations, GPU_TOLERATION)
    return dataclasses.replace(
        requirements,
        image=launch.image or requirements.image,
        requests=requests,
        limits=limits,
        tolerations=tolerations,
        working_dir=launch.working_dir or requirements.working_dir,
        run_as_user=launch.uid or requirements.run_as_user,
        run_as_group=launch.gid or requirements.run_as_group,
    )


_NAMES = {"cpu": "CPUS", "memory": "MEMORY"}


def cpu_value(quantity: str) -> Decimal:
    match = _CPU.fullmatch(quantity)
    if match is None:
        return _loose_value(quantity)
    number = Decimal(str(match["number"]))
    return number / 1000 if match["suffix"] == "m" else number


def memory_value(quantity: str) -> Decimal:
    match = _MEMORY.fullmatch(quantity)
    if match is None:
        return _loose_value(quantity)
    suffix: str = match["suffix"] or ""
    return Decimal(str(match["number"])) * _MEMORY_FACTOR[suffix]


def _loose_value(quantity: str) -> Decimal:
    """A kernelspec's quantity this module's strict grammar does not read: compare as
    unknown (never larger), leaving the API server to judge it."""
    try:
        return Decimal(quantity)
    except InvalidOperation:
        return Decimal(0)


def _check_namespace(wanted: str | None, namespace: str) -> None:
    if not wanted or wanted == namespace:
        return
    if not _DNS_LABEL.fullmatch(wanted):
        raise _invalid("KERNEL_NAMESPACE", wanted, "a namespace name")
    raise UsageError(
        f"This jkctl daemon runs kernels in namespace {namespace}, not {wanted} "
        "(KERNEL_NAMESPACE).",
        hint=f"Run a daemon for that namespace (jkctl connect --namespace {wanted}), or leave "
        "KERNEL_NAMESPACE out.",
    )


def _cpu(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if not value:
        return None
    if not _CPU.fullmatch(value) or cpu_value(value) <= 0:
        raise _invalid(name, value, "a number of CPUs such as 2, 0.5 or 500m")
    return value


def _memory(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if not value:
        return None
    if not _MEMORY.fullmatch(value):
        raise _invalid(name, value, "an amount of memory such as 4Gi, 512Mi or 2G")
    if memory_value(value) < _MIN_MEMORY:
        raise _invalid(name, value, "at least 16Mi, with a unit (4Gi, not 4)")
    return value


def _count(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or int(value) > _MAX_GPUS:
        raise _invalid(name, value, f"a whole number of GPUs from 0 to {_MAX_GPUS}")
    return int(value)


def _id(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or not 0 < int(value) < 2**31:
        raise _invalid(name, value, "a numeric user or group id other than 0 (root)")
    return int(value)


def _invalid(name: str, value: str, wanted: str) -> UsageError:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return UsageError(
        f"The launch variable {name}={shown!r} is invalid.",
        hint=f"{name} takes {wanted}.",
    )
