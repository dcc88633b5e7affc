"""`jkctl build-kernel-image conda-env` end to end, as a user runs it, with fake builders."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from tests.images.fakes import BUILDKIT_FAILURE, DATA, fake_builder, fake_exporter, fake_path

IMAGE = "registry.example.com/team/kernel-geo:1"


class Run:
    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.data = tmp_path / "data"
        self.tmp = tmp_path / "tmp"
        self.tmp.mkdir()
        self.env = {
            "PATH": fake_path(self.bin),
            "HOME": str(tmp_path),
            "JKCTL_DATA_DIR": str(self.data),
            "TMPDIR": str(self.tmp),
            "COLUMNS": "80",
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jkctl", "build-kernel-image", "conda-env", *args],
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
            timeout=60,
        )

    @property
    def kernels(self) -> Path:
        return self.data / "kernels"


@pytest.fixture
def jkctl(tmp_path: Path) -> Run:
    return Run(tmp_path)


@pytest.mark.parametrize(
    "case",
    [
        ("plain.yml", [], "stats", "environment.yml"),
        ("with_pip.yml", [], "nlp", "environment.yml"),
        ("with_channels.yml", [], "geo", "environment.yml"),
        ("explicit.txt", ["--name", "locked"], "locked", "environment.txt"),
    ],
    ids=["plain", "pip", "channels", "explicit"],
)
def test_dry_run_writes_the_context_and_prints_the_command(
    jkctl: Run, tmp_path: Path, case: tuple[str, list[str], str, str]
) -> None:
    sample, extra, env_name, env_file = case
    context = tmp_path / "ctx"
    result = jkctl(
        str(DATA / sample), *extra, "--tag", IMAGE, "--dry-run", "--context-dir", str(context)
    )
    assert result.returncode == 0, result.stderr
    # stdout is exactly the command, ready to paste; no builder is installed, so docker's.
    assert result.stdout == (
        f"BUILDKIT_PROGRESS=plain docker build --tag {IMAGE} "
        f"--file {context / 'Dockerfile'} {context}\n"
    )
    assert f"wrote the build context to {context}" in result.stderr

    dockerfile = (context / "Dockerfile").read_text()
    assert f"\nARG JKCTL_ENV_NAME={env_name}\n" in dockerfile
    assert f"\nARG JKCTL_ENV_FILE={env_file}\n" in dockerfile
    assert (context / env_file).is_file()
    spec = json.loads((context / "kernelspec" / "kernel.json").read_text())
    assert spec["argv"][0] == f"/opt/conda/envs/{env_name}/bin/python"
    assert spec["metadata"]["jkctl"]["image"] == IMAGE
    assert not jkctl.kernels.exists()


def test_dry_run_command_names_the_chosen_builder(jkctl: Run, tmp_path: Path) -> None:
    result = jkctl(
        str(DATA / "plain.yml"),
        "--tag",
        IMAGE,
        "--dry-run",
        "--builder",
        "buildah",
        "--push",
        "--platform",
        "linux/amd64",
        "--context-dir",
        str(tmp_path / "ctx"),
    )
    assert result.returncode == 0, result.stderr
    build, push = result.stdout.splitlines()
    assert shlex.split(build)[:2] == ["buildah", "bud"]
    assert "--platform linux/amd64" in build
    assert push == f"buildah push {IMAGE}"


def test_dry_run_without_context_dir_keeps_a_temporary_one(jkctl: Run) -> None:
    result = jkctl(str(DATA / "plain.yml"), "--tag", IMAGE, "--dry-run")
    assert result.returncode == 0, result.stderr
    written = re.search(r"wrote the build context to (\S+)", result.stderr)
    assert written is not None
    context = Path(written[1])
    assert context.parent == jkctl.tmp
    assert (context / "Dockerfile").is_file()
    assert str(context) in result.stdout


def test_name_alone_exports_the_local_environment(jkctl: Run, tmp_path: Path) -> None:
    fake_exporter(
        jkctl.bin, "micromamba", output="name: geo\nchannels: [conda-forge]\ndependencies: [gdal]"
    )
    context = tmp_path / "ctx"
    result = jkctl("--name", "geo", "--tag", IMAGE, "--dry-run", "--context-dir", str(context))
    assert result.returncode == 0, result.stderr
    assert "note: micromamba exports conda packages only" in result.stderr
    assert "\nARG JKCTL_ENV_NAME=geo\n" in (context / "Dockerfile").read_text()
    assert "- gdal\n" in (context / "environment.yml").read_text()


def test_name_alone_without_conda(jkctl: Run) -> None:
    result = jkctl("--name", "geo", "--tag", IMAGE, "--dry-run")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: neither conda nor micromamba is installed, so the local environment 'geo' "
        "cannot be exported."
    )


def test_validation_error_is_one_clear_message(jkctl: Run, tmp_path: Path) -> None:
    bad = tmp_path / "environment.yml"
    bad.write_text("name: x\nchannels:\n  - http://insecure.example.com\ndependencies: [a]\n")
    result = jkctl(str(bad), "--tag", IMAGE, "--dry-run")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {bad}: `channels[0]` 'http://insecure.example.com' is not a channel the build "
        "understands.",
        "hint: allowed: a channel name (conda-forge), a label (conda-forge/label/rc), an "
        "https:// URL or a file:// path",
        "(environment-spec-invalid)",
    ]


def test_no_environment_given(jkctl: Run) -> None:
    result = jkctl("--tag", IMAGE)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no environment given:")


def test_builder_missing(jkctl: Run) -> None:
    result = jkctl(str(DATA / "plain.yml"), "--tag", IMAGE)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "error: no image builder is installed: none of docker, podman or buildah is on PATH."
    )
    assert "(builder-not-found)" in result.stderr
    assert list(jkctl.tmp.iterdir()) == []  # refused before writing anything


def test_failing_builder_shows_the_failing_step(jkctl: Run) -> None:
    fake_builder(jkctl.bin, "docker", build_output=BUILDKIT_FAILURE, build_exit=1)
    result = jkctl(str(DATA / "with_channels.yml"), "--tag", IMAGE, "--register")
    assert result.returncode == 1
    assert "error: docker build failed at step 4/4: RUN PIP_NO_CACHE_DIR=1" in result.stderr
    assert "  | error    libmamba Could not solve for environment specs" in result.stderr
    assert "gdal >=99 does not exist" in result.stderr
    assert "(image-build-failed)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not jkctl.kernels.exists()
    # The context stays for a retry by hand, where the hint says it is.
    [context] = jkctl.tmp.iterdir()
    assert str(context) in result.stderr


def test_successful_build_with_register(jkctl: Run) -> None:
    log = fake_builder(jkctl.bin, "podman")
    result = jkctl(
        str(DATA / "with_channels.yml"),
        "--tag",
        IMAGE,
        "--push",
        "--register",
        "--cpu",
        "1:4",
        "--memory",
        "8Gi",
        "--gpu",
        "1",
        "--display-name",
        "Geo",
    )
    assert result.returncode == 0, result.stderr
    spec_dir = jkctl.kernels / "conda-geo"
    assert result.stdout.splitlines() == [str(spec_dir), IMAGE]
    assert f"build: podman build --tag {IMAGE}" in result.stderr
    assert "  step 6/9: RUN PIP_NO_CACHE_DIR=1 micromamba create" in result.stderr
    assert f"push: podman push {IMAGE}" in result.stderr
    assert f"built {IMAGE} and pushed it" in result.stderr
    assert "registered kernelspec conda-geo" in result.stderr
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["build", "push"]
    assert list(jkctl.tmp.iterdir()) == []  # the temporary context is gone after success

    spec = KernelSpecManager(kernel_dirs=[str(jkctl.kernels)]).get_kernel_spec("conda-geo")
    assert spec.argv == [
        "/opt/conda/envs/geo/bin/python",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    assert spec.display_name == "Geo"
    assert spec.language == "python"
    assert spec.metadata == {
        "jkctl": {
            "image": IMAGE,
            "resources": {
                "requests": {"cpu": "1", "memory": "8Gi"},
                "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"},
            },
        }
    }


def test_register_refuses_to_overwrite_before_building(jkctl: Run) -> None:
    log = fake_builder(jkctl.bin, "podman")
    assert jkctl(str(DATA / "plain.yml"), "--tag", IMAGE, "--register").returncode == 0
    result = jkctl(str(DATA / "plain.yml"), "--tag", IMAGE, "--register")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"error: a kernelspec named conda-stats already exists in {jkctl.kernels}."
    )
    assert len(log.read_text().splitlines()) == 1  # the second run never built

    forced = jkctl(str(DATA / "plain.yml"), "--tag", "r.example.com/s:2", "--register", "--force")
    assert forced.returncode == 0, forced.stderr
    written = json.loads((jkctl.kernels / "conda-stats" / "kernel.json").read_text())
    assert written["metadata"]["jkctl"]["image"] == "r.example.com/s:2"
    assert "was not pushed" in forced.stderr


def test_cluster_dry_run_prints_the_kubectl_commands(jkctl: Run, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    result = jkctl(
        str(DATA / "plain.yml"),
        *("--tag", IMAGE, "--push", "--builder", "cluster", "--registry-secret", "regcred"),
        *("-n", "geo", "--dry-run", "--context-dir", str(context)),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    job = re.search(r"create configmap (jkctl-build-stats-[0-9a-f]{6}) ", lines[0])
    assert job is not None
    assert lines[0] == (
        f"tar -czf - -C {context} . | kubectl -n geo create configmap {job[1]} "
        "--from-file=context.tar.gz=/dev/stdin"
    )
    assert lines[1] == "kubectl -n geo create -f - <<'EOF'"
    assert f"        - --destination={IMAGE}" in lines
    assert "    - --context=tar:///workspace/context/context.tar.gz" in result.stdout
    assert "secretName: regcred" in result.stdout
    assert lines[-2:] == ["EOF", f"kubectl -n geo logs --follow job/{job[1]}"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--registry-secret", "regcred"], "--registry-secret and --builder-image are for"),
        (["--builder", "cluster", "--register"], "--register with --builder cluster needs --push"),
    ],
)
def test_cluster_options_are_checked_first(jkctl: Run, args: list[str], message: str) -> None:
    result = jkctl(str(DATA / "plain.yml"), "--tag", IMAGE, "--dry-run", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {message}")


def test_help_has_an_example() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jkctl", "build-kernel-image", "conda-env", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "jkctl build-kernel-image conda-env environment.yml" in result.stdout
    for option in ("--tag", "--push", "--builder", "--register", "--dry-run", "--context-dir"):
        assert option in result.stdout
