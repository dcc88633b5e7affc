"""Kubeconfig files and exec credential plugins written by tests."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import yaml


def kubeconfig(
    *,
    server: str = "https://127.0.0.1:6443",
    user: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
    namespace: str | None = "geo",
    context: str = "geo-ctx",
    extra_contexts: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A one-cluster, one-user kubeconfig document."""
    context_body: dict[str, Any] = {"cluster": "c1", "user": "alice"}
    if namespace is not None:
        context_body["namespace"] = namespace
    contexts = [{"name": context, "context": context_body}]
    contexts += [
        {"name": name, "context": {"cluster": "c1", "user": "alice"}} for name in extra_contexts
    ]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c1", "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": "alice", "user": user if user is not None else {"token": "t0k3n"}}],
        "contexts": contexts,
        "current-context": context,
    }


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def exec_plugin(
    folder: Path,
    *,
    fail_with: str | None = None,
    token_prefix: str = "exec-token",
    expires: str | None = None,
) -> Path:
    """An executable printing an ExecCredential whose token counts the calls (token-1, -2…)."""
    script = folder / "credential-plugin"
    counter = folder / "plugin-calls"
    status: dict[str, Any] = {}
    if expires is not None:
        status["expirationTimestamp"] = expires
    failing = (
        f"print({fail_with!r}, file=sys.stderr)\nsys.exit(3)\n" if fail_with is not None else ""
    )
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, sys\n"
        f"counter = pathlib.Path({str(counter)!r})\n"
        "calls = int(counter.read_text()) + 1 if counter.exists() else 1\n"
        "counter.write_text(str(calls))\n"
        f"{failing}"
        f"status = {json.dumps(status)}\n"
        f"status['token'] = {token_prefix!r} + '-' + str(calls)\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1',\n"
        "                  'kind': 'ExecCredential', 'status': status}))\n"
    )
    script.chmod(0o755)
    return script


def exec_user(command: Path | str, **extra: Any) -> dict[str, Any]:
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": str(command),
            **extra,
        }
    }


def plugin_calls(folder: Path) -> int:
    counter = folder / "plugin-calls"
    return int(counter.read_text()) if counter.exists() else 0
