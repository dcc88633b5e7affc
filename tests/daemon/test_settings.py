"""Daemon settings: defaults < config file < JKCTL_* environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from jkctl.daemon.settings import DaemonSettings, resolve_settings
from jkctl.errors import ConfigError


def base_env(tmp_path: Path) -> dict[str, str]:
    return {
        "HOME": str(tmp_path),
        "JKCTL_STATE_DIR": str(tmp_path / "state"),
        "JKCTL_CONFIG_DIR": str(tmp_path / "config"),
        "JKCTL_DATA_DIR": str(tmp_path / "data"),
    }


def write_config(tmp_path: Path, text: str) -> None:
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "config.yaml").write_text(text)


def test_defaults(tmp_path: Path) -> None:
    settings = resolve_settings(flags={}, env=base_env(tmp_path))
    assert settings.port == 0
    assert settings.backend == "local"
    assert settings.state_dir == tmp_path / "state"
    assert settings.user_kernels_dir == tmp_path / "data" / "kernels"
    assert settings.kernel_templates == ()


def test_each_source_overrides_the_one_before(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    write_config(
        tmp_path,
        "daemon:\n  port: 1111\n  namespace: from-config\n  allow_origins: [http://a]\n"
        "  kernel_start_timeout: 30\n",
    )
    settings = resolve_settings(flags={}, env=env)
    assert (settings.port, settings.namespace) == (1111, "from-config")
    assert settings.allow_origins == ("http://a",)
    assert settings.kernel_start_timeout == 30.0

    env["JKCTL_PORT"] = "2222"
    env["JKCTL_KERNEL_TEMPLATES"] = f"{tmp_path}/one:{tmp_path}/two"
    settings = resolve_settings(flags={}, env=env)
    assert settings.port == 2222
    assert settings.namespace == "from-config"
    assert settings.kernel_templates == (tmp_path / "one", tmp_path / "two")

    settings = resolve_settings(
        flags={"port": 3333, "namespace": None, "kernel_templates": ()}, env=env
    )
    assert settings.port == 3333
    assert settings.namespace == "from-config"
    assert settings.kernel_templates == (tmp_path / "one", tmp_path / "two")


def test_settings_travel_as_json(tmp_path: Path) -> None:
    settings = resolve_settings(
        flags={"kernel_templates": (tmp_path / "t",), "namespace": "ns"}, env=base_env(tmp_path)
    )
    assert DaemonSettings.from_json(settings.to_json()) == settings


@pytest.mark.parametrize(
    ("config", "env", "where"),
    [
        ("daemon:\n  port: 99999\n", {}, "daemon.port"),
        ("daemon:\n  colour: blue\n", {}, "colour"),
        ("daemon: [1, 2]\n", {}, "mapping"),
        ("daemon: {port: [\n", {}, "cannot be read"),
        ("", {"JKCTL_CLIENT_QUEUE_LIMIT": "-5"}, "JKCTL_CLIENT_QUEUE_LIMIT"),
    ],
)
def test_bad_settings_say_where_they_came_from(
    tmp_path: Path, config: str, env: dict[str, str], where: str
) -> None:
    write_config(tmp_path, config)
    with pytest.raises(ConfigError) as raised:
        resolve_settings(flags={}, env={**base_env(tmp_path), **env})
    assert where in raised.value.message


KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: work
contexts:
  - name: work
    context: {cluster: c, user: u, namespace: geo}
  - name: other
    context: {cluster: c, user: u}
clusters:
  - name: c
    cluster: {server: "https://127.0.0.1:6443"}
users:
  - name: u
    user: {token: t}
"""


def test_the_kubernetes_target_is_resolved_from_the_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    env = {**base_env(tmp_path), "KUBECONFIG": str(kubeconfig)}
    settings = resolve_settings(flags={}, env=env)
    assert settings.backend == "kubernetes"
    assert (settings.context, settings.namespace) == ("work", "geo")
    settings = resolve_settings(flags={"context": "other"}, env=env)
    assert (settings.context, settings.namespace) == ("other", "default")
    settings = resolve_settings(flags={"namespace": "mine"}, env=env)
    assert (settings.context, settings.namespace) == ("work", "mine")
    with pytest.raises(ConfigError, match='no context named "nope"'):
        resolve_settings(flags={"context": "nope"}, env=env)


def test_the_lease_is_configurable(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    assert resolve_settings(flags={}, env=env).lease_seconds == 7200
    assert (
        resolve_settings(flags={}, env={**env, "JKCTL_LEASE_SECONDS": "600"}).lease_seconds == 600
    )
    with pytest.raises(ConfigError, match="JKCTL_LEASE_SECONDS"):
        resolve_settings(flags={}, env={**env, "JKCTL_LEASE_SECONDS": "1"})


def test_the_warm_pool_is_off_unless_given(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    assert resolve_settings(flags={}, env=env).warm_pool == ()
    write_config(tmp_path, "daemon:\n  warm_pool: {python3: 2, r: 0}\n")
    assert resolve_settings(flags={}, env=env).warm_pool == (("python3", 2),)
    from_env = {**env, "JKCTL_WARM_POOL": "python3=1, r=3"}
    assert resolve_settings(flags={}, env=from_env).warm_pool == (("python3", 1), ("r", 3))
    flags = {"warm_pool": ("python3-large=4",)}
    settings = resolve_settings(flags=flags, env=from_env)
    assert settings.warm_pool == (("python3-large", 4),)
    assert settings.kernel_settings().warm_pool == (("python3-large", 4),)
    assert DaemonSettings.from_json(settings.to_json()) == settings
    for bad in ("python3", "python3=-1", "python3=many", "=2"):
        with pytest.raises(ConfigError, match="--warm-pool"):
            resolve_settings(flags={"warm_pool": (bad,)}, env=env)


def test_waiting_for_a_node_is_off_unless_given_and_lengthens_the_start(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    settings = resolve_settings(flags={}, env=env)
    assert settings.node_wait == 0
    assert settings.kernel_settings().start_timeout == settings.kernel_start_timeout
    settings = resolve_settings(flags={"node_wait": "10m"}, env={**env, "JKCTL_NODE_WAIT": "1m"})
    assert settings.node_wait == 600
    assert settings.kernel_settings().start_timeout == settings.kernel_start_timeout + 600
    with pytest.raises(ConfigError, match="JKCTL_NODE_WAIT"):
        resolve_settings(flags={}, env={**env, "JKCTL_NODE_WAIT": "soon"})
