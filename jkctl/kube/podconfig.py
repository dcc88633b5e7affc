"""`metadata.jkctl`: a kernelspec's pod settings, typed and checked field by field.

A kernelspec's ``kernel.json`` is a standard Jupyter kernelspec plus a
``metadata.jkctl`` block saying how its pod looks::

    "metadata": {"jkctl": {
        "image": "quay.io/jupyter/base-notebook:2024-12-02",
        "imagePullPolicy": "IfNotPresent",
        "imagePullSecrets": ["team-registry"],
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                      "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}},
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "env": {"MPLBACKEND": "agg"},
        "workingDir": "/home/jovyan",
        "runAsUser": 1000, "runAsGroup": 100,
        "serviceAccountName": "kernels",
        "labels": {"team": "geo"}, "annotations": {"example.com/cost-center": "42"},
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "geo-data"}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "templateValues": {"anything": "a spec's own kernel-pod.yaml.j2 reads as extra.anything"},
        "profiles": ["small", "large", "gpu"]
    }}

:func:`parse_pod_config` turns such a block into a :class:`PodConfig`, or
raises one :class:`~jkctl.errors.TemplateError` whose message names the file
and the first bad field (``metadata.jkctl.resources.requests.cpu``) and whose
hint says what that field takes; further problems are listed in its context
(the rules per field are in :mod:`.podfields`). CPU and memory left out take
jkctl's defaults, so a kernel pod always has requests and limits.

Lives in ``jkctl.kube`` so that both the kernelspec loader (``jkctl.kernels``)
and the Kubernetes backend (``jkctl.backends``) can use it. Profiles are
fragments of this same block: :func:`check_fragment` checks one on its own
and :func:`merge_blocks` lays it over a spec's block; multiplying specs by
profiles is the loader's job (:mod:`jkctl.kernels.profiles`), rendering a pod
from a PodConfig :mod:`jkctl.kube.podtemplate`'s. This module reads no files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fieldcheck import Checker
from .podfields import (
    DEFAULT_LIMITS,
    DEFAULT_REQUESTS,
    GPU_RESOURCE,
    check_block,
    complete_block,
)
from .quantity import parse_quantity

FIELD = "metadata.jkctl"
#: A spec's own pod template, in its folder (or beside its folder, for all its neighbours).
TEMPLATE_FILE = "kernel-pod.yaml.j2"


@dataclass(frozen=True, kw_only=True)
class Resources:
    """Requests and limits, as Kubernetes quantity strings keyed by resource name."""

    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)

    @property
    def gpus(self) -> int:
        """How many NVIDIA GPUs (a GPU's request is its limit)."""
        amount = self.limits.get(GPU_RESOURCE) or self.requests.get(GPU_RESOURCE)
        return int(parse_quantity(amount)) if amount else 0

    def to_json(self) -> dict[str, dict[str, str]]:
        found = {"requests": dict(self.requests), "limits": dict(self.limits)}
        return {side: amounts for side, amounts in found.items() if amounts}


@dataclass(frozen=True, kw_only=True)
class PodConfig:
    """A kernelspec's ``metadata.jkctl`` block, checked: what its kernel pods are rendered from."""

    #: None: the spec names no image (it runs on the local backend, or with KERNEL_IMAGE).
    image: str | None = None
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: tuple[str, ...] = ()
    resources: Resources = field(
        default_factory=lambda: Resources(requests=DEFAULT_REQUESTS, limits=DEFAULT_LIMITS)
    )
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    run_as_user: int | None = None
    run_as_group: int | None = None
    service_account_name: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    volumes: tuple[Mapping[str, Any], ...] = ()
    volume_mounts: tuple[Mapping[str, Any], ...] = ()
    template_values: Mapping[str, Any] = field(default_factory=dict)
    #: Profile name -> this spec's own overrides for it (a checked fragment, often empty).
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: The pod template to render; None means jkctl's shared one. Set by the loader.
    pod_template: Path | None = None
    #: The block as written (checked, canonical, without defaults): what profiles and
    #: launch overrides are laid over, so that they adjust a default rather than fight it.
    written: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The block in canonical form: defaults filled in, empty fields left out."""
        block: dict[str, Any] = {
            "image": self.image,
            "imagePullPolicy": self.image_pull_policy,
            "imagePullSecrets": list(self.image_pull_secrets),
            "resources": self.resources.to_json(),
            "nodeSelector": dict(self.node_selector),
            "tolerations": [dict(t) for t in self.tolerations],
            "env": dict(self.env),
            "workingDir": self.working_dir,
            "runAsUser": self.run_as_user,
            "runAsGroup": self.run_as_group,
            "serviceAccountName": self.service_account_name,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "volumes": [dict(v) for v in self.volumes],
            "volumeMounts": [dict(m) for m in self.volume_mounts],
            "templateValues": dict(self.template_values),
            "profiles": {name: dict(over) for name, over in self.profiles.items()},
        }
        return {key: value for key, value in block.items() if value not in (None, [], {})}

    def merged(self, fragment: Mapping[str, Any], *, source: str, field: str) -> PodConfig:
        """This config with `fragment` (same schema, e.g. a launch's overrides) laid over it.

        `source` and `field` name where the fragment came from in errors
        (``"the launch request"``, ``"KERNEL_*"``).
        """
        checked = check_fragment(fragment, source=source, field=field)
        block = merge_blocks(self.written, checked)
        return parse_pod_config(block, source=source, pod_template=self.pod_template)


def parse_pod_config(
    block: object, *, source: str, field: str = FIELD, pod_template: Path | None = None
) -> PodConfig:
    """Check a whole ``metadata.jkctl`` block (None if there is none) read from `source`.

    Raises TemplateError naming `source`, the first bad field and what it takes.
    """
    checker = Checker()
    written = check_block(checker, block, field, fragment=False)
    checked = complete_block(checker, written, field)
    checker.raise_problems(source)
    return _build(checked, pod_template, written)


def check_fragment(
    block: object, *, source: str, field: str, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Check part of a block (a profile): every field optional, no defaults, no cross-checks.

    `extra` names further text fields the fragment may carry (a profile's
    ``displayName``). Returns the fragment in canonical form.
    """
    checker = Checker()
    checked = check_block(checker, block, field, fragment=True, extra=extra)
    checker.raise_problems(source)
    return checked


def merge_blocks(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`overlay` laid over `base` (both canonical): objects merge by key, arrays add up,
    other values are replaced; ``resources`` merges per side and resource."""
    merged = dict(base)
    for key, value in overlay.items():
        old = merged.get(key)
        if key == "resources" and isinstance(old, Mapping):
            merged[key] = {
                side: {**old.get(side, {}), **value.get(side, {})}
                for side in ("requests", "limits")
                if old.get(side) or value.get(side)
            }
        elif isinstance(value, Mapping) and isinstance(old, Mapping):
            merged[key] = {**old, **value}
        elif isinstance(value, list) and isinstance(old, list):
            merged[key] = old + [item for item in value if item not in old]
        else:
            merged[key] = value
    return merged


def _build(
    checked: Mapping[str, Any], pod_template: Path | None, written: Mapping[str, Any]
) -> PodConfig:
    resources = checked["resources"]
    return PodConfig(
        image=checked.get("image"),
        image_pull_policy=checked.get("imagePullPolicy", "IfNotPresent"),
        image_pull_secrets=tuple(checked.get("imagePullSecrets", ())),
        resources=Resources(requests=resources["requests"], limits=resources["limits"]),
        node_selector=checked.get("nodeSelector", {}),
        tolerations=tuple(checked.get("tolerations", ())),
        env=checked.get("env", {}),
        working_dir=checked.get("workingDir"),
        run_as_user=checked.get("runAsUser"),
        run_as_group=checked.get("runAsGroup"),
        service_account_name=checked.get("serviceAccountName"),
        labels=checked.get("labels", {}),
        annotations=checked.get("annotations", {}),
        volumes=tuple(checked.get("volumes", ())),
        volume_mounts=tuple(checked.get("volumeMounts", ())),
        template_values=checked.get("templateValues", {}),
        profiles=checked.get("profiles", {}),
        pod_template=pod_template,
        written=written,
    )
