"""The Kubernetes backend's settings: which cluster and namespace, who, and the lease.

Resolved by the daemon from its own settings (flags, ``JKCTL_*``, config
file) and passed down explicitly. Importing this module is cheap: it pulls in
neither aiohttp nor the ``kubernetes`` package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Long enough for a laptop to sleep through lunch (and a long meeting after it).
DEFAULT_LEASE_SECONDS = 2 * 60 * 60


@dataclass(frozen=True, kw_only=True)
class KubeBackendSettings:
    #: A kubeconfig path, or a KUBECONFIG-style list; None: $KUBECONFIG, ~/.kube/config.
    kubeconfig: str | None = None
    #: None: the kubeconfig's current context.
    context: str | None = None
    #: None: the context's namespace.
    namespace: str | None = None
    #: Identifies this daemon's pods (label ``jkctl.io/daemon``); stable across restarts.
    daemon_id: str
    #: Who starts kernels, for the ``jkctl.io/owner`` label (KERNEL_USERNAME overrides it).
    owner: str
    #: Where the tunnels' Unix sockets go (a 0700 folder per kernel under it).
    runtime_dir: Path
    #: How long a pod runs on without a renewal from its daemon before it ends itself.
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    #: The longest time between two renewals of a pod's lease.
    renew_max: float = 300.0
    #: How long to wait for a deleted pod to go, beyond its grace period.
    delete_timeout: float = 30.0
    #: Log lines quoted when a kernel's container crashes (the last 5 in the error).
    log_tail_lines: int = 20
    #: How long a pod no node fits waits for one to be added (clusters that scale their
    #: nodes); 0: it fails at once.
    node_wait: float = 0.0

    @property
    def renew_interval(self) -> float:
        """Renewals come this often: a quarter of the lease, at most ``renew_max``."""
        return max(0.5, min(self.lease_seconds / 4, self.renew_max))
