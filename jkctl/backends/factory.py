"""Choosing and building the backend: the one seam between the daemon and where kernels run.

``choose_backend`` decides (and says why) which backend a daemon uses: the one
asked for, else Kubernetes when a kubeconfig exists, else the local backend —
the embedded default on a fresh machine. ``create_backend`` builds it; the
backends' own modules are imported only then, so choosing stays cheap.

This module only looks for kubeconfig *files*; reading them (contexts,
namespaces, credentials) is ``jkctl.kube``'s job.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jkctl.backends.base import Backend
from jkctl.backends.kubernetes.settings import KubeBackendSettings
from jkctl.errors import ConfigError, UsageError

BACKENDS = ("local", "kubernetes")


@dataclass(frozen=True, kw_only=True)
class BackendChoice:
    name: str
    #: Why this backend, in words for the user ("no kubeconfig found").
    why: str


def find_kubeconfig(*, flag: str | None, env: Mapping[str, str]) -> list[Path]:
    """The kubeconfig files that exist, in kubectl's order.

    --kubeconfig, else $KUBECONFIG (a path list), else ~/.kube/config.
    """
    if flag:
        candidates = [Path(flag).expanduser()]
    elif env.get("KUBECONFIG"):
        candidates = [Path(p).expanduser() for p in env["KUBECONFIG"].split(os.pathsep) if p]
    else:
        home = env.get("HOME")
        base = Path(home) if home else Path.home()
        candidates = [base / ".kube" / "config"]
    return [path for path in candidates if path.is_file()]


def choose_backend(
    *, requested: str | None, kubeconfig: str | None, env: Mapping[str, str]
) -> BackendChoice:
    if requested:
        if requested not in BACKENDS:
            raise UsageError(
                f"Unknown backend '{requested}'.", hint=f"Use one of: {', '.join(BACKENDS)}."
            )
        return BackendChoice(name=requested, why="asked for with --backend")
    if kubeconfig and not Path(kubeconfig).expanduser().is_file():
        raise ConfigError(
            f"The kubeconfig {kubeconfig} does not exist.",
            hint="Pass an existing file to --kubeconfig, or leave it out.",
        )
    found = find_kubeconfig(flag=kubeconfig, env=env)
    if found:
        return BackendChoice(name="kubernetes", why=f"kubeconfig {found[0]}")
    return BackendChoice(name="local", why="no kubeconfig found, so kernels run on this machine")


def create_backend(
    name: str, *, runtime_dir: Path, kubernetes: KubeBackendSettings | None = None
) -> Backend:
    """The backend ``name``; the Kubernetes one needs its settings."""
    if name == "local":
        from jkctl.backends.local import LocalBackend

        return LocalBackend(runtime_dir=runtime_dir)
    if name == "kubernetes":
        if kubernetes is None:
            raise ConfigError(
                "The Kubernetes backend was chosen without its settings.",
                hint="This is a bug in jkctl; please report it with the --debug output.",
            )
        from jkctl.backends.kubernetes.backend import KubernetesBackend

        return KubernetesBackend(kubernetes)
    raise UsageError(f"Unknown backend '{name}'.", hint=f"Use one of: {', '.join(BACKENDS)}.")
