"""A small synchronous client for the daemon's API, for the CLI.

Standard library only (``urllib``), so commands that talk to the daemon
start fast. Errors come back as the daemon's JSON error model and are raised
as the matching :class:`~jkctl.errors.JkctlError`; a daemon that does not
answer is a :class:`~jkctl.errors.DaemonNotRunning`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from jkctl.errors import DaemonError, DaemonNotRunning, ErrorPayload, JkctlError


class DaemonClient:
    def __init__(self, *, url: str, token: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body if body is not None else {})

    def lines(self, path: str, *, endless: bool = False) -> Iterator[str]:
        """A streamed text answer, line by line as it arrives; ``endless`` waits for
        the next line however long it takes (a followed log may be quiet for hours)."""
        request = self._request("GET", path, None)
        try:
            with urllib.request.urlopen(
                request, timeout=None if endless else self._timeout
            ) as response:
                for raw in response:
                    yield raw.decode("utf-8", "replace").rstrip("\n")
        except urllib.error.HTTPError as exc:
            raise _error_from(exc) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: Exception) -> DaemonNotRunning:
        return DaemonNotRunning(
            f"The jkctl daemon at {self.url} does not answer: {exc}.",
            hint="Run `jkctl connect` to start it.",
        )

    def request(self, method: str, path: str, body: Any = None) -> Any:
        request = self._request(method, path, body)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _error_from(exc) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise self._unreachable(exc) from exc
        return json.loads(raw) if raw else None

    def _request(self, method: str, path: str, body: Any) -> urllib.request.Request:
        data = json.dumps(body).encode() if body is not None else None
        return urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"token {self._token}",
                "Content-Type": "application/json",
            },
        )


def _error_from(exc: urllib.error.HTTPError) -> JkctlError:
    try:
        payload = json.loads(exc.read())
    except (ValueError, OSError):
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        error: ErrorPayload = {
            "reference": str(payload.get("reference", DaemonError.reference)),
            "message": payload["message"],
        }
        for field in ("hint", "context"):
            if isinstance(payload.get(field), str):
                error[field] = payload[field]
        return JkctlError.from_payload(error)
    return DaemonError(f"The jkctl daemon answered {exc.code} {exc.reason}.")
