"""The RBAC evaluator against store objects, and the Forbidden wording."""

from __future__ import annotations

from typing import Any

from tests.kubesim import bootstrap, resources
from tests.kubesim.rbac import Attributes, Authorizer, forbidden
from tests.kubesim.store import Store


def cluster() -> tuple[Store, Authorizer]:
    store = Store()
    bootstrap.populate(store)
    store.create(resources.NAMESPACES, {"metadata": {"name": "team"}})
    return store, Authorizer(store)


def attrs(verb: str, resource: str = "pods", **extra: Any) -> Attributes:
    base: dict[str, Any] = {"user": "u", "groups": ("system:authenticated",), "namespace": "team"}
    return Attributes(**{**base, "verb": verb, "resource": resource, **extra})


def test_masters_may_do_anything() -> None:
    _, authorizer = cluster()
    assert authorizer.authorize(attrs("delete", groups=("system:masters",), namespace="")).allowed


def test_every_user_may_discover_and_review_but_nothing_else() -> None:
    _, authorizer = cluster()
    assert authorizer.authorize(attrs("get", is_resource=False, path="/apis/apps/v1")).allowed
    assert authorizer.authorize(attrs("get", is_resource=False, path="/version")).allowed
    assert not authorizer.authorize(attrs("get", is_resource=False, path="/metrics")).allowed
    review = attrs(
        "create",
        "selfsubjectaccessreviews",
        api_group="authorization.k8s.io",
        namespace="",
    )
    decision = authorizer.authorize(review)
    assert decision.allowed
    assert decision.reason == (
        'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole '
        '"system:basic-user" to Group "system:authenticated"'
    )
    assert not authorizer.authorize(attrs("get")).allowed


def test_aggregated_cluster_roles_gather_selected_rules() -> None:
    store, authorizer = cluster()
    store.create(
        resources.CLUSTERROLES,
        {
            "metadata": {"name": "kernels"},
            "aggregationRule": {
                "clusterRoleSelectors": [{"matchLabels": {"jkctl/aggregate": "true"}}]
            },
            "rules": [],
        },
    )
    store.create(
        resources.CLUSTERROLES,
        {
            "metadata": {"name": "piece", "labels": {"jkctl/aggregate": "true"}},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        },
    )
    store.create(
        resources.ROLEBINDINGS,
        {
            "metadata": {"name": "b"},
            "roleRef": {"kind": "ClusterRole", "name": "kernels"},
            "subjects": [{"kind": "User", "name": "u"}],
        },
        namespace="team",
    )
    assert authorizer.authorize(attrs("list")).allowed
    assert not authorizer.authorize(attrs("list", namespace="default")).allowed


def test_a_binding_to_a_missing_role_grants_nothing() -> None:
    store, authorizer = cluster()
    store.create(
        resources.ROLEBINDINGS,
        {
            "metadata": {"name": "b"},
            "roleRef": {"kind": "Role", "name": "absent"},
            "subjects": [{"kind": "User", "name": "u"}],
        },
        namespace="team",
    )
    assert not authorizer.authorize(attrs("get")).allowed


def test_rules_review_lists_what_bindings_grant() -> None:
    store, authorizer = cluster()
    store.create(
        resources.ROLEBINDINGS,
        {
            "metadata": {"name": "b"},
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "Group", "name": "readers"}],
        },
        namespace="team",
    )
    rules = authorizer.rules_for("u", ("readers", "system:authenticated"), "team")
    granted = {(tuple(r["resources"]), tuple(r["verbs"])) for r in rules.resource_rules}
    assert (("namespaces",), ("get", "list", "watch")) in granted
    assert {
        "verbs": ["get"],
        "nonResourceURLs": bootstrap.CLUSTER_ROLES["system:discovery"][0]["nonResourceURLs"],
    } in rules.non_resource_rules


def test_forbidden_wording() -> None:
    assert forbidden(attrs("get", name="k", subresource="log")).message == (
        'pods "k" is forbidden: User "u" cannot get resource "pods/log" in API group "" '
        'in the namespace "team"'
    )
    assert forbidden(attrs("list", "daemonsets", api_group="apps", namespace="")).message == (
        'daemonsets.apps is forbidden: User "u" cannot list resource "daemonsets" in API group '
        '"apps" at the cluster scope'
    )
    non_resource = forbidden(attrs("get", is_resource=False, path="/metrics", resource=""))
    assert non_resource.message == 'forbidden: User "u" cannot get path "/metrics"'
    assert non_resource.status()["details"] == {}
