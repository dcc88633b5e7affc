"""`jkctl images prepull` against kubesim, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kubesim.fixture import Kubesim

pytestmark = pytest.mark.kubesim


def jkctl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JKCTL_")}
    env.update(HOME=str(tmp_path), JKCTL_DATA_DIR=str(tmp_path / "data"), COLUMNS="120")
    env.pop("KUBECONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "jkctl", "images", "prepull", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=90,
    )


def test_prepull_then_remove(tmp_path: Path, kubesim: Kubesim, kube_namespace: str) -> None:
    cluster = ("--kubeconfig", str(kubesim.kubeconfig), "-n", kube_namespace)
    result = jkctl(tmp_path, "--kernelspec", "python3-gpu", "--kernelspec", "r", *cluster)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{kube_namespace}/jkctl-prepull\n"
    assert "image quay.io/jupyter/base-notebook:2024-12-02  (python3-gpu)" in result.stderr
    assert "kubesim-gpu" in result.stderr and "kubesim-cpu" in result.stderr
    assert "done: 2 node(s) hold every kernel image" in result.stderr

    removed = jkctl(tmp_path, "--remove", *cluster)
    assert removed.returncode == 0, removed.stderr
    assert f"removed the DaemonSet {kube_namespace}/jkctl-prepull" in removed.stderr
    again = jkctl(tmp_path, "--remove", *cluster)
    assert "there is no DaemonSet" in again.stderr


def test_unknown_kernelspec_is_a_clear_error(tmp_path: Path, kubesim: Kubesim) -> None:
    result = jkctl(tmp_path, "--kernelspec", "nope", "--kubeconfig", str(kubesim.kubeconfig))
    assert result.returncode == 2
    assert "error: There is no kernelspec named 'nope'." in result.stderr
