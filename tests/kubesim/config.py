"""The kubelet's configuration: a frozen record passed to every part that needs it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.kubesim.nodes import NodeSpec, default_nodes


@dataclass(frozen=True, kw_only=True)
class KubeletConfig:
    nodes: tuple[NodeSpec, ...] = default_nodes()
    pull_delay: float = 0.0
    failing_images: frozenset[str] = frozenset()
    state_dir: Path
    restart_backoff_base: float = 10.0  # kubelet: 10 s, doubling ...
    image_backoff_base: float = 10.0
    backoff_cap: float = 300.0  # ... up to MaxContainerBackOff, 5 min
    default_grace_period: float = 30.0  # terminationGracePeriodSeconds when the spec has none
