from __future__ import annotations

import pytest

from jkctl.errors import BuilderUnavailable, ImageBuildError
from jkctl.images.buildlog import BuildStep, StepTracker, diagnose, failure_context
from tests.images.fakes import BUILDKIT_FAILURE, PODMAN_SUCCESS


def feed(text: str) -> tuple[StepTracker, list[BuildStep]]:
    tracker = StepTracker()
    opened = [step for line in text.splitlines() if (step := tracker.feed(line)) is not None]
    return tracker, opened


def test_podman_steps() -> None:
    tracker, opened = feed(PODMAN_SUCCESS)
    assert [step.number for step in opened] == list(range(1, 10))
    assert (
        opened[5].label() == 'step 6/9: RUN PIP_NO_CACHE_DIR=1 micromamba create --yes --name "geo"'
    )
    assert "  + ipykernel 6.29.5 conda-forge" in tracker.output_of(opened[5])


def test_docker_legacy_steps() -> None:
    tracker, opened = feed("Step 1/2 : FROM x\n ---> abc\nStep 2/2 : RUN make\nmake: *** boom\n")
    assert [step.label() for step in opened] == ["step 1/2: FROM x", "step 2/2: RUN make"]
    assert tracker.output_of(opened[1]) == ["make: *** boom"]


def test_buildkit_keeps_interleaved_steps_apart() -> None:
    tracker, opened = feed(BUILDKIT_FAILURE)
    assert [step.key for step in opened] == ["#0", "#1", "#5", "#6", "#7"]
    assert opened[0].number is None
    failed = tracker.failed_step()
    assert failed is not None and failed.key == "#7"
    assert (failed.number, failed.total) == (4, 4)
    output = tracker.output_of(failed)
    assert "    └─ gdal >=99 does not exist (perhaps a typo or a missing channel)." in output
    assert not any("unrelated-step-output" in line for line in output)
    assert tracker.output_of(opened[2]) == ["usermod: no changes to unrelated-step-output"]


def test_long_titles_are_shortened() -> None:
    step = BuildStep(key="1", title="RUN " + "x" * 200, number=1, total=2)
    assert len(step.label(40)) == len("step 1/2: ") + 40
    assert step.label(40).endswith("…")


def test_failure_carries_the_failing_steps_output() -> None:
    tracker, _ = feed(BUILDKIT_FAILURE)
    error = diagnose(
        builder="docker",
        phase="build",
        command="docker build ctx",
        returncode=1,
        tracker=tracker,
        image="r.example.com/geo:1",
        context_dir="/tmp/ctx",
    )
    assert type(error) is ImageBuildError
    assert error.message.startswith("docker build failed at step 4/4: RUN PIP_NO_CACHE_DIR=1")
    assert error.message.endswith("(exit code 1).")
    assert error.context is not None
    assert "gdal >=99 does not exist" in error.context
    assert "ERROR: failed to solve" in error.context  # the builder's own summary line
    assert "transferring dockerfile" not in error.context
    assert error.hint is not None and "/tmp/ctx" in error.hint and "docker build ctx" in error.hint


def test_only_the_last_lines_are_kept() -> None:
    tracker, _ = feed("STEP 1/1: RUN noisy\n" + "".join(f"line {n}\n" for n in range(100)))
    error = diagnose(
        builder="podman",
        phase="build",
        command="podman build ctx",
        returncode=2,
        tracker=tracker,
        image="geo:1",
        context_dir="/tmp/ctx",
    )
    assert error.context is not None
    assert "line 99" in error.context
    assert "line 69" not in error.context


def test_docker_without_engine() -> None:
    tracker, _ = feed(
        "DEPRECATED: The legacy builder is deprecated and will be removed in a future release.\n"
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
        "Is the docker daemon running?\n"
    )
    error = diagnose(
        builder="docker",
        phase="build",
        command="docker build ctx",
        returncode=1,
        tracker=tracker,
        image="geo:1",
        context_dir="/tmp/ctx",
        other_builders=("podman",),
    )
    assert isinstance(error, BuilderUnavailable)
    assert error.message == "docker is installed but its engine is not running."
    assert error.hint is not None and error.hint.endswith("or build with --builder podman")
    assert error.context is not None and "Cannot connect to the Docker daemon" in error.context


def test_push_refused() -> None:
    tracker, _ = feed("unauthorized: authentication required\n")
    error = diagnose(
        builder="podman",
        phase="push",
        command="podman push registry.example.com/team/geo:1",
        returncode=125,
        tracker=tracker,
        image="registry.example.com/team/geo:1",
        context_dir="/tmp/ctx",
    )
    assert error.message == (
        "the registry refused to let podman push registry.example.com/team/geo:1."
    )
    assert error.hint is not None and "`podman login registry.example.com`" in error.hint


KANIKO_FAILURE = """\
level=info msg="Retrieving image manifest docker.io/mambaorg/micromamba:2.0.5"
level=info msg="ARG JKCTL_ENV_NAME=geo"
level=info msg="USER root"
level=info msg="RUN usermod --uid 1000 \\"$MAMBA_USER\\""
level=info msg="Running: [/bin/sh -c usermod --uid 1000 \\"$MAMBA_USER\\"]"
usermod: unrelated output
level=info msg="Taking snapshot of full filesystem..."
level=info msg="RUN micromamba create --yes --name geo"
error    libmamba Could not solve for environment specs
level=error msg="error building image: failed to execute command: exit status 1"
"""


@pytest.mark.parametrize("colored", [False, True])
def test_kaniko_steps_are_counted_and_its_failure_is_the_last_step(colored: bool) -> None:
    lines = KANIKO_FAILURE.splitlines()
    if colored:  # --log-format=color: `INFO[0003] message`, with ANSI colours
        lines = [
            line[:-1]  # the closing quote
            .replace('level=info msg="', "\x1b[36mINFO\x1b[0m[0003] ")
            .replace('level=error msg="', "\x1b[31mERRO\x1b[0m[0009] ")
            .replace('\\"', '"')
            if "msg=" in line
            else line
            for line in lines
        ]
    tracker = StepTracker(expected_steps=4)
    steps = [step for line in lines if (step := tracker.feed(line)) is not None]
    assert [step.label() for step in steps] == [
        "step 1/4: ARG JKCTL_ENV_NAME=geo",
        "step 2/4: USER root",
        'step 3/4: RUN usermod --uid 1000 "$MAMBA_USER"',
        "step 4/4: RUN micromamba create --yes --name geo",
    ]
    failed = tracker.failed_step()
    assert failed is not None and failed.number == 4
    assert tracker.output_of(failed) == [
        "error    libmamba Could not solve for environment specs",
        "error building image: failed to execute command: exit status 1",
    ]
    where, context = failure_context(tracker, command="kubectl logs job/x")
    assert where == " at step 4/4: RUN micromamba create --yes --name geo"
    assert context.count("error building image") == 1


def test_kaniko_steps_beyond_the_expected_count_lose_their_total() -> None:
    tracker = StepTracker(expected_steps=1)
    tracker.feed('level=info msg="USER root"')
    step = tracker.feed('level=info msg="WORKDIR /home"')
    assert step is not None and step.label() == "step 2: WORKDIR /home"
