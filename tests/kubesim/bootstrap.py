"""The objects a fresh cluster starts with: system namespaces and the default RBAC policy.

A real API server creates `default`, `kube-system`, `kube-public` and
`kube-node-lease`, and reconciles its bootstrap ClusterRoles and bindings
on start. kubesim writes the ones its clients meet:

- `cluster-admin`, bound to the group `system:masters` (the admin user's);
- the user-facing `admin`, `edit` and `view`, with the real rules trimmed to
  the resources kubesim serves (plus the ones those roles name that a
  cluster commonly has, so RBAC reviews read as on a real cluster);
- `system:discovery`, `system:basic-user` and `system:public-info-viewer`,
  bound to `system:authenticated`, so every user can discover the API,
  read `/version` and ask SelfSubjectAccessReview.

Not here: the controller and node roles (`system:node`, ...).
"""

from __future__ import annotations

from typing import Any

from tests.kubesim import resources
from tests.kubesim.store import Store
from tests.kubesim.users import AUTHENTICATED, MASTERS

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}


def _rule(groups: list[str], names: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": names, "verbs": verbs}


_VIEW = [
    _rule(
        [""],
        [
            "configmaps",
            "endpoints",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "services/status",
        ],
        _READ,
    ),
    _rule(
        [""],
        [
            "bindings",
            "events",
            "limitranges",
            "namespaces/status",
            "pods/log",
            "pods/status",
            "replicationcontrollers/status",
            "resourcequotas",
            "resourcequotas/status",
        ],
        _READ,
    ),
    _rule([""], ["namespaces"], _READ),
    _rule(["discovery.k8s.io"], ["endpointslices"], _READ),
    _rule(
        ["apps"],
        [
            "controllerrevisions",
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
        ],
        _READ,
    ),
    _rule(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], _READ),
    _rule(["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"], _READ),
    _rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], _READ),
]

_EDIT = [
    _rule(
        [""],
        [
            "pods/attach",
            "pods/exec",
            "pods/portforward",
            "pods/proxy",
            "secrets",
            "services/proxy",
        ],
        _READ,
    ),
    _rule([""], ["serviceaccounts"], ["impersonate"]),
    _rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], _WRITE),
    _rule([""], ["pods/eviction"], ["create"]),
    _rule(
        [""],
        [
            "configmaps",
            "events",
            "persistentvolumeclaims",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "secrets",
            "serviceaccounts",
            "services",
            "services/proxy",
        ],
        _WRITE,
    ),
    _rule([""], ["serviceaccounts/token"], ["create"]),
    _rule(
        ["apps"],
        [
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "replicasets",
            "replicasets/scale",
            "statefulsets",
            "statefulsets/scale",
        ],
        _WRITE,
    ),
    _rule(["batch"], ["cronjobs", "jobs"], _WRITE),
    _rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], _WRITE),
    _rule(["policy"], ["poddisruptionbudgets"], _WRITE),
    *_VIEW,
]

_ADMIN = [
    _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
    _rule(["rbac.authorization.k8s.io"], ["rolebindings", "roles"], [*_READ, *_WRITE]),
    *_EDIT,
]

_DISCOVERY_URLS = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
]
_PUBLIC_INFO_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]

CLUSTER_ROLES: dict[str, list[dict[str, Any]]] = {
    "cluster-admin": [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        {"nonResourceURLs": ["*"], "verbs": ["*"]},
    ],
    "admin": _ADMIN,
    "edit": _EDIT,
    "view": _VIEW,
    "system:discovery": [{"nonResourceURLs": _DISCOVERY_URLS, "verbs": ["get"]}],
    "system:public-info-viewer": [{"nonResourceURLs": _PUBLIC_INFO_URLS, "verbs": ["get"]}],
    "system:basic-user": [
        _rule(
            ["authorization.k8s.io"],
            ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
            ["create"],
        ),
        _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
    ],
}

# binding name -> (cluster role, group)
CLUSTER_ROLE_BINDINGS = {
    "cluster-admin": ("cluster-admin", MASTERS),
    "system:discovery": ("system:discovery", AUTHENTICATED),
    "system:basic-user": ("system:basic-user", AUTHENTICATED),
    "system:public-info-viewer": ("system:public-info-viewer", AUTHENTICATED),
}


def populate(store: Store) -> None:
    """Create the bootstrap objects in an empty store."""
    for name in SYSTEM_NAMESPACES:
        store.create(
            resources.NAMESPACES,
            {
                "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            },
        )
    for name, rules in CLUSTER_ROLES.items():
        # The real admin/edit/view are aggregated from labelled pieces; kubesim
        # writes the aggregated rules out directly.
        store.create(
            resources.CLUSTERROLES,
            {
                "metadata": {
                    "name": name,
                    "labels": dict(_BOOTSTRAP_LABELS),
                    "annotations": dict(_ANNOTATIONS),
                },
                "rules": rules,
            },
        )
    for name, (role, group) in CLUSTER_ROLE_BINDINGS.items():
        store.create(
            resources.CLUSTERROLEBINDINGS,
            {
                "metadata": {
                    "name": name,
                    "labels": dict(_BOOTSTRAP_LABELS),
                    "annotations": dict(_ANNOTATIONS),
                },
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}
                ],
            },
        )
