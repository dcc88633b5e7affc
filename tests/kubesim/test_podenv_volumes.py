"""Env resolution, $(VAR) expansion and volume contents, as pure functions on a Store."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from tests.kubesim import resources
from tests.kubesim.kubelet_fixtures import make_store
from tests.kubesim.podenv import ConfigError, command_line, environment, expand
from tests.kubesim.volumes import MountError, setup, write_atomically


def test_expansion_follows_kubernetes_rules() -> None:
    variables = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)", variables) == "1-two"
    assert expand("$$(A) $(UNKNOWN) $A", variables) == "$(A) $(UNKNOWN) $A"
    container = {"command": ["echo", "$(A)"], "args": ["$(B)", "$$(B)"]}
    assert command_line(container, variables) == ["echo", "1", "two", "$(B)"]
    assert command_line({"args": ["python", "-V"]}, {}) == ["python", "-V"]
    assert command_line({}, {}) == ["sleep", "infinity"]


def test_environment_in_order_with_references() -> None:
    store = make_store()
    store.create(
        resources.SECRETS,
        {
            "metadata": {"name": "s", "namespace": "default"},
            "data": {"k": base64.b64encode(b"v").decode()},
        },
    )
    pod = {
        "metadata": {"name": "p", "namespace": "default", "uid": "u-1", "labels": {"app": "x"}},
        "spec": {"nodeName": "n1"},
        "status": {"podIP": "10.244.0.5"},
    }
    container = {
        "env": [
            {"name": "FIRST", "value": "a"},
            {"name": "SECOND", "value": "$(FIRST)b"},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {
                "name": "O",
                "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": True}},
            },
        ]
    }
    env = environment(store, pod, container)
    assert {k: env[k] for k in ("FIRST", "SECOND", "IP", "UID", "APP", "S")} == {
        "FIRST": "a", "SECOND": "ab", "IP": "10.244.0.5", "UID": "u-1", "APP": "x", "S": "v",
    }  # fmt: skip
    assert "O" not in env and env["HOSTNAME"] == "p"
    container["env"].append(
        {"name": "M", "valueFrom": {"secretKeyRef": {"name": "s", "key": "nope"}}}
    )
    with pytest.raises(ConfigError, match="couldn't find key nope in Secret default/s"):
        environment(store, pod, container)


def test_secret_volume_items_modes_and_optional(tmp_path: Path) -> None:
    store = make_store()
    data = {"a": base64.b64encode(b"A").decode(), "b": base64.b64encode(b"B").decode()}
    store.create(
        resources.SECRETS, {"metadata": {"name": "s", "namespace": "default"}, "data": data}
    )
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {}}
    volume = {
        "name": "v",
        "secret": {
            "secretName": "s",
            "defaultMode": 0o400,
            "items": [{"key": "a", "path": "dir/a.txt"}],
        },
    }
    path = setup(store, pod, volume, tmp_path)
    assert (path / "dir" / "a.txt").read_text() == "A"
    assert (path / "dir" / "a.txt").stat().st_mode & 0o777 == 0o400
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith("..")) == ["dir"]
    with pytest.raises(
        MountError,
        match=re.escape('MountVolume.SetUp failed for volume "w" : secret "gone" not found'),
    ):
        setup(store, pod, {"name": "w", "secret": {"secretName": "gone"}}, tmp_path)
    empty = setup(
        store, pod, {"name": "o", "secret": {"secretName": "gone", "optional": True}}, tmp_path
    )
    assert [p for p in empty.iterdir() if not p.name.startswith("..")] == []


def test_atomic_writer_swaps_data_and_drops_old_files(tmp_path: Path) -> None:
    assert write_atomically(tmp_path, {"x": (b"1", 0o644), "y": (b"2", 0o644)})
    first = (tmp_path / "..data").readlink()
    assert not write_atomically(tmp_path, {"x": (b"1", 0o644), "y": (b"2", 0o644)})
    assert write_atomically(tmp_path, {"x": (b"3", 0o644)})
    assert (tmp_path / "..data").readlink() != first and not (tmp_path / first).exists()
    assert (tmp_path / "x").read_text() == "3" and not (tmp_path / "y").exists()
    assert (tmp_path / "x").readlink() == Path("..data/x")
