"""Kubeconfig discovery and login through the `kubernetes` package's loader."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
import trustme

from jkctl import errors
from jkctl.kube.login import KubeconfigLogin, find_kubeconfigs, kubeconfig_login

from .kubeconfigs import b64, exec_plugin, exec_user, kubeconfig, plugin_calls, write


def login(path: Path, context: str | None = None) -> KubeconfigLogin:
    return kubeconfig_login(kubeconfig=path, context=context, env={})


# -- finding kubeconfigs ---------------------------------------------------------------


def test_explicit_path_wins_and_must_exist(tmp_path: Path) -> None:
    path = write(tmp_path / "explicit", kubeconfig())
    env = {"KUBECONFIG": str(tmp_path / "other"), "HOME": str(tmp_path)}
    assert find_kubeconfigs(path, env=env) == (path,)
    with pytest.raises(errors.ConfigError, match="does not exist") as caught:
        find_kubeconfigs(tmp_path / "missing", env=env)
    assert type(caught.value) is errors.ConfigError
    assert caught.value.hint


def test_kubeconfig_list_skips_missing_entries(tmp_path: Path) -> None:
    first = write(tmp_path / "a", kubeconfig())
    second = write(tmp_path / "b", kubeconfig())
    listed = f"{tmp_path / 'gone'}:{first}::{second}:{first}"
    assert find_kubeconfigs(env={"KUBECONFIG": listed}) == (first, second)


def test_home_default(tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    default = write(tmp_path / ".kube" / "config", kubeconfig())
    assert find_kubeconfigs(env={"HOME": str(tmp_path)}) == (default,)


def test_none_at_all_is_distinguishable(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "nope")}
    assert find_kubeconfigs(env=env) == ()
    with pytest.raises(errors.NoKubeconfig) as caught:
        kubeconfig_login(env=env)
    assert isinstance(caught.value, errors.ConfigError)
    assert caught.value.reference == "no-kubeconfig"
    assert caught.value.message == "no kubeconfig was found"
    assert caught.value.context == f"KUBECONFIG={tmp_path / 'nope'} names no existing file"
    assert caught.value.hint is not None and "runs kernels on this machine" in caught.value.hint


# -- credentials -----------------------------------------------------------------------


def test_static_token_and_context_namespace(tmp_path: Path) -> None:
    credentials = login(write(tmp_path / "config", kubeconfig())).credentials()
    assert credentials.server == "https://127.0.0.1:6443"
    assert credentials.authorization == "Bearer t0k3n"
    assert credentials.namespace == "geo"
    assert (credentials.context, credentials.user, credentials.cluster) == (
        "geo-ctx",
        "alice",
        "c1",
    )
    assert credentials.expiry is None
    assert "t0k3n" not in repr(credentials)


def test_namespace_defaults_to_default(tmp_path: Path) -> None:
    credentials = login(write(tmp_path / "config", kubeconfig(namespace=None))).credentials()
    assert credentials.namespace == "default"


def test_token_file_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("from-a-file\n")
    path = write(tmp_path / "config", kubeconfig(user={"tokenFile": "secrets/token"}))
    assert login(path).credentials().authorization == "Bearer from-a-file"


def test_client_certificate_data_fields(tmp_path: Path) -> None:
    ca = trustme.CA()
    client_cert = ca.issue_cert("alice@example.test")
    user = {
        "client-certificate-data": b64(client_cert.cert_chain_pems[0].bytes()),
        "client-key-data": b64(client_cert.private_key_pem.bytes()),
    }
    cluster = {"certificate-authority-data": b64(ca.cert_pem.bytes())}
    path = write(tmp_path / "config", kubeconfig(user=user, cluster=cluster))
    credentials = login(path).credentials()
    assert credentials.authorization is None
    assert credentials.tls is not None
    assert credentials.tls.verify_mode is ssl.CERT_REQUIRED
    assert credentials.tls.check_hostname
    assert len(credentials.tls.get_ca_certs()) == 1


def test_insecure_skip_tls_verify(tmp_path: Path) -> None:
    path = write(tmp_path / "config", kubeconfig(cluster={"insecure-skip-tls-verify": True}))
    tls = login(path).credentials().tls
    assert tls is not None
    assert tls.verify_mode is ssl.CERT_NONE
    assert not tls.check_hostname


def test_plain_http_server_has_no_tls(tmp_path: Path) -> None:
    path = write(tmp_path / "config", kubeconfig(server="http://127.0.0.1:8080"))
    assert login(path).credentials().tls is None


def test_exec_plugin_token_and_expiry(tmp_path: Path) -> None:
    plugin = exec_plugin(tmp_path, expires="2031-01-02T03:04:05Z")
    path = write(tmp_path / "config", kubeconfig(user=exec_user(plugin)))
    credentials = login(path).credentials()
    assert credentials.authorization == "Bearer exec-token-1"
    assert credentials.expiry == datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert not credentials.expired()
    assert credentials.expired(now=datetime.datetime(2032, 1, 1, tzinfo=datetime.UTC))
    assert login(path).credentials().authorization == "Bearer exec-token-2"
    assert plugin_calls(tmp_path) == 2


def test_exec_plugin_failure_shows_its_stderr(tmp_path: Path) -> None:
    plugin = exec_plugin(tmp_path, fail_with="error: your SSO session expired, run `sso login`")
    path = write(tmp_path / "config", kubeconfig(user=exec_user(plugin)))
    with pytest.raises(errors.ConfigError) as caught:
        login(path).credentials()
    assert caught.value.message == (
        f'the exec credential plugin "{plugin}" for user "alice" failed'
    )
    assert caught.value.context is not None
    assert "your SSO session expired" in caught.value.context


def test_exec_plugin_not_found_gives_the_install_hint(tmp_path: Path) -> None:
    user = exec_user("no-such-auth-plugin", installHint="install it with: brew install nsap")
    path = write(tmp_path / "config", kubeconfig(user=user))
    with pytest.raises(errors.ConfigError) as caught:
        login(path).credentials()
    assert caught.value.message == (
        'the exec credential plugin "no-such-auth-plugin" for user "alice" was not found'
    )
    assert caught.value.hint == "install it with: brew install nsap"


def test_unknown_context_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "config", kubeconfig(extra_contexts=("prod",)))
    with pytest.raises(errors.ConfigError) as caught:
        login(path, context="staging").credentials()
    assert caught.value.message == 'the kubeconfig has no context named "staging"'
    assert caught.value.hint == "pick one of the known contexts: geo-ctx, prod"
    assert login(path, context="prod").credentials().namespace == "default"
    assert login(path).contexts() == (["geo-ctx", "prod"], "geo-ctx")


def test_no_current_context(tmp_path: Path) -> None:
    document = kubeconfig()
    del document["current-context"]
    with pytest.raises(errors.ConfigError, match="sets no current context") as caught:
        login(write(tmp_path / "config", document)).credentials()
    assert caught.value.hint is not None and "geo-ctx" in caught.value.hint


def test_merged_kubeconfigs_first_definition_wins(tmp_path: Path) -> None:
    first = write(tmp_path / "a", kubeconfig(context="one", server="https://first:6443"))
    second = kubeconfig(context="two", server="https://second:6443")
    second["clusters"][0]["name"] = "c2"
    second["contexts"][0]["context"]["cluster"] = "c2"
    second_path = write(tmp_path / "b", second)
    merged = KubeconfigLogin(paths=(first, second_path))
    assert merged.credentials().context == "one"
    assert KubeconfigLogin(paths=(first, second_path), context="two").credentials().server == (
        "https://second:6443"
    )


def test_broken_yaml(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("clusters: [\n  - name: c1\n   cluster: {")
    with pytest.raises(errors.ConfigError) as caught:
        login(path).credentials()
    assert caught.value.message == f"the kubeconfig {path} is not valid YAML"
    assert caught.value.context is not None and "line" in caught.value.context
    assert caught.value.__cause__ is not None


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("- just\n- a list\n")
    with pytest.raises(errors.ConfigError, match="is not a kubeconfig"):
        login(path).credentials()


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.mkdir()
    with pytest.raises(errors.ConfigError, match="cannot read the kubeconfig") as caught:
        login(path).credentials()
    assert isinstance(caught.value.__cause__, OSError)


def test_missing_certificate_file(tmp_path: Path) -> None:
    cluster = {"certificate-authority": str(tmp_path / "ca.crt")}
    path = write(tmp_path / "config", kubeconfig(cluster=cluster))
    with pytest.raises(errors.ConfigError) as caught:
        login(path).credentials()
    assert caught.value.message.startswith('cannot log in with the kubeconfig context "geo-ctx"')
    assert "ca.crt" in caught.value.message


def test_cluster_without_server(tmp_path: Path) -> None:
    document = kubeconfig()
    del document["clusters"][0]["cluster"]["server"]
    with pytest.raises(errors.ConfigError, match="has no server URL"):
        login(write(tmp_path / "config", document)).credentials()
