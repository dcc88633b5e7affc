"""Kubernetes resource types and the URL paths the API server serves them at.

A :class:`Resource` names one kind of object (group, version, plural) and
knows whether it lives in a namespace, so the client can build
`/api/v1/namespaces/geo/pods/k-1/log` without string pasting at call sites.
The constants below are the types jkctl uses; others are one line away.

This module is deliberately not a discovery client: jkctl talks to a fixed,
small set of stable types, so nothing here asks the server what it serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True, kw_only=True)
class Resource:
    """One resource type: ``group`` is "" for the core group (`/api/v1`)."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` field of objects of this type (`v1`, `apps/v1`)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self,
        *,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The URL path of the collection, or of one object or its subresource.

        ``namespace`` is ignored for cluster-scoped types; for namespaced types
        None means "across all namespaces" (only meaningful for list and watch).
        """
        if subresource is not None and name is None:
            raise ValueError("a subresource needs an object name")
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [base]
        if self.namespaced and namespace is not None:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
        if subresource is not None:
            parts.append(subresource)
        return "/".join(parts)


NAMESPACES = Resource(group="", version="v1", plural="namespaces", namespaced=False)
PODS = Resource(group="", version="v1", plural="pods")
SECRETS = Resource(group="", version="v1", plural="secrets")
CONFIGMAPS = Resource(group="", version="v1", plural="configmaps")
EVENTS = Resource(group="", version="v1", plural="events")
DAEMONSETS = Resource(group="apps", version="v1", plural="daemonsets")
JOBS = Resource(group="batch", version="v1", plural="jobs")
SERVICE_ACCOUNTS = Resource(group="", version="v1", plural="serviceaccounts")
RESOURCE_QUOTAS = Resource(group="", version="v1", plural="resourcequotas")
LIMIT_RANGES = Resource(group="", version="v1", plural="limitranges")
ROLES = Resource(group="rbac.authorization.k8s.io", version="v1", plural="roles")
ROLE_BINDINGS = Resource(group="rbac.authorization.k8s.io", version="v1", plural="rolebindings")
NETWORK_POLICIES = Resource(group="networking.k8s.io", version="v1", plural="networkpolicies")
SELF_SUBJECT_ACCESS_REVIEWS = Resource(
    group="authorization.k8s.io",
    version="v1",
    plural="selfsubjectaccessreviews",
    namespaced=False,
)
