"""Choosing the backend: asked for, else Kubernetes with a kubeconfig, else local."""

from __future__ import annotations

from pathlib import Path

import pytest

from jkctl.backends.factory import choose_backend, create_backend, find_kubeconfig
from jkctl.backends.kubernetes.backend import KubernetesBackend
from jkctl.backends.kubernetes.settings import KubeBackendSettings
from jkctl.backends.local import LocalBackend
from jkctl.errors import ConfigError, UsageError


def test_no_kubeconfig_anywhere_means_local(tmp_path: Path) -> None:
    choice = choose_backend(requested=None, kubeconfig=None, env={"HOME": str(tmp_path)})
    assert choice.name == "local"
    assert "no kubeconfig" in choice.why


def test_a_kubeconfig_means_kubernetes(tmp_path: Path) -> None:
    config = tmp_path / ".kube" / "config"
    config.parent.mkdir()
    config.write_text("kind: Config\n")
    choice = choose_backend(requested=None, kubeconfig=None, env={"HOME": str(tmp_path)})
    assert choice.name == "kubernetes"
    assert str(config) in choice.why


def test_kubeconfig_search_follows_kubectl(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    b.write_text("")
    env = {"KUBECONFIG": f"{a}:{b}", "HOME": str(tmp_path)}
    assert find_kubeconfig(flag=None, env=env) == [b]
    assert find_kubeconfig(flag=str(a), env=env) == []


def test_a_missing_kubeconfig_flag_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        choose_backend(requested=None, kubeconfig=str(tmp_path / "nope"), env={})


def test_asked_for_beats_detection(tmp_path: Path) -> None:
    assert choose_backend(requested="local", kubeconfig=None, env={}).name == "local"
    with pytest.raises(UsageError):
        choose_backend(requested="mainframe", kubeconfig=None, env={})


def test_backends_are_built_by_name(tmp_path: Path) -> None:
    assert isinstance(create_backend("local", runtime_dir=tmp_path), LocalBackend)
    settings = KubeBackendSettings(daemon_id="0" * 16, owner="ada", runtime_dir=tmp_path)
    backend = create_backend("kubernetes", runtime_dir=tmp_path, kubernetes=settings)
    assert isinstance(backend, KubernetesBackend)
    assert backend.kernels_outlive_daemon
    with pytest.raises(ConfigError) as raised:
        create_backend("kubernetes", runtime_dir=tmp_path)
    assert raised.value.message.endswith(".")
