"""RBAC: may this user do this, decided from the Role and binding objects in the store.

The evaluator follows the real RBAC authorizer: ClusterRoleBindings grant
everywhere, RoleBindings grant in their namespace (to a Role there, or to a
ClusterRole); subjects are users, groups and service accounts; rules match on
verbs, API groups, resources (with subresources written `pods/log`, and
`*` and `*/status` forms), resource names and non-resource URLs. ClusterRoles
with an `aggregationRule` gather the rules of the ClusterRoles it selects.
Members of `system:masters` are allowed everything, as the real server's
privileged-group authorizer does.

Denials produce the real `Forbidden` Status text ("pods is forbidden: User
"alice" cannot list resource "pods" in API group "" in the namespace "x"").
Allowed decisions carry RBAC's own reason, which SelfSubjectAccessReview
returns.

Not here: escalation checks on creating roles and bindings, and
impersonation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.kubesim import resources
from tests.kubesim.status import ApiError
from tests.kubesim.store import Obj, Store
from tests.kubesim.users import MASTERS


@dataclass(frozen=True, kw_only=True)
class Attributes:
    user: str
    groups: tuple[str, ...]
    verb: str
    is_resource: bool = True
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class RuleSet:
    """What SelfSubjectRulesReview reports for a user in a namespace."""

    resource_rules: list[dict[str, Any]] = field(default_factory=list)
    non_resource_rules: list[dict[str, Any]] = field(default_factory=list)


class Authorizer:
    def __init__(self, store: Store) -> None:
        self._store = store

    def authorize(self, attrs: Attributes) -> Decision:
        if MASTERS in attrs.groups:
            return Decision(True)
        for source, rules in self._bindings_for(attrs.user, attrs.groups, attrs.namespace):
            if any(_allows(rule, attrs) for rule in rules):
                return Decision(True, f"RBAC: allowed by {source}")
        return Decision(False)

    def check(self, attrs: Attributes) -> None:
        """Raise the real 403 if `attrs` is not allowed."""
        if not self.authorize(attrs).allowed:
            raise forbidden(attrs)

    def rules_for(self, user: str, groups: Sequence[str], namespace: str) -> RuleSet:
        rules = RuleSet()
        for _, granted in self._bindings_for(user, tuple(groups), namespace):
            for rule in granted:
                if rule.get("nonResourceURLs"):
                    rules.non_resource_rules.append(
                        {"verbs": rule.get("verbs", []), "nonResourceURLs": rule["nonResourceURLs"]}
                    )
                else:
                    entry = {
                        "verbs": rule.get("verbs", []),
                        "apiGroups": rule.get("apiGroups", []),
                        "resources": rule.get("resources", []),
                    }
                    if rule.get("resourceNames"):
                        entry["resourceNames"] = rule["resourceNames"]
                    rules.resource_rules.append(entry)
        return rules

    # -- internals -----------------------------------------------------------

    def _bindings_for(
        self, user: str, groups: Sequence[str], namespace: str
    ) -> Iterator[tuple[str, list[Mapping[str, Any]]]]:
        """(description of the grant, its rules) for every binding that names this user."""
        for binding in self._store.scan(resources.CLUSTERROLEBINDINGS):
            subject = _matching_subject(binding, user, groups, "")
            if subject is None:
                continue
            ref = binding.get("roleRef", {})
            source = (
                f'ClusterRoleBinding "{binding["metadata"]["name"]}" of {ref.get("kind")} '
                f'"{ref.get("name")}" to {_describe(subject, "")}'
            )
            yield source, self._role_rules(ref, "")
        if not namespace:
            return
        for binding in self._store.scan(resources.ROLEBINDINGS, namespace):
            subject = _matching_subject(binding, user, groups, namespace)
            if subject is None:
                continue
            ref = binding.get("roleRef", {})
            source = (
                f'RoleBinding "{binding["metadata"]["name"]}/{namespace}" of {ref.get("kind")} '
                f'"{ref.get("name")}" to {_describe(subject, namespace)}'
            )
            yield source, self._role_rules(ref, namespace)

    def _role_rules(self, ref: Mapping[str, Any], namespace: str) -> list[Mapping[str, Any]]:
        if ref.get("kind") == "Role" and namespace:
            role = self._find(resources.ROLES, namespace, ref.get("name", ""))
            return list(role.get("rules") or []) if role else []
        if ref.get("kind") != "ClusterRole":
            return []
        role = self._find(resources.CLUSTERROLES, None, ref.get("name", ""))
        if role is None:
            return []
        rules = list(role.get("rules") or [])
        selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
        for selector in selectors:
            wanted = selector.get("matchLabels") or {}
            for other in self._store.scan(resources.CLUSTERROLES):
                labels = other["metadata"].get("labels") or {}
                if other is not role and all(labels.get(k) == v for k, v in wanted.items()):
                    rules.extend(other.get("rules") or [])
        return rules

    def _find(self, rtype: resources.ResourceType, namespace: str | None, name: str) -> Obj | None:
        for obj in self._store.scan(rtype, namespace):
            if obj["metadata"]["name"] == name:
                return obj
        return None


def _matching_subject(
    binding: Mapping[str, Any], user: str, groups: Sequence[str], namespace: str
) -> Mapping[str, Any] | None:
    for subject in binding.get("subjects") or []:
        kind, name = subject.get("kind"), subject.get("name")
        if kind == "User" and name == user:
            return subject
        if kind == "Group" and name in groups:
            return subject
        if kind == "ServiceAccount":
            sa_namespace = subject.get("namespace") or namespace
            if user == f"system:serviceaccount:{sa_namespace}:{name}":
                return subject
    return None


def _describe(subject: Mapping[str, Any], binding_namespace: str) -> str:
    if subject.get("kind") == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return f'ServiceAccount "{subject.get("name")}/{namespace}"'
    return f'{subject.get("kind")} "{subject.get("name")}"'


def _allows(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.is_resource:
        return any(_url_matches(url, attrs.path) for url in rule.get("nonResourceURLs") or [])
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.api_group not in groups:
        return False
    combined = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    if not any(
        entry in ("*", combined) or (attrs.subresource and entry == f"*/{attrs.subresource}")
        for entry in rule.get("resources") or []
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _url_matches(rule_url: str, path: str) -> bool:
    if rule_url in ("*", path):
        return True
    return rule_url.endswith("*") and path.startswith(rule_url[:-1])


def forbidden(attrs: Attributes, reason: str = "") -> ApiError:
    """The real server's 403 for a denied request (`responsewriters.Forbidden`)."""
    if not attrs.is_resource:
        message = f'User "{attrs.user}" cannot {attrs.verb} path "{attrs.path}"'
    else:
        resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        scope = (
            f' in the namespace "{attrs.namespace}"' if attrs.namespace else " at the cluster scope"
        )
        message = (
            f'User "{attrs.user}" cannot {attrs.verb} resource "{resource}" '
            f'in API group "{attrs.api_group}"{scope}'
        )
    if reason:
        message = f"{message}: {reason}"
    qualified = attrs.resource + (f".{attrs.api_group}" if attrs.api_group else "")
    if not attrs.is_resource or not attrs.resource:
        full = f"forbidden: {message}"
    elif attrs.name:
        full = f'{qualified} "{attrs.name}" is forbidden: {message}'
    else:
        full = f"{qualified} is forbidden: {message}"
    details: dict[str, Any] = {}
    if attrs.is_resource and attrs.resource:
        details["kind"] = attrs.resource
        if attrs.name:
            details["name"] = attrs.name
        if attrs.api_group:
            details["group"] = attrs.api_group
    return ApiError(403, "Forbidden", full, details=details)
