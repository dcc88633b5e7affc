"""Who is calling: bearer tokens mapped to a user name and groups, and their kubeconfigs.

The real API server authenticates with many plugins; kubesim has two:
static bearer tokens here, which is what a test needs to act as different
people, and service-account tokens from the TokenRequest API
(`satokens.py`). Every authenticated user is also in
`system:authenticated`, as on a real server.
A missing or unknown token is a 401 `Unauthorized` Status (kubesim runs as
with `--anonymous-auth=false`).

The kubeconfig written here is what `kubectl` and the `kubernetes` client
read: the CA inline, the server URL, one user and one context per user.

Not here: what a user may do (`rbac.py`).
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.kubesim.status import unauthorized

ADMIN = "kubesim-admin"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
CLUSTER_NAME = "kubesim"


@dataclass(frozen=True, kw_only=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    token: str

    @property
    def effective_groups(self) -> tuple[str, ...]:
        """The groups the authorizer sees, `system:authenticated` included."""
        if AUTHENTICATED in self.groups:
            return self.groups
        return (*self.groups, AUTHENTICATED)


class Users:
    """The token table. A user may hold several tokens; each `add` makes a new one."""

    def __init__(self) -> None:
        self._by_token: dict[str, User] = {}
        self._order: list[User] = []

    def add(self, name: str, groups: Sequence[str] = ()) -> User:
        user = User(name=name, groups=tuple(groups), token=secrets.token_urlsafe(24))
        self._by_token[user.token] = user
        self._order.append(user)
        return user

    def authenticate(self, authorization: str | None) -> User:
        scheme, _, token = (authorization or "").partition(" ")
        user = self._by_token.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise unauthorized()
        return user

    def all(self) -> list[User]:
        """One entry per user name (its latest token), in the order they were added."""
        latest = {user.name: user for user in self._order}
        return list(latest.values())


def kubeconfig(
    *, server: str, ca_pem: bytes, users: Sequence[User], current: str, namespace: str = "default"
) -> str:
    """A kubeconfig with one context per user (named after the user); `current` selected."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user.name, "user": {"token": user.token}} for user in users],
        "contexts": [
            {
                "name": user.name,
                "context": {"cluster": CLUSTER_NAME, "user": user.name, "namespace": namespace},
            }
            for user in users
        ],
        "current-context": current,
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_private(path: Path, text: str) -> None:
    """Write atomically with mode 0600: readers never see half a file, others never see it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    partial.replace(path)
