"""The resource types kubesim serves, as discovery and RBAC see them.

One table drives discovery documents, URL routing, RBAC resource names and
the store's keys, so adding a type is one line here. Only types some jkctl
feature needs are listed; kubesim is not a general API server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, kw_only=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = field(default=())

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def url_prefix(self) -> str:
        """`/api/v1` or `/apis/GROUP/VERSION`."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        parts = [self.url_prefix()]
        if self.namespaced and namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
        return "/".join(parts)


def _core(
    kind: str,
    plural: str,
    *,
    namespaced: bool = True,
    short_names: tuple[str, ...] = (),
    subresources: tuple[str, ...] = (),
) -> ResourceType:
    return ResourceType(
        group="",
        version="v1",
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        short_names=short_names,
        subresources=subresources,
    )


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    _core(
        "Namespace", "namespaces", namespaced=False, short_names=("ns",), subresources=("status",)
    ),
    _core("Node", "nodes", namespaced=False, short_names=("no",), subresources=("status",)),
    _core(
        "Pod",
        "pods",
        short_names=("po",),
        subresources=("status", "log", "portforward", "exec", "binding", "eviction"),
    ),
    _core("Secret", "secrets"),
    _core("ConfigMap", "configmaps", short_names=("cm",)),
    _core("Event", "events", short_names=("ev",)),
    _core("ResourceQuota", "resourcequotas", short_names=("quota",), subresources=("status",)),
    _core("LimitRange", "limitranges", short_names=("limits",)),
    _core("ServiceAccount", "serviceaccounts", short_names=("sa",), subresources=("token",)),
    ResourceType(
        group="apps",
        version="v1",
        kind="DaemonSet",
        plural="daemonsets",
        namespaced=True,
        short_names=("ds",),
        subresources=("status",),
    ),
    ResourceType(
        group="batch",
        version="v1",
        kind="Job",
        plural="jobs",
        namespaced=True,
        subresources=("status",),
    ),
    ResourceType(
        group="rbac.authorization.k8s.io",
        version="v1",
        kind="Role",
        plural="roles",
        namespaced=True,
    ),
    ResourceType(
        group="rbac.authorization.k8s.io",
        version="v1",
        kind="RoleBinding",
        plural="rolebindings",
        namespaced=True,
    ),
    ResourceType(
        group="rbac.authorization.k8s.io",
        version="v1",
        kind="ClusterRole",
        plural="clusterroles",
        namespaced=False,
    ),
    ResourceType(
        group="rbac.authorization.k8s.io",
        version="v1",
        kind="ClusterRoleBinding",
        plural="clusterrolebindings",
        namespaced=False,
    ),
    ResourceType(
        group="networking.k8s.io",
        version="v1",
        kind="NetworkPolicy",
        plural="networkpolicies",
        namespaced=True,
        short_names=("netpol",),
    ),
    ResourceType(
        group="coordination.k8s.io", version="v1", kind="Lease", plural="leases", namespaced=True
    ),
    # Reviews: create-only and never stored; the API server answers them from RBAC.
    ResourceType(
        group="authorization.k8s.io",
        version="v1",
        kind="SelfSubjectAccessReview",
        plural="selfsubjectaccessreviews",
        namespaced=False,
        verbs=("create",),
    ),
    ResourceType(
        group="authorization.k8s.io",
        version="v1",
        kind="SelfSubjectRulesReview",
        plural="selfsubjectrulesreviews",
        namespaced=False,
        verbs=("create",),
    ),
    ResourceType(
        group="authentication.k8s.io",
        version="v1",
        kind="SelfSubjectReview",
        plural="selfsubjectreviews",
        namespaced=False,
        verbs=("create",),
    ),
)

_BY_GROUP_PLURAL = {(rt.group, rt.plural): rt for rt in RESOURCE_TYPES}
_BY_KIND = {(rt.api_version, rt.kind): rt for rt in RESOURCE_TYPES}


def by_plural(group: str, plural: str) -> ResourceType | None:
    return _BY_GROUP_PLURAL.get((group, plural))


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    return _BY_KIND.get((api_version, kind))


def get(group: str, plural: str) -> ResourceType:
    """The type for (group, plural); a KeyError here is a bug in kubesim itself."""
    return _BY_GROUP_PLURAL[(group, plural)]


PODS = get("", "pods")
NAMESPACES = get("", "namespaces")
NODES = get("", "nodes")
SECRETS = get("", "secrets")
CONFIGMAPS = get("", "configmaps")
EVENTS = get("", "events")
RESOURCEQUOTAS = get("", "resourcequotas")
LIMITRANGES = get("", "limitranges")
SERVICEACCOUNTS = get("", "serviceaccounts")
DAEMONSETS = get("apps", "daemonsets")
JOBS = get("batch", "jobs")
ROLES = get("rbac.authorization.k8s.io", "roles")
ROLEBINDINGS = get("rbac.authorization.k8s.io", "rolebindings")
CLUSTERROLES = get("rbac.authorization.k8s.io", "clusterroles")
CLUSTERROLEBINDINGS = get("rbac.authorization.k8s.io", "clusterrolebindings")
SELFSUBJECTACCESSREVIEWS = get("authorization.k8s.io", "selfsubjectaccessreviews")
SELFSUBJECTRULESREVIEWS = get("authorization.k8s.io", "selfsubjectrulesreviews")
SELFSUBJECTREVIEWS = get("authentication.k8s.io", "selfsubjectreviews")
REVIEWS = (SELFSUBJECTACCESSREVIEWS, SELFSUBJECTRULESREVIEWS, SELFSUBJECTREVIEWS)
