"""Commands that talk to the cluster themselves: their common options and the login.

`--kubeconfig`, `--context` and `--namespace` mean what they mean for
kubectl and `jkctl connect`: the kubeconfig files kubectl would read, its
current context, that context's namespace. They arrive as the parameters
``kubeconfig``, ``kube_context`` and ``namespace``. :func:`cluster_options` adds
them to a command; :class:`ClusterTarget` is what they resolve to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from jkctl.kube.login import KubeconfigLogin

F = TypeVar("F", bound=Callable[..., Any])


def cluster_options(command: F) -> F:
    for option in reversed(
        [
            click.option(
                "--kubeconfig",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config).",
            ),
            click.option(
                "--context",
                "kube_context",
                default=None,
                help="Kubeconfig context (default: the current one).",
            ),
            click.option(
                "--namespace", "-n", default=None, help="Namespace (default: the context's)."
            ),
        ]
    ):
        command = option(command)
    return command


@dataclass(frozen=True, kw_only=True)
class ClusterTarget:
    kubeconfig: Path | None
    context: str | None
    namespace: str | None

    def login(self) -> KubeconfigLogin:
        """The login for this kubeconfig and context (NoKubeconfig if there is none)."""
        from jkctl.kube.login import kubeconfig_login

        return kubeconfig_login(kubeconfig=self.kubeconfig, context=self.context)
