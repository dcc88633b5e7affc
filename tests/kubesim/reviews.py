"""Self reviews: "can I?", "what can I?" and "who am I?", answered from the same RBAC as requests.

- `SelfSubjectAccessReview` (authorization.k8s.io/v1): `kubectl auth can-i`
  and clients checking before they act. The answer is the decision the
  request itself would get, with RBAC's reason when allowed.
- `SelfSubjectRulesReview`: `kubectl auth can-i --list`.
- `SelfSubjectReview` (authentication.k8s.io/v1): `kubectl auth whoami`.

They are never stored; each POST returns 201 with the spec and a status.
"""

from __future__ import annotations

from typing import Any

from tests.kubesim import resources
from tests.kubesim.rbac import Attributes, Authorizer
from tests.kubesim.resources import ResourceType
from tests.kubesim.status import bad_request
from tests.kubesim.users import User


def review(
    authorizer: Authorizer, user: User, rtype: ResourceType, body: dict[str, Any]
) -> dict[str, Any]:
    if rtype is resources.SELFSUBJECTACCESSREVIEWS:
        return _access(authorizer, user, body)
    if rtype is resources.SELFSUBJECTRULESREVIEWS:
        return _rules(authorizer, user, body)
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "status": {"userInfo": {"username": user.name, "groups": list(user.effective_groups)}},
    }


def _access(authorizer: Authorizer, user: User, body: dict[str, Any]) -> dict[str, Any]:
    spec = body.get("spec") or {}
    res, non_res = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if res is None and non_res is None:
        raise bad_request(
            'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: '
            'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes '
            "must be specified"
        )
    if res is not None:
        attrs = Attributes(
            user=user.name,
            groups=user.effective_groups,
            verb=res.get("verb", ""),
            namespace=res.get("namespace", ""),
            api_group=res.get("group", ""),
            resource=res.get("resource", ""),
            subresource=res.get("subresource", ""),
            name=res.get("name", ""),
        )
    else:
        attrs = Attributes(
            user=user.name,
            groups=user.effective_groups,
            verb=non_res.get("verb", ""),
            is_resource=False,
            path=non_res.get("path", ""),
        )
    decision = authorizer.authorize(attrs)
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": status,
    }


def _rules(authorizer: Authorizer, user: User, body: dict[str, Any]) -> dict[str, Any]:
    spec = body.get("spec") or {}
    namespace = spec.get("namespace") or ""
    rules = authorizer.rules_for(user.name, user.effective_groups, namespace)
    return {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": {
            "resourceRules": rules.resource_rules,
            "nonResourceRules": rules.non_resource_rules,
            "incomplete": False,
        },
    }
