"""Service-account tokens: the TokenRequest subresource, and authenticating what it issues.

`POST /api/v1/namespaces/NS/serviceaccounts/NAME/token` with a
`TokenRequest` (authentication.k8s.io/v1) answers 201 with the request,
its spec defaulted (`expirationSeconds` 3600, the API server's audience)
and `status.token` / `status.expirationTimestamp` filled in, as the real
server does. `expirationSeconds` below ten minutes or above 2^32 is a 422
with the real wording; a missing ServiceAccount is a 404.

Tokens are JWTs with the real claims (`iss`, `sub`
`system:serviceaccount:NS:NAME`, `aud`, `exp`, `iat`, `nbf`, `jti`, and
`kubernetes.io` naming the namespace and the ServiceAccount with its uid).
They are bound tokens: a request carrying one authenticates as
`system:serviceaccount:NS:NAME` in the groups `system:serviceaccounts` and
`system:serviceaccounts:NS` until the token expires or the ServiceAccount
is deleted (a new one of the same name has another uid), as on a real
server; after that the request is a 401.

Where kubesim differs: tokens are signed with HMAC-SHA256 by a key of this
process (the real server signs with RS256 and publishes its keys); nothing
in kubesim's clients verifies them but kubesim itself.

Not here: `boundObjectRef` (tokens bound to a pod or secret), the legacy
token Secrets, TokenReview.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

from tests.kubesim import resources
from tests.kubesim.status import ApiError, unauthorized
from tests.kubesim.store import Store
from tests.kubesim.users import User

ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 10 * 60
MAX_EXPIRATION = 2**32
GROUP = "system:serviceaccounts"
_API_VERSION = "authentication.k8s.io/v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _rfc3339(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _invalid(name: str, value: object, message: str) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        f'TokenRequest.authentication.k8s.io "{name}" is invalid: spec.expirationSeconds: '
        f"Invalid value: {value}: {message}",
        details={
            "name": name,
            "group": "authentication.k8s.io",
            "kind": "TokenRequest",
            "causes": [
                {
                    "reason": "FieldValueInvalid",
                    "message": f"Invalid value: {value}: {message}",
                    "field": "spec.expirationSeconds",
                }
            ],
        },
    )


class ServiceAccountTokens:
    """Issues bound service-account tokens and recognises them on later requests."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._key = secrets.token_bytes(32)
        self._kid = _b64(hashlib.sha256(self._key).digest()[:12])

    # -- issuing ---------------------------------------------------------------

    def request_token(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """The answer to a TokenRequest for ServiceAccount `namespace/name`."""
        account = self._store.get(resources.SERVICEACCOUNTS, namespace, name)
        if body.get("kind") not in (None, "TokenRequest") or body.get("apiVersion") not in (
            None,
            _API_VERSION,
        ):
            raise ApiError(
                400,
                "BadRequest",
                f'{body.get("kind")} in version "{body.get("apiVersion")}" cannot be handled as a '
                "TokenRequest",
            )
        spec = dict(body.get("spec") or {})
        seconds = spec.get("expirationSeconds")
        if seconds is None:
            seconds = DEFAULT_EXPIRATION
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            raise ApiError(
                400,
                "BadRequest",
                'TokenRequest in version "v1" cannot be handled as a TokenRequest: '
                "json: cannot unmarshal into Go struct field TokenRequestSpec.spec."
                "expirationSeconds of type int64",
            )
        if seconds < MIN_EXPIRATION:
            raise _invalid(name, seconds, "may not specify a duration less than 10 minutes")
        if seconds > MAX_EXPIRATION:
            raise _invalid(name, seconds, "may not specify a duration larger than 2^32 seconds")
        audiences = list(spec.get("audiences") or [ISSUER])
        now = int(time.time())
        expires = now + seconds
        claims = {
            "aud": audiences,
            "exp": expires,
            "iat": now,
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": name, "uid": account["metadata"]["uid"]},
            },
            "nbf": now,
            "sub": f"system:serviceaccount:{namespace}:{name}",
        }
        spec.update(audiences=audiences, expirationSeconds=seconds, boundObjectRef=None)
        return {
            "kind": "TokenRequest",
            "apiVersion": _API_VERSION,
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": spec,
            "status": {"token": self._sign(claims), "expirationTimestamp": _rfc3339(expires)},
        }

    def _sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "HS256", "kid": self._kid}
        signing_input = ".".join(
            _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"

    # -- authenticating --------------------------------------------------------

    def authenticate(self, authorization: str | None) -> User | None:
        """The ServiceAccount a bearer token of ours stands for; None if it is not one of ours.

        A token of ours that expired, or whose ServiceAccount is gone, raises
        the 401 a real server answers.
        """
        scheme, _, token = (authorization or "").partition(" ")
        claims = self._verified_claims(token.strip()) if scheme.lower() == "bearer" else None
        if claims is None:
            return None
        bound = claims.get("kubernetes.io") or {}
        namespace = bound.get("namespace", "")
        account = bound.get("serviceaccount") or {}
        if int(claims.get("exp", 0)) <= time.time():
            raise unauthorized()
        found = self._store.try_get(resources.SERVICEACCOUNTS, namespace, account.get("name", ""))
        if found is None or found["metadata"].get("uid") != account.get("uid"):
            raise unauthorized()
        if found["metadata"].get("deletionTimestamp"):
            raise unauthorized()
        return User(
            name=claims["sub"],
            groups=(GROUP, f"{GROUP}:{namespace}"),
            token=token.strip(),
        )

    def _verified_claims(self, token: str) -> dict[str, Any] | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        signing_input = f"{parts[0]}.{parts[1]}"
        expected = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(expected, _unb64(parts[2])):
                return None
            claims = json.loads(_unb64(parts[1]))
        except ValueError:
            return None
        return claims if isinstance(claims, dict) else None
