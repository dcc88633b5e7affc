"""jkctl's users on kubesim: a namespace, a user holding jkctl's Role there, and what is left.

The Role is the least a jkctl user needs (what the daemon checks with
SelfSubjectAccessReview before it serves); tests take rules away from it to
see jkctl say what is missing. :class:`Namespace` reads what jkctl left in a
namespace, and waits (on a watch, with a deadline) for kernels' objects to go.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from tests.kubesim.conftest import api_client
from tests.kubesim.fixture import Kubesim

#: What a jkctl user needs in their namespace.
JKCTL_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["create", "get", "list", "watch", "patch", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "get", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
]
KERNELS = "app.kubernetes.io/managed-by=jkctl"


@dataclass
class Namespace:
    """A namespace and a kubeconfig for a user with (some of) jkctl's rights in it."""

    kubesim: Kubesim
    name: str
    kubeconfig: Path
    user: str

    def pods(self, selector: str = KERNELS) -> list[Any]:
        with api_client(self.kubesim.kubeconfig) as api:
            return list(
                client.CoreV1Api(api).list_namespaced_pod(self.name, label_selector=selector).items
            )

    def secrets(self, selector: str = KERNELS) -> list[Any]:
        with api_client(self.kubesim.kubeconfig) as api:
            return list(
                client.CoreV1Api(api)
                .list_namespaced_secret(self.name, label_selector=selector)
                .items
            )

    def leftovers(self, selector: str = KERNELS) -> list[str]:
        """Names of the pods and Secrets jkctl has in the namespace."""
        return [f"pod/{p.metadata.name}" for p in self.pods(selector)] + [
            f"secret/{s.metadata.name}" for s in self.secrets(selector)
        ]

    def wait_empty(self, selector: str = KERNELS, *, timeout: int = 30) -> None:
        """Until no pod or Secret matches ``selector`` (watching; AssertionError on timeout)."""
        with api_client(self.kubesim.kubeconfig) as api:
            core = client.CoreV1Api(api)
            for lister in (core.list_namespaced_pod, core.list_namespaced_secret):
                found = lister(self.name, label_selector=selector)
                left = {item.metadata.name for item in found.items}
                if not left:
                    continue
                stream = watch.Watch()
                for event in stream.stream(
                    lister,
                    self.name,
                    label_selector=selector,
                    resource_version=found.metadata.resource_version,
                    timeout_seconds=timeout,
                ):
                    if event["type"] == "DELETED":
                        left.discard(event["object"].metadata.name)
                    elif event["type"] == "ADDED":
                        left.add(event["object"].metadata.name)
                    if not left:
                        stream.stop()
                assert not left, f"still in {self.name} after {timeout} s: {sorted(left)}"

    def pod_of(self, kernel_id: str) -> Any:
        (pod,) = self.pods(f"jkctl.io/kernel-id={kernel_id}")
        return pod


def jkctl_namespace(
    kubesim: Kubesim, prefix: str, *, user: str | None = None, rules: Sequence[dict[str, Any]] = ()
) -> Namespace:
    """A new namespace and a new user bound to a Role with ``rules`` (default: jkctl's)."""
    name = kubesim.create_namespace(prefix)
    user = user or f"{prefix}-user"
    kubeconfig = kubesim.new_user(user)
    grant(kubesim, name, user, list(rules) or JKCTL_RULES)
    return Namespace(kubesim=kubesim, name=name, kubeconfig=kubeconfig, user=user)


def grant(kubesim: Kubesim, namespace: str, user: str, rules: list[dict[str, Any]]) -> None:
    with api_client(kubesim.kubeconfig) as api:
        rbac = client.RbacAuthorizationV1Api(api)
        rbac.create_namespaced_role(
            namespace, {"metadata": {"name": f"jkctl-{user}"}, "rules": rules}
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": f"jkctl-{user}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": f"jkctl-{user}",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            },
        )


def revoke(kubesim: Kubesim, namespace: str, user: str) -> None:
    with api_client(kubesim.kubeconfig) as api:
        client.RbacAuthorizationV1Api(api).delete_namespaced_role_binding(
            f"jkctl-{user}", namespace
        )


def without(verb: str, resource: str) -> Iterator[dict[str, Any]]:
    """jkctl's rules with one verb on one resource taken away."""
    for rule in JKCTL_RULES:
        if resource in rule["resources"]:
            verbs = [v for v in rule["verbs"] if v != verb]
            if verbs:
                yield {**rule, "verbs": verbs}
        else:
            yield rule
