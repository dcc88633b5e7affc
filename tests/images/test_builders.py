"""Choosing a builder and running it, against fake builder executables on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from jkctl.errors import BuilderNotFound, BuilderUnavailable, ImageBuildError, UsageError
from jkctl.images.builders import BuildRequest, select_builder
from jkctl.images.buildlog import BuildStep
from jkctl.images.cluster import ClusterBuilder
from jkctl.images.local import LocalBuilder
from tests.images.fakes import (
    BUILDKIT_FAILURE,
    PUSH_REFUSED,
    fake_builder,
    fake_hanging_builder,
    fake_path,
)

IMAGE = "registry.example.com/team/geo:1"


class Recorder:
    """A BuildProgress that remembers what it was told."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, str]] = []
        self.steps: list[BuildStep] = []
        self.lines: list[str] = []

    def phase(self, name: str, command: str) -> None:
        self.phases.append((name, command))

    def step(self, step: BuildStep) -> None:
        self.steps.append(step)

    def output(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path


@pytest.fixture
def request_(tmp_path: Path) -> BuildRequest:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    return BuildRequest(context_dir=context, dockerfile=context / "Dockerfile", image=IMAGE)


def env_for(bin_dir: Path) -> dict[str, str]:
    return {"PATH": fake_path(bin_dir), "HOME": str(bin_dir.parent)}


def test_detection_order_is_docker_podman_buildah(bin_dir: Path) -> None:
    for name in ("buildah", "podman", "docker"):
        fake_builder(bin_dir, name)
        assert select_builder(None, env=env_for(bin_dir)).name == name


def test_named_builder_wins(bin_dir: Path) -> None:
    fake_builder(bin_dir, "docker")
    fake_builder(bin_dir, "buildah")
    assert select_builder("buildah", env=env_for(bin_dir)).name == "buildah"


def test_no_builder_installed(bin_dir: Path) -> None:
    with pytest.raises(BuilderNotFound) as caught:
        select_builder(None, env=env_for(bin_dir))
    assert caught.value.message == (
        "no image builder is installed: none of docker, podman or buildah is on PATH."
    )
    assert caught.value.hint is not None and "--dry-run" in caught.value.hint


def test_named_builder_missing_suggests_an_installed_one(bin_dir: Path) -> None:
    fake_builder(bin_dir, "buildah")
    with pytest.raises(BuilderNotFound) as caught:
        select_builder("podman", env=env_for(bin_dir))
    assert caught.value.message == (
        "podman is not installed (it is not on PATH), so it cannot build the image."
    )
    assert caught.value.hint == "install podman, or build with --builder buildah"


def test_cluster_builder_is_the_one_handed_in(bin_dir: Path) -> None:
    cluster = ClusterBuilder(login=None)
    assert select_builder("cluster", env=env_for(bin_dir), cluster=cluster) is cluster
    with pytest.raises(UsageError, match="--builder cluster needs a cluster to build in"):
        select_builder("cluster", env=env_for(bin_dir))


def test_unknown_builder(bin_dir: Path) -> None:
    with pytest.raises(UsageError):
        select_builder("kaniko", env=env_for(bin_dir))


def test_dry_run_describes_docker_without_any_builder(
    bin_dir: Path, request_: BuildRequest
) -> None:
    builder = select_builder(None, env=env_for(bin_dir), describe_only=True)
    assert builder.describe(request_) == (
        f"BUILDKIT_PROGRESS=plain docker build --tag {IMAGE} "
        f"--file {request_.dockerfile} {request_.context_dir}"
    )


@pytest.mark.parametrize(
    ("name", "build", "push"),
    [
        ("docker", "BUILDKIT_PROGRESS=plain docker build", "docker push"),
        ("podman", "podman build", "podman push"),
        ("buildah", "buildah bud", "buildah push"),
    ],
)
def test_command_lines(
    bin_dir: Path, request_: BuildRequest, name: str, build: str, push: str
) -> None:
    fake_builder(bin_dir, name)
    builder = select_builder(name, env=env_for(bin_dir))
    request = BuildRequest(
        context_dir=request_.context_dir,
        dockerfile=request_.dockerfile,
        image=IMAGE,
        push=True,
        platform="linux/amd64",
    )
    assert builder.describe(request).splitlines() == [
        f"{build} --tag {IMAGE} --file {request.dockerfile} --platform linux/amd64 "
        f"{request.context_dir}",
        f"{push} {IMAGE}",
    ]


def test_successful_build_and_push_report_progress(bin_dir: Path, request_: BuildRequest) -> None:
    log = fake_builder(bin_dir, "podman")
    recorder = Recorder()
    builder = select_builder(None, env=env_for(bin_dir))
    builder.build(
        BuildRequest(
            context_dir=request_.context_dir,
            dockerfile=request_.dockerfile,
            image=IMAGE,
            push=True,
        ),
        recorder,
    )
    assert [phase for phase, _ in recorder.phases] == ["build", "push"]
    assert [step.number for step in recorder.steps] == list(range(1, 10))
    assert f"Successfully tagged {IMAGE}" in recorder.lines
    assert "5f70bf18a086: Pushed" in recorder.lines
    assert log.read_text().splitlines() == [
        f"build --tag {IMAGE} --file {request_.dockerfile} {request_.context_dir} "
        "BUILDKIT_PROGRESS=",
        f"push {IMAGE} BUILDKIT_PROGRESS=",
    ]


def test_docker_gets_plain_buildkit_progress(bin_dir: Path, request_: BuildRequest) -> None:
    log = fake_builder(bin_dir, "docker")
    select_builder("docker", env=env_for(bin_dir)).build(request_, Recorder())
    assert log.read_text().rstrip().endswith("BUILDKIT_PROGRESS=plain")


def test_failing_build_reports_the_failing_step(bin_dir: Path, request_: BuildRequest) -> None:
    fake_builder(bin_dir, "docker", build_output=BUILDKIT_FAILURE, build_exit=1)
    recorder = Recorder()
    with pytest.raises(ImageBuildError) as caught:
        select_builder(None, env=env_for(bin_dir)).build(request_, recorder)
    error = caught.value
    assert error.message.startswith("docker build failed at step 4/4: RUN PIP_NO_CACHE_DIR=1")
    assert error.context is not None and "gdal >=99 does not exist" in error.context
    assert error.hint is not None and str(request_.context_dir) in error.hint
    assert [step.key for step in recorder.steps][-1] == "#7"


def test_failing_push_after_a_good_build(bin_dir: Path, request_: BuildRequest) -> None:
    fake_builder(bin_dir, "podman", push_output=PUSH_REFUSED, push_exit=125)
    request = BuildRequest(
        context_dir=request_.context_dir, dockerfile=request_.dockerfile, image=IMAGE, push=True
    )
    with pytest.raises(ImageBuildError) as caught:
        select_builder(None, env=env_for(bin_dir)).build(request, Recorder())
    assert caught.value.message == f"the registry refused to let podman push {IMAGE}."


def test_interrupted_build_stops_the_builder(bin_dir: Path, request_: BuildRequest) -> None:
    pid_file = fake_hanging_builder(bin_dir, "buildah")

    class Interrupting(Recorder):
        def step(self, step: BuildStep) -> None:
            raise KeyboardInterrupt(step.label())

    with pytest.raises(KeyboardInterrupt):
        select_builder(None, env=env_for(bin_dir)).build(request_, Interrupting())
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_an_executable_that_cannot_start(bin_dir: Path, request_: BuildRequest) -> None:
    builder = LocalBuilder(builder="podman", executable=str(bin_dir / "gone"), env={})
    with pytest.raises(BuilderNotFound) as caught:
        builder.build(request_, Recorder())
    assert caught.value.message.startswith("podman could not be started:")


def test_real_docker_client_without_engine(request_: BuildRequest) -> None:
    """The docker CLI installed here has no engine: it must read as that, not as a build error."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client installed")
    if subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0:
        pytest.skip("docker's engine is running; this test needs a client without one")
    builder = select_builder("docker", env=dict(os.environ))
    with pytest.raises(BuilderUnavailable) as caught:
        builder.build(request_, Recorder())
    assert caught.value.message == "docker is installed but its engine is not running."
    assert caught.value.context is not None
    assert "Cannot connect to the Docker daemon" in caught.value.context
