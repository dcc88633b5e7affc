"""A team's Kubernetes objects, built from a :class:`~.spec.TeamSpec` as plain data.

:func:`team_manifests` is the one place a team's shape is decided;
`jkctl admin render team` prints its result and `jkctl admin team create`
applies exactly that list, in order:

- the **Namespace**, labelled ``jkctl.io/team: NAME`` — what makes it a team;
- a **ResourceQuota** ``jkctl-team``: ``requests.cpu`` and ``limits.cpu``,
  ``requests.memory`` and ``limits.memory`` (requests and limits alike, so
  kernels cannot overcommit what the team was given),
  ``requests.nvidia.com/gpu`` (always present, zero meaning no GPUs) and,
  with ``--max-kernels``, ``pods``;
- a **LimitRange** ``jkctl-kernel-defaults``: the requests and limits a
  container gets when it states none (a quota on cpu and memory refuses such
  containers otherwise);
- a **Role** ``jkctl-member`` with exactly what jkctl needs (:data:`GRANTS`,
  each with its reason), and a **RoleBinding** ``jkctl-members`` to the
  members and groups (left out while the team has none: an empty subject
  list is not stored by the API server, so it could never compare equal);
- a **NetworkPolicy** ``jkctl-deny-ingress`` selecting every pod in the
  namespace with no ingress rule: kernels are reached only through the API
  server's port-forward, which network policies do not see, so nothing needs
  to reach them over the pod network. It selects all pods rather than a
  kernel label so that no pod a member starts, kernel or build, is left
  open by a label it lacks.

Objects carry only fields jkctl decides, with the defaults the API server
would fill in written out (``apiGroup`` on subjects, ``policyTypes``), so
that they compare equal to what the server stores. :func:`spec_from_objects`
reads a spec back from a team's objects, for `update`.

Not here: talking to the cluster (:mod:`.teams`, :mod:`.apply`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from jkctl.kube import amounts
from jkctl.kube.objects import KubeObject
from jkctl.kube.quota import GPU, TEAM_LABEL

from .spec import TeamSpec

MANAGED_BY = ("app.kubernetes.io/managed-by", "jkctl")
MEMBER_LABEL = "jkctl.io/member"
QUOTA = "jkctl-team"
LIMIT_RANGE = "jkctl-kernel-defaults"
ROLE = "jkctl-member"
ROLE_BINDING = "jkctl-members"
NETWORK_POLICY = "jkctl-deny-ingress"
RBAC_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True, kw_only=True)
class Grant:
    """One rule of the team Role, and why jkctl needs it."""

    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str

    def rule(self) -> KubeObject:
        return {
            "apiGroups": [self.group],
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }


GRANTS: tuple[Grant, ...] = (
    Grant(
        group="",
        resources=("pods",),
        verbs=("create", "get", "list", "watch", "delete", "patch"),
        why="a kernel is a pod: started, found again after a daemon restart, followed, stopped; "
        "patch renews the lease annotation that lets an orphaned kernel end itself",
    ),
    Grant(
        group="",
        resources=("pods/portforward",),
        verbs=("create", "get"),
        why="the daemon reaches kernels only through port-forward, a websocket GET that "
        "newer API servers also authorize as create",
    ),
    Grant(
        group="",
        resources=("pods/log",),
        verbs=("get",),
        why="a crashed kernel's last lines, and a cluster build's progress",
    ),
    Grant(
        group="",
        resources=("secrets",),
        verbs=("create", "get", "list", "patch", "delete"),
        why="each kernel's connection file (its HMAC key), patched to be owned by its pod so "
        "it goes with it; a cluster build's registry credentials; list finds those a vanished "
        "daemon left",
    ),
    Grant(
        group="",
        resources=("events",),
        verbs=("get", "list", "watch"),
        why="why a pod cannot start (FailedScheduling, image pull errors), said at once",
    ),
    Grant(
        group="",
        resources=("configmaps",),
        verbs=("create", "get", "list", "patch", "delete"),
        why="build-kernel-image --builder cluster: the build context handed to the build Job, "
        "patched to be owned by it",
    ),
    Grant(
        group="batch",
        resources=("jobs",),
        verbs=("create", "get", "list", "watch", "delete"),
        why="build-kernel-image --builder cluster: the build runs as a Job, followed to its end",
    ),
    Grant(
        group="apps",
        resources=("daemonsets",),
        verbs=("create", "get", "list", "watch", "update", "delete"),
        why="images prepull: a DaemonSet that pulls the kernel images on every node, replaced "
        "when the kernelspecs change and removed with --remove",
    ),
    Grant(
        group="",
        resources=("resourcequotas", "limitranges"),
        verbs=("get", "list"),
        why="jkctl connect shows the team's quota and warns when a kernel would not fit",
    ),
)


def labels(spec_name: str, **extra: str) -> dict[str, str]:
    return {TEAM_LABEL: spec_name, MANAGED_BY[0]: MANAGED_BY[1], **extra}


def _meta(spec: TeamSpec, name: str) -> KubeObject:
    return {"name": name, "namespace": spec.namespace, "labels": labels(spec.name)}


def team_manifests(spec: TeamSpec) -> list[KubeObject]:
    """The team's objects, in the order they are applied."""
    objects = [
        namespace(spec),
        resource_quota(spec),
        limit_range(spec),
        role(spec),
        role_binding(spec),
        network_policy(spec),
    ]
    return [obj for obj in objects if obj is not None]


def namespace(spec: TeamSpec) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": spec.namespace, "labels": labels(spec.name)},
    }


def resource_quota(spec: TeamSpec) -> KubeObject:
    hard = {
        "requests.cpu": spec.cpu,
        "limits.cpu": spec.cpu,
        "requests.memory": spec.memory,
        "limits.memory": spec.memory,
        f"requests.{GPU}": str(spec.gpu),
    }
    if spec.max_kernels is not None:
        hard["pods"] = str(spec.max_kernels)
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta(spec, QUOTA),
        "spec": {"hard": hard},
    }


def limit_range(spec: TeamSpec) -> KubeObject:
    defaults = {"cpu": spec.default_kernel_cpu, "memory": spec.default_kernel_memory}
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _meta(spec, LIMIT_RANGE),
        "spec": {
            "limits": [{"type": "Container", "default": defaults, "defaultRequest": dict(defaults)}]
        },
    }


def role(spec: TeamSpec) -> KubeObject:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "Role",
        "metadata": _meta(spec, ROLE),
        "rules": [grant.rule() for grant in GRANTS],
    }


def role_binding(spec: TeamSpec) -> KubeObject | None:
    subjects = [{"apiGroup": RBAC_GROUP, "kind": "User", "name": user} for user in spec.members]
    subjects += [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": group} for group in spec.groups]
    if not subjects:
        return None
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": _meta(spec, ROLE_BINDING),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": ROLE},
        "subjects": subjects,
    }


def network_policy(spec: TeamSpec) -> KubeObject:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(spec, NETWORK_POLICY),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def member_account(team: str, user: str) -> tuple[KubeObject, KubeObject]:
    """A member's ServiceAccount (named after them) and its binding to the team Role."""
    meta_labels = labels(team, **{MEMBER_LABEL: user})
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": user, "namespace": team, "labels": meta_labels},
        # The token is for the member's laptop; pods have no use for it.
        "automountServiceAccountToken": False,
    }
    binding = {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{ROLE}-{user}", "namespace": team, "labels": meta_labels},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": user, "namespace": team}],
    }
    return account, binding


# -- reading a team back ---------------------------------------------------------------


def spec_from_objects(
    name: str,
    *,
    quota: KubeObject | None,
    limits: KubeObject | None,
    binding: KubeObject | None,
) -> TeamSpec | None:
    """The spec that built these objects; None if the quota (the team's core) is gone."""
    hard = ((quota or {}).get("spec") or {}).get("hard") or {}
    if "requests.cpu" not in hard or "requests.memory" not in hard:
        return None
    defaults: dict[str, Any] = {}
    for item in ((limits or {}).get("spec") or {}).get("limits") or []:
        if item.get("type") == "Container":
            defaults = item.get("default") or {}
    subjects = (binding or {}).get("subjects") or []
    pods = hard.get("pods")
    return TeamSpec(
        name=name,
        cpu=amounts.canonical(str(hard["requests.cpu"])),
        memory=amounts.canonical(str(hard["requests.memory"])),
        gpu=int(amounts.parse(str(hard.get(f"requests.{GPU}", "0")))),
        max_kernels=int(amounts.parse(str(pods))) if pods is not None else None,
        default_kernel_cpu=amounts.canonical(str(defaults.get("cpu", hard["requests.cpu"]))),
        default_kernel_memory=amounts.canonical(
            str(defaults.get("memory", hard["requests.memory"]))
        ),
        members=tuple(s["name"] for s in subjects if s.get("kind") == "User"),
        groups=tuple(s["name"] for s in subjects if s.get("kind") == "Group"),
    )


# -- printing ----------------------------------------------------------------------------


class _PlainDumper(yaml.SafeDumper):
    """YAML without anchors and aliases, which people and some GitOps tools trip over."""

    def ignore_aliases(self, _data: Any) -> bool:
        return True


def to_yaml(objects: Sequence[KubeObject]) -> str:
    """Multi-document YAML, one document per object, as `kubectl apply -f` reads it."""
    return yaml.dump_all(objects, Dumper=_PlainDumper, sort_keys=False, explicit_start=True)


def to_json(objects: Sequence[KubeObject]) -> str:
    """A `v1 List`, as `kubectl get -o json` prints several objects."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}, indent=2)
