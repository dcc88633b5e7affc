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
KERNEL_CPUS[_LIMIT]      a CPU quantity (``2``, ``0.5``, ``500m``), more than
                         0: requests.cpu (limits.cpu); a request above the
                         spec's limit raises the limit with it
KERNEL_MEMORY[_LIMIT]    a memory quantity (``4Gi``, ``512Mi``, ``2G``), at
                         least 16Mi: requests.memory (limits.memory), likewise
KERNEL_GPUS[_LIMIT]      a whole number of NVIDIA GPUs: limits.nvidia.com/gpu
                         (a GPU's request is its limit), with the toleration
                         GPU nodes' taint usually asks for
KERNEL_WORKING_DIR       ignored: it names the notebook's folder on the laptop
                         (Jupyter Server sends it with every launch), which
                         the pod does not have; a kernelspec sets the pod's
                         ``workingDir``. Enterprise Gateway ignores it too
                         unless told to mirror working directories.
KERNEL_UID, KERNEL_GID   a user/group id other than 0: runAsUser/runAsGroup
KERNEL_VOLUMES,          refused: volumes are structure, which belongs in a
KERNEL_VOLUME_MOUNTS     kernelspec's pod settings, not in a request
=======================  ====================================================

Every ``KERNEL_*`` variable (but the refused ones and ``KERNEL_ID``, which
jkctl sets) also reaches the kernel's environment, as with EG.

The syntax rules are the kernelspec schema's own (:mod:`jkctl.kube.names`,
:mod:`jkctl.kube.quantity`), and the result is laid over the kernelspec's
pod settings with :meth:`PodConfig.merged <jkctl.kube.podconfig.PodConfig.merged>`,
which checks the whole again: a launch can ask for nothing a kernelspec could
not.

**KERNEL_NAMESPACE** may only name the daemon's own namespace. The daemon
checked its permissions there before serving, watches its pods there, renews
their leases there, and a restarted daemon finds its kernels by listing that
namespace: a kernel elsewhere would be outside all of that (and listing
every namespace needs cluster-wide rights most users do not have). Use one
daemon per namespace: ``jkctl connect --namespace NAME``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from jkctl.errors import TemplateError, UsageError
from jkctl.kube import names
from jkctl.kube.podconfig import PodConfig
from jkctl.kube.quantity import parse_quantity, quantity_problem

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
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]*")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_NAMES = {"cpu": "CPUS", "memory": "MEMORY"}


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
    uid: int | None = None
    gid: int | None = None
    #: What reaches the kernel's environment.
    env: Mapping[str, str] = field(default_factory=dict)


#: Variables that describe the laptop, not the pod: dropped before a launch is read.
_LAPTOP_ONLY = frozenset({"KERNEL_WORKING_DIR"})


def pod_launch_env(env: Mapping[str, str]) -> dict[str, str]:
    """The launch variables that mean something to a kernel's pod."""
    return {name: value for name, value in env.items() if name not in _LAPTOP_ONLY}


def parse_launch_env(env: Mapping[str, str], *, namespace: str) -> LaunchVariables:
    """Check the ``KERNEL_*`` variables of a launch for a daemon serving ``namespace``."""
    env = pod_launch_env(env)
    for name in _REFUSED:
        if name in env:
            raise UsageError(
                f"The launch variable {name} is not supported: a launch request cannot add "
                "volumes to a kernel's pod.",
                hint="Give the kernelspec the volumes it needs (metadata.jkctl) and start that.",
            )
    for name, value in env.items():
        if not _PRINTABLE.fullmatch(value):
            raise _invalid(name, value, "printable text on one line")
    _check_namespace(env.get("KERNEL_NAMESPACE"), namespace)
    username = env.get("KERNEL_USERNAME") or None
    if username is not None and len(username) > 128:
        raise _invalid("KERNEL_USERNAME", username, "a user name of at most 128 characters")
    image = env.get("KERNEL_IMAGE") or None
    if image is not None and names.image_problem(image):
        raise _invalid("KERNEL_IMAGE", image, names.IMAGE_ALLOWED)
    return LaunchVariables(
        username=username,
        image=image,
        cpus=_cpu(env, "KERNEL_CPUS"),
        cpus_limit=_cpu(env, "KERNEL_CPUS_LIMIT"),
        memory=_memory(env, "KERNEL_MEMORY"),
        memory_limit=_memory(env, "KERNEL_MEMORY_LIMIT"),
        gpus=_count(env, "KERNEL_GPUS"),
        gpus_limit=_count(env, "KERNEL_GPUS_LIMIT"),
        uid=_id(env, "KERNEL_UID"),
        gid=_id(env, "KERNEL_GID"),
        env={k: v for k, v in env.items() if k not in _REFUSED and k not in _SET_BY_JKCTL},
    )


def apply_launch(config: PodConfig, launch: LaunchVariables) -> PodConfig:
    """The kernelspec's pod settings with the launch's choices laid over them."""
    fragment = launch_fragment(config, launch)
    if not fragment:
        return config
    try:
        return config.merged(fragment, source="the launch request", field="KERNEL_*")
    except TemplateError as error:
        raise UsageError(error.message, hint=error.hint, context=error.context) from error


def launch_fragment(config: PodConfig, launch: LaunchVariables) -> dict[str, Any]:
    """The launch's choices as a ``metadata.jkctl`` fragment."""
    fragment: dict[str, Any] = {}
    resources, tolerations = _resources(config, launch)
    if resources:
        fragment["resources"] = resources
    if tolerations:
        fragment["tolerations"] = tolerations
    for key, chosen in (
        ("image", launch.image),
        ("runAsUser", launch.uid),
        ("runAsGroup", launch.gid),
    ):
        if chosen:
            fragment[key] = chosen
    return fragment


def _resources(
    config: PodConfig, launch: LaunchVariables
) -> tuple[dict[str, dict[str, str]], list[dict[str, str]]]:
    """The requests and limits a launch asks for, and the tolerations its GPUs need."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for resource, request, limit in (
        ("cpu", launch.cpus, launch.cpus_limit),
        ("memory", launch.memory, launch.memory_limit),
    ):
        if request is not None:
            requests[resource] = request
        if limit is not None:
            limits[resource] = limit
        wanted = request or config.resources.requests.get(resource)
        allowed = limit or config.resources.limits.get(resource)
        if wanted and allowed and parse_quantity(wanted) > parse_quantity(allowed):
            if limit is not None:
                raise UsageError(
                    f"The launch asks for {wanted} {resource} but limits it to {limit}.",
                    hint=f"Make KERNEL_{_NAMES[resource]}_LIMIT at least "
                    f"KERNEL_{_NAMES[resource]}.",
                )
            limits[resource] = wanted  # asked for more than the spec allows: allow it
    if None not in (launch.gpus, launch.gpus_limit) and launch.gpus != launch.gpus_limit:
        raise UsageError(
            "KERNEL_GPUS and KERNEL_GPUS_LIMIT differ; Kubernetes needs a GPU request to "
            "equal its limit.",
            hint="Pass only KERNEL_GPUS.",
        )
    gpus = launch.gpus_limit if launch.gpus_limit is not None else launch.gpus
    tolerations = []
    if gpus is not None:
        limits[GPU_RESOURCE] = str(gpus)
        if gpus and not any(t.get("key") == GPU_RESOURCE for t in config.tolerations):
            tolerations.append(dict(GPU_TOLERATION))
    sides = {"requests": requests, "limits": limits}
    return {side: amounts for side, amounts in sides.items() if amounts}, tolerations


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
    if quantity_problem(value, resource="cpu") or parse_quantity(value) <= 0:
        raise _invalid(name, value, "a number of CPUs such as 2, 0.5 or 500m")
    return value


def _memory(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if not value:
        return None
    if quantity_problem(value, resource="memory"):
        raise _invalid(name, value, "an amount of memory such as 4Gi, 512Mi or 2G")
    if parse_quantity(value) < _MIN_MEMORY:
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
