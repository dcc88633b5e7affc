"""What a kernelspec asks of its pod: the one place the backend reads ``metadata.jkctl``.

:func:`pod_requirements` turns a kernelspec's ``metadata.jkctl`` block into
:class:`PodRequirements` (image, pull policy, requests and limits, node
selector, tolerations, env, working directory, the spec's own pod template).
It checks only what the backend needs to go on (types, an image), because
the full schema of that block -- quantities, label syntax, profiles -- is
the kernelspec loader's job (see the ``templates`` work); when that lands,
this function becomes a thin conversion from its checked result and nothing
else in the backend changes.

What this module does not do: launch variables (:mod:`.launchvars`) or
rendering (:mod:`.manifests`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jkctl.backends.base import LaunchSpec
from jkctl.errors import TemplateError

#: A kernel pod always has requests and limits; these stand in for what a spec leaves out.
DEFAULT_REQUESTS: Mapping[str, str] = {"cpu": "500m", "memory": "1Gi"}
DEFAULT_LIMITS: Mapping[str, str] = {"cpu": "2", "memory": "4Gi"}
#: A kernelspec folder may carry its own pod template under this name.
TEMPLATE_FILE = "kernel-pod.yaml.j2"
_PULL_POLICIES = ("IfNotPresent", "Always", "Never")


@dataclass(frozen=True, kw_only=True)
class PodRequirements:
    image: str
    image_pull_policy: str = "IfNotPresent"
    requests: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_REQUESTS))
    limits: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    run_as_user: int | None = None
    run_as_group: int | None = None
    #: The spec's own pod template; None means jkctl's shared one.
    template: Path | None = None
    #: Free-form values for the spec's own template (``extra`` in it).
    template_values: Mapping[str, Any] = field(default_factory=dict)

    def resources(self) -> dict[str, dict[str, str]]:
        return {"requests": dict(self.requests), "limits": dict(self.limits)}


def pod_requirements(spec: LaunchSpec) -> PodRequirements:
    """The pod that kernelspec ``spec`` asks for; TemplateError naming the field if unusable."""
    block = spec.jkctl
    where = f"kernelspec '{spec.name}' ({spec.resource_dir / 'kernel.json'})"
    image = block.get("image")
    if not isinstance(image, str) or not image.strip():
        raise TemplateError(
            f"The {where} names no image for its pod (metadata.jkctl.image).",
            hint='Add e.g. "metadata": {"jkctl": {"image": "quay.io/jupyter/base-notebook"}}, '
            "or pass KERNEL_IMAGE in the launch request.",
        )
    policy = block.get("imagePullPolicy", "IfNotPresent")
    if policy not in _PULL_POLICIES:
        raise _bad(where, "imagePullPolicy", "one of " + ", ".join(_PULL_POLICIES))
    resources = _mapping(block.get("resources", {}), where, "resources")
    requests = {**DEFAULT_REQUESTS, **_strings(resources.get("requests", {}), where, "requests")}
    limits = {**DEFAULT_LIMITS, **_strings(resources.get("limits", {}), where, "limits")}
    tolerations = block.get("tolerations", [])
    if not isinstance(tolerations, list) or not all(isinstance(t, Mapping) for t in tolerations):
        raise _bad(where, "tolerations", "a list of toleration objects")
    working_dir = block.get("workingDir")
    if working_dir is not None and not isinstance(working_dir, str):
        raise _bad(where, "workingDir", "a path")
    template = spec.resource_dir / TEMPLATE_FILE
    return PodRequirements(
        image=image.strip(),
        image_pull_policy=policy,
        requests=requests,
        limits=limits,
        node_selector=_strings(block.get("nodeSelector", {}), where, "nodeSelector"),
        tolerations=tuple(dict(t) for t in tolerations),
        env=_strings(block.get("env", {}), where, "env"),
        working_dir=working_dir,
        run_as_user=_optional_int(block.get("runAsUser"), where, "runAsUser"),
        run_as_group=_optional_int(block.get("runAsGroup"), where, "runAsGroup"),
        template=template if template.is_file() else None,
        template_values=_mapping(block.get("templateValues", {}), where, "templateValues"),
    )


def _bad(where: str, name: str, wanted: str) -> TemplateError:
    return TemplateError(
        f"The {where} has an invalid metadata.jkctl.{name}.",
        hint=f"metadata.jkctl.{name} takes {wanted}.",
    )


def _mapping(value: object, where: str, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(where, name, "an object")
    return value


def _strings(value: object, where: str, name: str) -> dict[str, str]:
    """A mapping of names to strings; numbers become strings (``"cpu": 2``)."""
    mapping = _mapping(value, where, name)
    found: dict[str, str] = {}
    for key, item in mapping.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise _bad(where, f"{name}.{key}", "a string")
        found[str(key)] = str(item)
    return found


def _optional_int(value: object, where: str, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(where, name, "a user or group id other than 0 (root)")
    return value
