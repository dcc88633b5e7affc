"""Logging in to a cluster with the user's kubeconfig.

Kubeconfigs carry every way of proving who you are: static tokens, token
files, client certificates, exec plugins (`gke-gcloud-auth-plugin`,
`aws eks get-token`, `kubelogin`), OIDC refresh tokens. The `kubernetes`
package's loader knows them all, so jkctl uses it for exactly one thing:
turning a context into :class:`Credentials` (server URL, TLS material, an
``Authorization`` header value, the context's namespace). Everything after
that — HTTP, watches, websockets — is jkctl's own aiohttp client.

Where kubeconfigs are looked for, as kubectl does: an explicit path, else the
``KUBECONFIG`` list (missing entries ignored), else ``~/.kube/config``.
Finding none at all is :class:`~jkctl.errors.NoKubeconfig`, so `jkctl
connect` can fall back to running kernels locally.

Loading runs plugins and may reach an identity provider, so it blocks:
callers in the event loop run :meth:`KubeconfigLogin.credentials` in a
thread (the client does). Nothing is cached here; logging in again (after a
401, or when an exec credential expires) simply loads again.
"""

from __future__ import annotations

import base64
import datetime
import logging
import os
import shutil
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from jkctl.errors import ConfigError, NoKubeconfig


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """What the HTTP client needs to reach and authenticate to one cluster.

    ``authorization`` is the whole header value (`Bearer …` or `Basic …`) and
    never appears in a repr or log line.
    """

    server: str
    context: str
    cluster: str
    user: str
    namespace: str
    authorization: str | None = field(default=None, repr=False)
    tls: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    tls_server_name: str | None = None
    proxy: str | None = None
    #: When the credential stops working (exec plugins say so); None if unknown.
    expiry: datetime.datetime | None = None

    def expired(self, *, now: datetime.datetime | None = None) -> bool:
        if self.expiry is None:
            return False
        now = now or datetime.datetime.now(tz=datetime.UTC)
        return now >= self.expiry - datetime.timedelta(seconds=10)


class Login(Protocol):
    """Anything that can produce credentials, blocking (the client runs it in a thread)."""

    def credentials(self) -> Credentials: ...


def find_kubeconfigs(
    explicit: Path | None = None, *, env: Mapping[str, str] = os.environ
) -> tuple[Path, ...]:
    """The kubeconfig files to merge, in kubectl's order; empty when there are none at all."""
    if explicit is not None:
        path = explicit.expanduser()
        if not path.exists():
            raise ConfigError(
                f"the kubeconfig {path} does not exist",
                hint="check the --kubeconfig path, or leave it out to use KUBECONFIG or "
                "~/.kube/config",
            )
        return (path,)
    listed = env.get("KUBECONFIG", "")
    if listed:
        candidates = [Path(entry).expanduser() for entry in listed.split(os.pathsep) if entry]
        return tuple(dict.fromkeys(path for path in candidates if path.exists()))
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    default = home / ".kube" / "config"
    return (default,) if default.exists() else ()


def kubeconfig_login(
    *,
    kubeconfig: Path | None = None,
    context: str | None = None,
    env: Mapping[str, str] = os.environ,
) -> KubeconfigLogin:
    """The login for a context of the user's kubeconfig; NoKubeconfig if there is none."""
    paths = find_kubeconfigs(kubeconfig, env=env)
    if not paths:
        looked = (
            f"KUBECONFIG={env['KUBECONFIG']} names no existing file"
            if env.get("KUBECONFIG")
            else "KUBECONFIG is not set and ~/.kube/config does not exist"
        )
        raise NoKubeconfig(
            "no kubeconfig was found",
            hint="set KUBECONFIG or pass --kubeconfig to use a cluster; without one, "
            "jkctl connect runs kernels on this machine",
            context=looked,
        )
    return KubeconfigLogin(paths=paths, context=context)


def kubeconfig_setting_login(
    setting: str | None, *, context: str | None = None, env: Mapping[str, str] = os.environ
) -> KubeconfigLogin:
    """The login for a kubeconfig *setting*: a path (``--kubeconfig``), a KUBECONFIG-style
    list of paths, or None (KUBECONFIG, else ~/.kube/config)."""
    if setting and os.pathsep not in setting:
        return kubeconfig_login(kubeconfig=Path(setting), context=context, env=env)
    if setting:
        env = {**env, "KUBECONFIG": setting}
    return kubeconfig_login(context=context, env=env)


@dataclass(frozen=True, kw_only=True)
class KubeconfigLogin:
    """One context of a (possibly merged) kubeconfig; None means its current context."""

    paths: tuple[Path, ...]
    context: str | None = None

    def contexts(self) -> tuple[list[str], str | None]:
        """The context names defined, and the current one (as kubectl picks it)."""
        merged = _Merged.read(self.paths)
        return list(merged.contexts), merged.current

    def target(self) -> tuple[str, str]:
        """The context this login uses and its namespace, read from the files alone
        (no plugin runs, nothing is contacted)."""
        merged = _Merged.read(self.paths)
        name = self._context_name(merged)
        return name, str(merged.contexts[name].get("namespace") or "default")

    def credentials(self) -> Credentials:
        merged = _Merged.read(self.paths)
        name = self._context_name(merged)
        entry = merged.contexts[name]
        user = str(entry.get("user") or "")
        cluster = str(entry.get("cluster") or "")
        if not merged.cluster_has_server(cluster):
            raise ConfigError(
                f'the kubeconfig context "{name}" points at cluster "{cluster}", '
                "which has no server URL",
                hint="fix the clusters section of your kubeconfig, or pick another context",
                context=_where(self.paths),
            )
        exec_spec = merged.user_exec(user)
        if exec_spec is not None:
            _check_exec_command(exec_spec, user=user, base=merged.base_of_user(user))
        configuration, loader, problems = _load_with_kubernetes(self.paths, name)
        # Token files usually end in a newline; client-go trims it, the
        # `kubernetes` package does not, and a header cannot carry one.
        authorization = (configuration.api_key.get("BearerToken") or "").strip() or None
        if exec_spec is not None and not authorization and not configuration.cert_file:
            raise ConfigError(
                f'the exec credential plugin "{exec_spec.get("command")}" for user "{user}" failed',
                hint="run the plugin by hand to see why (it usually needs a fresh login)",
                context="; ".join(problems) or "it printed no token or certificate",
            )
        return Credentials(
            server=str(configuration.host),
            context=name,
            cluster=cluster,
            user=user,
            namespace=str(entry.get("namespace") or "default"),
            authorization=authorization,
            tls=_tls_context(configuration, context=name)
            if configuration.host.startswith("https:")
            else None,
            tls_server_name=getattr(configuration, "tls_server_name", None) or None,
            proxy=configuration.proxy or None,
            expiry=_aware(getattr(loader, "expiry", None)),
        )

    def cluster_entry(self) -> tuple[str, dict[str, Any]]:
        """The context's cluster as a self-contained kubeconfig entry: (name, cluster).

        For kubeconfigs jkctl writes for others (a team member's): a
        ``certificate-authority`` file becomes inline
        ``certificate-authority-data``, since the file is on this machine
        only. Client credentials are never part of it.
        """
        merged = _Merged.read(self.paths)
        name = str(merged.contexts[self._context_name(merged)].get("cluster") or "")
        for path in self.paths:
            for found, body in _named_items(_read_document(path), "clusters", path):
                if found == name:
                    return name, _self_contained(body, base=path.parent)
        raise ConfigError(
            f'the kubeconfig has no cluster named "{name}"',
            hint="fix the clusters section of your kubeconfig, or pick another context",
            context=_where(self.paths),
        )

    def _context_name(self, merged: _Merged) -> str:
        known = ", ".join(merged.contexts) or "none"
        if not merged.contexts:
            raise ConfigError(
                "the kubeconfig "
                + os.pathsep.join(str(path) for path in self.paths)
                + " defines no contexts",
                hint="add one with your cloud's get-credentials command or kubectl config "
                "set-context",
            )
        if self.context is not None:
            if self.context not in merged.contexts:
                raise ConfigError(
                    f'the kubeconfig has no context named "{self.context}"',
                    hint=f"pick one of the known contexts: {known}",
                    context=_where(self.paths),
                )
            return self.context
        if merged.current is None:
            raise ConfigError(
                "the kubeconfig sets no current context",
                hint=f"pass --context with one of: {known} (or run kubectl config use-context)",
                context=_where(self.paths),
            )
        if merged.current not in merged.contexts:
            raise ConfigError(
                f'the kubeconfig\'s current context "{merged.current}" is not defined in it',
                hint=f"pass --context with one of: {known}",
                context=_where(self.paths),
            )
        return merged.current


@dataclass(frozen=True, kw_only=True)
class _Merged:
    """The parts of the merged kubeconfigs jkctl checks itself, for precise errors."""

    contexts: dict[str, Mapping[str, Any]]
    clusters: dict[str, Mapping[str, Any]]
    users: dict[str, tuple[Mapping[str, Any], Path]]
    current: str | None

    @classmethod
    def read(cls, paths: tuple[Path, ...]) -> _Merged:
        contexts: dict[str, Mapping[str, Any]] = {}
        clusters: dict[str, Mapping[str, Any]] = {}
        users: dict[str, tuple[Mapping[str, Any], Path]] = {}
        current: str | None = None
        for path in paths:
            document = _read_document(path)
            # As kubectl merges: the first definition of a name wins, and so
            # does the first file that sets a current context.
            for item in _named_items(document, "contexts", path):
                contexts.setdefault(item[0], item[1])
            for item in _named_items(document, "clusters", path):
                clusters.setdefault(item[0], item[1])
            for item in _named_items(document, "users", path):
                users.setdefault(item[0], (item[1], path))
            if current is None and document.get("current-context"):
                current = str(document["current-context"])
        return cls(contexts=contexts, clusters=clusters, users=users, current=current)

    def cluster_has_server(self, name: str) -> bool:
        return bool(self.clusters.get(name, {}).get("server"))

    def user_exec(self, name: str) -> Mapping[str, Any] | None:
        spec = self.users.get(name, ({}, Path()))[0].get("exec")
        return spec if isinstance(spec, Mapping) else None

    def base_of_user(self, name: str) -> Path:
        return self.users[name][1].parent.resolve()


_CLUSTER_FIELDS = (
    "server",
    "certificate-authority-data",
    "insecure-skip-tls-verify",
    "tls-server-name",
    "proxy-url",
    "disable-compression",
)


def _self_contained(cluster: Mapping[str, Any], *, base: Path) -> dict[str, Any]:
    entry = {key: cluster[key] for key in _CLUSTER_FIELDS if key in cluster}
    authority = cluster.get("certificate-authority")
    if authority and "certificate-authority-data" not in entry:
        path = Path(str(authority)).expanduser()
        path = path if path.is_absolute() else base / path
        try:
            entry["certificate-authority-data"] = base64.b64encode(path.read_bytes()).decode()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the cluster's certificate authority {path}: {exc.strerror}",
                hint="fix certificate-authority in the kubeconfig's cluster entry",
            ) from exc
    return entry


def _read_document(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"cannot read the kubeconfig {path}: {reason}",
            hint="check the file's permissions, or point --kubeconfig / KUBECONFIG elsewhere",
        ) from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"the kubeconfig {path} is not valid YAML",
            hint="fix the file (kubectl config view shows what kubectl makes of it)",
            context=str(exc),
        ) from exc
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ConfigError(
            f"the kubeconfig {path} is not a kubeconfig (its top level is not a mapping)",
            hint="point --kubeconfig / KUBECONFIG at a kubeconfig file",
        )
    return document


def _named_items(
    document: Mapping[str, Any], section: str, path: Path
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    key = section[:-1]  # contexts -> context, clusters -> cluster, users -> user
    for item in document.get(section) or []:
        if not isinstance(item, Mapping) or "name" not in item:
            raise ConfigError(
                f"the kubeconfig {path} has an entry in {section} without a name",
                hint="fix the file (kubectl config view shows what kubectl makes of it)",
            )
        body = item.get(key) or {}
        if not isinstance(body, Mapping):
            raise ConfigError(
                f'the kubeconfig {path} has a malformed {key} "{item["name"]}"',
                hint="fix the file (kubectl config view shows what kubectl makes of it)",
            )
        yield str(item["name"]), body


def _check_exec_command(spec: Mapping[str, Any], *, user: str, base: Path) -> None:
    """Say clearly that an exec plugin is missing, with the kubeconfig's install hint."""
    command = str(spec.get("command") or "")
    # Like client-go: a command with a slash is relative to the kubeconfig's folder.
    found = (
        (os.access(base / command, os.X_OK) if os.sep in command else shutil.which(command))
        if command
        else False
    )
    if not found:
        raise ConfigError(
            f'the exec credential plugin "{command}" for user "{user}" was not found',
            hint=str(spec.get("installHint") or "install it, or put it on PATH").strip(),
            context=f"PATH={os.environ.get('PATH', '')}",
        )


def _load_with_kubernetes(paths: tuple[Path, ...], context: str) -> tuple[Any, Any, list[str]]:
    """Run the `kubernetes` package's loader: (Configuration, loader, problems it logged)."""
    # The package is untyped where it matters; hold it as Any rather than
    # sprinkle ignores over each call.
    from kubernetes.client import configuration as client_configuration
    from kubernetes.config import kube_config

    loading: Any = kube_config
    configuration = client_configuration.Configuration()
    with _captured_loader_errors() as problems:
        try:
            merger = loading.KubeConfigMerger(os.pathsep.join(str(path) for path in paths))
            loader = loading.KubeConfigLoader(
                config_dict=merger.config,
                active_context=context,
                config_base_path=None,
                # Refreshed OIDC tokens are written back, as kubectl does:
                # identity providers may rotate refresh tokens on every use.
                config_persister=merger.save_changes,
            )
            loader.load_and_set(configuration)
        except Exception as exc:
            # The loader runs plugins and reaches identity providers; whatever
            # it raises (its ConfigException, OSError, oauthlib, urllib3), the
            # user's problem is the same: this context cannot log in.
            raise ConfigError(
                f'cannot log in with the kubeconfig context "{context}": {exc}',
                hint="check the context's user entry (kubectl config view --minify) and "
                "that any files it names exist",
                context=_where(paths),
            ) from exc
    return configuration, loader, problems


@contextmanager
def _captured_loader_errors() -> Iterator[list[str]]:
    """Collect (and keep out of the user's log) what the loader logs instead of raising.

    The `kubernetes` loader swallows exec-plugin failures and only logs them
    through the root logger; those records carry the plugin's stderr, which is
    the one thing the user needs to see. A filter on the root logger takes
    them (from this thread only), and a null handler keeps `logging.error`
    from configuring logging as a side effect when nothing has yet.
    """
    problems: list[str] = []
    thread = threading.get_ident()
    marker = f"{os.sep}kubernetes{os.sep}config{os.sep}"

    def take(record: logging.LogRecord) -> bool:
        if record.thread == thread and marker in record.pathname:
            problems.append(record.getMessage())
            return False
        return True

    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addFilter(take)
    root.addHandler(guard)
    try:
        yield problems
    finally:
        root.removeHandler(guard)
        root.removeFilter(take)


def _tls_context(configuration: Any, *, context: str) -> ssl.SSLContext:
    try:
        tls = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
        if configuration.cert_file:
            tls.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f'the TLS certificates of kubeconfig context "{context}" cannot be loaded: {exc}',
            hint="check certificate-authority(-data) and client-certificate/-key in the kubeconfig",
        ) from exc
    if not configuration.verify_ssl:
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    return tls


def _aware(moment: object) -> datetime.datetime | None:
    if not isinstance(moment, datetime.datetime):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _where(paths: tuple[Path, ...]) -> str:
    return "kubeconfig: " + os.pathsep.join(str(path) for path in paths)
