"""`jkctl kernelspecs list|show|validate|install`, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.processes import write_kernelspec


class Run:
    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.data = tmp_path / "data"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("JKCTL_") and key != "KUBECONFIG"
        }
        self.env.update(
            HOME=str(self.home),
            JKCTL_DATA_DIR=str(self.data),
            JKCTL_CONFIG_DIR=str(tmp_path / "config"),
            COLUMNS="200",
        )

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jkctl", "kernelspecs", *args],
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
            timeout=60,
        )

    def json(self, *args: str) -> Any:
        result = self(*args, "-o", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    @property
    def kernels(self) -> Path:
        return self.data / "kernels"


@pytest.fixture
def jkctl(tmp_path: Path) -> Run:
    return Run(tmp_path)


def geo_spec(folder: Path, name: str = "geo", **jkctl: Any) -> Path:
    block = {"image": "registry.example.com/team/geo:1", **jkctl}
    return write_kernelspec(folder, name, argv=["python"], metadata={"jkctl": block})


def test_list_shows_bundled_specs_profiles_and_broken_ones(jkctl: Run) -> None:
    geo_spec(jkctl.kernels, resources={"limits": {"memory": "8GB"}})
    listing = jkctl.json("list")
    by_name = {spec["name"]: spec for spec in listing["kernelspecs"]}
    assert {"python3", "python3-gpu", "python3-large", "r", "r-large"} <= set(by_name)
    gpu = by_name["python3-gpu"]
    assert gpu["gpus"] == 1
    assert gpu["profile"] == "gpu"
    assert gpu["cpu"] == {"request": "4", "limit": "8"}
    assert gpu["memory"] == {"request": "16Gi", "limit": "16Gi"}
    (broken,) = listing["broken"]
    assert broken["name"] == "geo"
    assert "metadata.jkctl.resources.limits.memory is '8GB'" in broken["error"]["message"]

    table = jkctl("list")
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:] if line.strip()}
    assert "bundled/python3" in rows["python3-gpu"]
    assert "4-8" in rows["python3-gpu"] and "16Gi" in rows["python3-gpu"]
    assert "broken" in rows["geo"]
    assert "broken geo:" in table.stderr
    assert "metadata.jkctl.resources.limits.memory" in table.stderr


def test_list_follows_kernel_templates_flags(jkctl: Run, tmp_path: Path) -> None:
    geo_spec(tmp_path / "team", profiles=["large"])
    names = {
        spec["name"]
        for spec in jkctl.json("list", "--kernel-templates", str(tmp_path / "team"))["kernelspecs"]
    }
    assert {"geo", "geo-large"} <= names


def test_show_prints_the_checked_block(jkctl: Run) -> None:
    shown = jkctl.json("show", "python3-gpu")
    block = shown["metadata"]["jkctl"]
    assert block["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert block["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert shown["pod_template"].endswith("kernel-templates/kernel-pod.yaml.j2")
    assert shown["argv"][0] == "python"


def test_show_pod_renders_the_pod(jkctl: Run) -> None:
    pod = jkctl.json("show", "r-large", "--pod", "--namespace", "geo")
    assert pod["kind"] == "Pod"
    assert pod["metadata"]["namespace"] == "geo"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "quay.io/jupyter/r-notebook:2024-12-02"
    assert container["command"][-6:] == [
        "R",
        "--slave",
        "-e",
        "IRkernel::main()",
        "--args",
        "/var/run/jkctl/connection/connection.json",
    ]
    assert container["resources"]["limits"] == {"cpu": "8", "memory": "16Gi"}
    as_yaml = jkctl("show", "r-large", "--pod")
    assert as_yaml.stdout.startswith("apiVersion: v1\nkind: Pod\n")


def test_show_unknown_and_broken_specs_are_clear_errors(jkctl: Run) -> None:
    missing = jkctl("show", "nope")
    assert missing.returncode == 2
    assert "error: There is no kernelspec named 'nope'." in missing.stderr
    assert "python3-gpu" in missing.stderr
    folder = geo_spec(jkctl.kernels, nodeSelector={"gpu": True})
    broken = jkctl("show", "geo")
    assert broken.returncode == 2
    assert broken.stderr.startswith(
        f"error: {folder / 'kernel.json'}: metadata.jkctl.nodeSelector.gpu is true, not a string."
    )
    assert "Traceback" not in broken.stderr


def test_validate_a_good_folder(jkctl: Run, tmp_path: Path) -> None:
    team = tmp_path / "team"
    geo_spec(team, profiles=["xl"])
    geo_spec(team, "geo-lite")
    (team / "profiles.yaml").write_text(
        "profiles:\n  xl:\n    resources: {requests: {cpu: '16', memory: 64Gi}}\n"
    )
    result = jkctl("validate", str(team))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ok      geo  (registry.example.com/team/geo:1)",
        "ok      geo-lite  (registry.example.com/team/geo:1)",
        "ok      geo-xl  (registry.example.com/team/geo:1)",
    ]
    one = jkctl("validate", str(team / "geo-lite"))
    assert one.stdout.splitlines() == ["ok      geo-lite  (registry.example.com/team/geo:1)"]


def test_validate_reports_every_broken_spec_and_fails(jkctl: Run, tmp_path: Path) -> None:
    team = tmp_path / "team"
    bad = geo_spec(team, "bad", resources={"requests": {"cpu": "2 cores"}}, gpus=1)
    templated = geo_spec(team, "templated")
    (templated / "kernel-pod.yaml.j2").write_text("apiVersion: v1\nkind: Pod\nspec: {{ nope }}\n")
    geo_spec(team, "good")
    result = jkctl("validate", str(team))
    assert result.returncode == 2
    assert result.stdout == "ok      good  (registry.example.com/team/geo:1)\n"
    assert (
        f"broken  bad: {bad / 'kernel.json'}: metadata.jkctl.resources.requests.cpu is "
        "'2 cores', which is not a Kubernetes quantity." in result.stderr
    )
    assert "also: metadata.jkctl.gpus is not a field jkctl knows" in result.stderr
    assert (
        f"broken  templated: {templated / 'kernel-pod.yaml.j2'}: the template uses an unknown value"
        in result.stderr
    )
    assert f"error: 2 of 3 kernelspecs in {team} are broken." in result.stderr

    report = json.loads(jkctl("validate", str(team), "-o", "json").stdout)
    assert report["ok"] == ["good"]
    assert [entry["name"] for entry in report["broken"]] == ["bad", "templated"]


def test_validate_a_folder_without_specs_is_a_usage_error(jkctl: Run, tmp_path: Path) -> None:
    result = jkctl("validate", str(tmp_path))
    assert result.returncode == 2
    assert "holds no kernelspec" in result.stderr


def test_install_copies_a_spec_and_refuses_to_overwrite(jkctl: Run, tmp_path: Path) -> None:
    source = geo_spec(tmp_path / "mine", profiles=["gpu"])
    result = jkctl("install", str(source))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{jkctl.kernels / 'geo'}\n"
    assert "installed geo, geo-gpu into" in result.stderr
    assert json.loads((jkctl.kernels / "geo" / "kernel.json").read_text())["argv"] == ["python"]
    listed = {spec["name"]: spec for spec in jkctl.json("list")["kernelspecs"]}
    assert listed["geo-gpu"]["folder"] == str(jkctl.kernels / "geo")

    again = jkctl("install", str(source))
    assert again.returncode == 2
    assert f"error: a kernelspec named geo already exists in {jkctl.kernels}." in again.stderr
    assert "--force" in again.stderr
    assert jkctl("install", str(source), "--force").returncode == 0


def test_install_a_folder_with_its_profiles(jkctl: Run, tmp_path: Path) -> None:
    team = tmp_path / "team"
    geo_spec(team, profiles=["xl"])
    geo_spec(team, "geo-lite")
    (team / "profiles.yaml").write_text("profiles:\n  xl:\n    displayName: extra large\n")
    result = jkctl("install", str(team))
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == sorted(
        str(jkctl.kernels / name) for name in ("geo", "geo-lite", "profiles.yaml")
    )
    names = {spec["name"]: spec for spec in jkctl.json("list")["kernelspecs"]}
    assert names["geo-xl"]["display_name"].endswith("extra large")


def test_install_refuses_a_broken_folder_and_copies_nothing(jkctl: Run, tmp_path: Path) -> None:
    team = tmp_path / "team"
    geo_spec(team, "good")
    geo_spec(team, "bad", workingDir="relative")
    result = jkctl("install", str(team))
    assert result.returncode == 2
    assert "metadata.jkctl.workingDir is the string 'relative'" in result.stderr
    assert "nothing was installed" in result.stderr
    assert not jkctl.kernels.exists()
