"""The daemon's settings: one frozen dataclass, resolved once, passed down explicitly.

Precedence, lowest first: defaults < ``config.yaml`` (its ``daemon:`` section,
in ``jkctl.paths.config_dir()``) < ``JKCTL_*`` environment variables < command
line flags. The resolved settings travel to a detached daemon as JSON, so the
daemon runs exactly what ``jkctl connect`` resolved and showed.

=========================  =======================  ============================
setting                    environment              config.yaml (``daemon:``)
=========================  =======================  ============================
port                       JKCTL_PORT               port
backend                    JKCTL_BACKEND            backend
kernel_templates           JKCTL_KERNEL_TEMPLATES   kernel_templates (list)
context                    JKCTL_CONTEXT            context
namespace                  JKCTL_NAMESPACE          namespace
allow_origins              JKCTL_ALLOW_ORIGINS      allow_origins (list)
kernel_start_timeout       JKCTL_KERNEL_START_...   kernel_start_timeout (s)
client_queue_limit         JKCTL_CLIENT_QUEUE_...   client_queue_limit (bytes)
lease_seconds              JKCTL_LEASE_SECONDS      lease_seconds (s)
cull_idle_timeout          JKCTL_CULL_IDLE_TIMEOUT  cull_idle_timeout (duration)
cull_disconnected_timeout  JKCTL_CULL_DISCONNE...   cull_disconnected_timeout
cull_interval              JKCTL_CULL_INTERVAL      cull_interval (duration)
warm_pool                  JKCTL_WARM_POOL          warm_pool (name: size map)
node_wait                  JKCTL_NODE_WAIT          node_wait (duration)
=========================  =======================  ============================

Culling (:mod:`jkctl.kernels.culler`): an idle kernel with no client connected
is shut down after ``cull_disconnected_timeout`` (default 2h, as long as a
pod's lease); one with a client connected after ``cull_idle_timeout``
(default 0: never). Durations are seconds or ``45s``, ``30m``, ``2h``, ``1d``.

``warm_pool`` keeps kernels of a kernelspec started ahead of time
(:mod:`jkctl.kernels.pool`); off unless given, as ``python3=2,r=1`` in the
environment and ``--warm-pool python3=2`` (repeatable) on the command line.

``node_wait`` (default 0) is for clusters that add nodes on demand
(cluster-autoscaler, Karpenter; GPU pools that scale from zero): a kernel whose
pod no node fits waits that long for one to be added, shown as pending, instead
of failing at once; its start may take that much longer than
``kernel_start_timeout``.

``kubeconfig`` follows kubectl: ``--kubeconfig``, else ``KUBECONFIG``. For the
Kubernetes backend, the context and namespace are resolved here from the
kubeconfig (its current context and that context's namespace, unless given),
so the daemon, its record and ``jkctl connect``'s reuse check all name the
same target.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jkctl import paths
from jkctl.backends.factory import choose_backend
from jkctl.backends.kubernetes.settings import DEFAULT_LEASE_SECONDS
from jkctl.durations import parse_duration
from jkctl.errors import ConfigError
from jkctl.kernels.settings import DEFAULT_CULL_DISCONNECTED, CullSettings, KernelSettings


@dataclass(frozen=True, kw_only=True)
class DaemonSettings:
    state_dir: Path
    user_kernels_dir: Path
    backend: str
    #: Why this backend, for the user ("no kubeconfig found ...").
    backend_reason: str = ""
    port: int = 0
    kernel_templates: tuple[Path, ...] = ()
    context: str | None = None
    namespace: str | None = None
    kubeconfig: str | None = None
    allow_origins: tuple[str, ...] = ()
    kernel_start_timeout: float = 120.0
    client_queue_limit: int = 64 * 1024 * 1024
    max_message_bytes: int = 1024 * 1024 * 1024
    #: How long a kernel pod outlives its last lease renewal (a daemon gone for good).
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    #: Seconds idle before a kernel with clients connected is culled (0: never).
    cull_idle_timeout: float = 0.0
    #: Seconds idle before a kernel with no client connected is culled (0: never).
    cull_disconnected_timeout: float = DEFAULT_CULL_DISCONNECTED
    #: The longest the culler waits between two looks.
    cull_interval: float = 60.0
    #: Kernels kept started ahead of time, per kernelspec: ((name, size), ...).
    warm_pool: tuple[tuple[str, int], ...] = ()
    #: Seconds a pod no node fits waits for one to be added (0: it fails at once).
    node_wait: float = 0.0

    def kernel_settings(self) -> KernelSettings:
        return KernelSettings(
            # Waiting for a node to be added is part of a start, not a stalled one.
            start_timeout=self.kernel_start_timeout + self.node_wait,
            client_queue_limit=self.client_queue_limit,
            warm_pool=self.warm_pool,
        )

    def cull_settings(self) -> CullSettings:
        return CullSettings(
            idle_timeout=self.cull_idle_timeout,
            disconnected_timeout=self.cull_disconnected_timeout,
            interval=self.cull_interval,
        )

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        return json.dumps(data, default=str)

    @classmethod
    def from_json(cls, text: str) -> DaemonSettings:
        data = json.loads(text)
        data["state_dir"] = Path(data["state_dir"])
        data["user_kernels_dir"] = Path(data["user_kernels_dir"])
        data["kernel_templates"] = tuple(Path(p) for p in data["kernel_templates"])
        data["allow_origins"] = tuple(data["allow_origins"])
        data["warm_pool"] = tuple((str(name), int(size)) for name, size in data["warm_pool"])
        return cls(**data)


def _paths(value: Any) -> tuple[Path, ...]:
    if isinstance(value, str):
        value = [p for p in value.split(os.pathsep) if p]
    if not isinstance(value, list | tuple) or not all(isinstance(p, str | Path) for p in value):
        raise ValueError("expected a list of folders")
    return tuple(Path(p).expanduser() for p in value)


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return tuple(value)


def _port(value: Any) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError("a port is a number from 0 to 65535")
    return port


def _positive(kind: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        number = kind(value)
        if number <= 0:
            raise ValueError("must be positive")
        return number

    return parse


def _interval(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be more than 0 seconds")
    return seconds


def _pool_sizes(value: Any) -> tuple[tuple[str, int], ...]:
    """``{name: size}``, or ``name=size`` items (a comma-separated string or a list)."""
    if isinstance(value, str):
        value = [item for item in value.split(",") if item.strip()]
    if isinstance(value, Mapping):
        items = [(str(name), size) for name, size in value.items()]
    elif isinstance(value, list | tuple):
        items = []
        for item in value:
            name, sep, size = str(item).partition("=")
            if not sep:
                raise ValueError(f"{item!r} is not NAME=SIZE")
            items.append((name.strip(), size.strip()))
    else:
        raise ValueError("expected kernelspec names and pool sizes, like python3=2")
    sizes: dict[str, int] = {}
    for name, size in items:
        number = int(size)
        if not name or number < 0 or number > 100:
            raise ValueError(f"a pool size is a kernelspec name and 0 to 100, not {name}={size}")
        sizes[name] = number
    return tuple((name, size) for name, size in sizes.items() if size)


def _lease(value: Any) -> int:
    seconds = int(value)
    if seconds < 2:
        raise ValueError("a lease is at least 2 seconds (the pod's clock ticks in seconds)")
    return seconds


# setting -> (environment variable, parser)
_SOURCES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "port": ("JKCTL_PORT", _port),
    "backend": ("JKCTL_BACKEND", str),
    "kernel_templates": ("JKCTL_KERNEL_TEMPLATES", _paths),
    "context": ("JKCTL_CONTEXT", str),
    "namespace": ("JKCTL_NAMESPACE", str),
    "allow_origins": ("JKCTL_ALLOW_ORIGINS", _strings),
    "kernel_start_timeout": ("JKCTL_KERNEL_START_TIMEOUT", _positive(float)),
    "client_queue_limit": ("JKCTL_CLIENT_QUEUE_LIMIT", _positive(int)),
    "lease_seconds": ("JKCTL_LEASE_SECONDS", _lease),
    "cull_idle_timeout": ("JKCTL_CULL_IDLE_TIMEOUT", parse_duration),
    "cull_disconnected_timeout": ("JKCTL_CULL_DISCONNECTED_TIMEOUT", parse_duration),
    "cull_interval": ("JKCTL_CULL_INTERVAL", _interval),
    "warm_pool": ("JKCTL_WARM_POOL", _pool_sizes),
    "node_wait": ("JKCTL_NODE_WAIT", parse_duration),
}


def resolve_settings(
    *, flags: Mapping[str, Any], env: Mapping[str, str] = os.environ
) -> DaemonSettings:
    """Merge defaults, config file, environment and flags (``None`` flags are unset)."""
    values: dict[str, Any] = {}
    config_file = paths.config_dir(env) / "config.yaml"
    for key, raw in _config_section(config_file).items():
        if key not in _SOURCES:
            raise ConfigError(
                f"{config_file} has an unknown daemon setting '{key}'.",
                hint=f"Known settings: {', '.join(_SOURCES)}.",
            )
        values[key] = _parse(key, raw, f"{config_file} (daemon.{key})")
    for key, (variable, _) in _SOURCES.items():
        if env.get(variable):
            values[key] = _parse(key, env[variable], variable)
    for key, raw in flags.items():
        if raw is not None and raw != ():
            values[key] = _parse(key, raw, f"--{key.replace('_', '-')}") if key in _SOURCES else raw
    kubeconfig = values.pop("kubeconfig", None) or env.get("KUBECONFIG") or None
    choice = choose_backend(requested=values.pop("backend", None), kubeconfig=kubeconfig, env=env)
    if choice.name == "kubernetes":
        values["context"], values["namespace"] = _kube_target(
            kubeconfig, context=values.get("context"), namespace=values.get("namespace"), env=env
        )
    return DaemonSettings(
        state_dir=paths.state_dir(env),
        user_kernels_dir=paths.user_kernels_dir(env),
        backend=choice.name,
        backend_reason=choice.why,
        kubeconfig=kubeconfig,
        **values,
    )


def _kube_target(
    kubeconfig: str | None, *, context: str | None, namespace: str | None, env: Mapping[str, str]
) -> tuple[str, str]:
    """The context and namespace the Kubernetes backend will use (files only, no login)."""
    from jkctl.kube.login import kubeconfig_setting_login

    login = kubeconfig_setting_login(kubeconfig, context=context, env=env)
    resolved_context, context_namespace = login.target()
    return resolved_context, namespace or context_namespace


def _parse(key: str, raw: Any, where: str) -> Any:
    try:
        return _SOURCES[key][1](raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"The setting {where} has an invalid value {raw!r}: {exc}.",
            hint="Fix or remove it.",
        ) from exc


def _config_section(config_file: Path) -> dict[str, Any]:
    if not config_file.is_file():
        return {}
    import yaml

    try:
        loaded = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"The config file {config_file} cannot be read: {exc}.",
            hint="Fix its YAML or move it away.",
        ) from exc
    section = loaded.get("daemon", {}) if isinstance(loaded, dict) else None
    if not isinstance(section, dict):
        raise ConfigError(
            f"The 'daemon' section of {config_file} must be a mapping.",
            hint="Write it as `daemon:` followed by indented `key: value` lines.",
        )
    return section
