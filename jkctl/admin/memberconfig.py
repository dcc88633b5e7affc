"""A team member's kubeconfig, for clusters whose people log in with service-account tokens.

Where a cluster has no identity provider, a member is a ServiceAccount: this
module makes one per member in the team's namespace (named after them),
binds it to the team Role, asks the TokenRequest API for a token that
expires when the admin says, and writes a kubeconfig holding that token, the
admin's cluster entry (server and CA, never the admin's own credentials) and
a context whose namespace is the team's — so `jkctl connect` with it lands
in the team and can do exactly what the Role allows.

Tokens from the TokenRequest API are bound to their ServiceAccount: they
stop working when it is deleted (and with the team), or when they expire;
running this again gives a fresh one.

Not here: the team's own objects (:mod:`.teams`).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

import yaml

from jkctl.errors import KubeError, UsageError
from jkctl.kube.access import AccessCheck
from jkctl.kube.client import KubeClient
from jkctl.kube.login import KubeconfigLogin
from jkctl.kube.resources import SERVICE_ACCOUNTS
from jkctl.kube.status import Action

from . import manifests
from .apply import Applied, apply
from .spec import check_team_name
from .teams import read_team_spec, require_admin_access

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DURATION = re.compile(r"^(?P<amount>[0-9]+)(?P<unit>[smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: The API server refuses tokens shorter than this.
MIN_EXPIRATION = 600
DURATION_SYNTAX = "a number with a unit s, m, h or d, at least 10m, such as 12h or 30d"
KUBECONFIG_CHECKS = (
    AccessCheck(verb="get", resource="namespaces"),
    AccessCheck(verb="get", resource="serviceaccounts"),
    AccessCheck(verb="create", resource="serviceaccounts"),
    AccessCheck(verb="patch", resource="serviceaccounts"),
    AccessCheck(verb="create", resource="serviceaccounts", subresource="token"),
    AccessCheck(verb="get", resource="rolebindings", group="rbac.authorization.k8s.io"),
    AccessCheck(verb="create", resource="rolebindings", group="rbac.authorization.k8s.io"),
    AccessCheck(verb="patch", resource="rolebindings", group="rbac.authorization.k8s.io"),
    AccessCheck(verb="get", resource="resourcequotas"),
    AccessCheck(verb="get", resource="limitranges"),
)


@dataclass(frozen=True, kw_only=True)
class MemberKubeconfig:
    team: str
    user: str
    #: The ServiceAccount's user name, as RBAC and audit logs show it.
    username: str
    expires: datetime.datetime
    text: str
    applied: tuple[Applied, ...]


def parse_expiration(text: str) -> int:
    """``--expiration`` in seconds: ``30m``, ``12h``, ``30d``."""
    found = _DURATION.match(text.strip())
    if found is None:
        raise UsageError(f"--expiration {text} is not a duration", hint=f"write {DURATION_SYNTAX}")
    seconds = int(found["amount"]) * _UNIT_SECONDS[found["unit"]]
    if seconds < MIN_EXPIRATION:
        raise UsageError(
            f"--expiration {text} is shorter than the 10 minutes Kubernetes allows a token",
            hint=f"write {DURATION_SYNTAX}",
        )
    return seconds


def check_member_name(user: str) -> str:
    if len(user) > 253 or not _SUBDOMAIN.match(user):
        raise UsageError(
            f"--user {user} cannot name a ServiceAccount",
            hint="use lower-case letters, digits, '-' and '.', such as alice or alice.smith",
        )
    return user


async def member_kubeconfig(
    kube: KubeClient,
    login: KubeconfigLogin,
    *,
    team: str,
    user: str,
    expiration_seconds: int,
) -> MemberKubeconfig:
    """Make (or reuse) the member's ServiceAccount and binding; a kubeconfig with a new token."""
    check_team_name(team)
    check_member_name(user)
    doing = f"a kubeconfig for {user} in team {team}"
    await require_admin_access(kube, KUBECONFIG_CHECKS, team=team, doing=doing)
    await read_team_spec(kube, team)  # the team must exist
    account, binding = manifests.member_account(team, user)
    applied = (await apply(kube, account), await apply(kube, binding))
    token, expires = await _request_token(kube, team=team, user=user, seconds=expiration_seconds)
    cluster_name, cluster = login.cluster_entry()
    name = f"{user}@{team}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": cluster_name, "user": name, "namespace": team}}
        ],
        "current-context": name,
        "preferences": {},
    }
    return MemberKubeconfig(
        team=team,
        user=user,
        username=f"system:serviceaccount:{team}:{user}",
        expires=expires,
        text=yaml.safe_dump(config, sort_keys=False),
        applied=applied,
    )


async def _request_token(
    kube: KubeClient, *, team: str, user: str, seconds: int
) -> tuple[str, datetime.datetime]:
    action = Action(
        verb="create", resource="serviceaccounts", subresource="token", name=user, namespace=team
    )
    answer = await kube.request(
        action,
        "POST",
        SERVICE_ACCOUNTS.path(namespace=team, name=user, subresource="token"),
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        },
    )
    status = answer.get("status") or {}
    token, stamp = status.get("token"), status.get("expirationTimestamp")
    if not token or not stamp:
        raise KubeError(
            f"the API server answered the token request for {user} in team {team} without a token",
            hint="check that the cluster serves the TokenRequest API (Kubernetes 1.22 or later)",
        )
    expires = datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    return str(token), expires
