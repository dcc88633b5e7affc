"""Image builders: the interface every builder implements, and choosing one.

A builder takes a :class:`BuildRequest` (a written build context, the image
reference, whether to push) and either describes what it would run
(``--dry-run``) or builds, reporting progress through a :class:`BuildProgress`
the caller supplies (the CLI draws it with rich; tests record it). Failures
are :class:`~jkctl.errors.ImageBuildError`\\ s carrying the failing step's
output.

Local builders (docker, podman, buildah; :mod:`jkctl.images.local`) are
found on ``PATH`` in that order unless one is named. ``cluster`` is the
in-cluster builder (:mod:`jkctl.images.cluster`: a Kaniko Job that pushes with
a registry Secret), which implements the same :class:`Builder` protocol: its
``describe`` prints the kubectl commands, its ``build`` streams the Job pod's
log lines through a :class:`~jkctl.images.buildlog.StepTracker` into the same
progress. It needs a cluster to talk to, so the caller builds it and hands it
to :func:`select_builder`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from jkctl.errors import BuilderNotFound, UsageError
from jkctl.images.buildlog import BuildStep

#: Local builders, in the order they are looked for.
LOCAL_BUILDERS = ("docker", "podman", "buildah")
CLUSTER_BUILDER = "cluster"
BUILDER_NAMES = (*LOCAL_BUILDERS, CLUSTER_BUILDER)


@dataclass(frozen=True, kw_only=True)
class BuildRequest:
    """What to build: a context written by :func:`jkctl.images.context.write_build_context`."""

    context_dir: Path
    dockerfile: Path
    image: str
    push: bool = False
    #: `linux/amd64` and the like; None builds for the builder's own platform.
    platform: str | None = None


class BuildProgress(Protocol):
    """Receives a build's progress as it happens."""

    def phase(self, name: str, command: str) -> None:
        """A phase (``build``, ``push``) starts, running `command` (shell-quoted)."""

    def step(self, step: BuildStep) -> None:
        """The builder opened a step (``step 3/5: RUN ...``)."""

    def output(self, line: str) -> None:
        """One line of the builder's output."""


class Builder(Protocol):
    """Builds (and pushes) an image from a build context."""

    @property
    def name(self) -> str: ...

    def describe(self, request: BuildRequest) -> str:
        """What `build` would run, copy-pasteable, one command per line."""
        ...

    def build(self, request: BuildRequest, progress: BuildProgress) -> None:
        """Build, then push when asked; raise ImageBuildError on failure."""
        ...


def installed_builders(env: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The local builders found on env's PATH, in preference order."""
    return tuple(name for name in LOCAL_BUILDERS if _which(name, env))


def select_builder(
    name: str | None,
    *,
    env: Mapping[str, str] = os.environ,
    describe_only: bool = False,
    cluster: Builder | None = None,
) -> Builder:
    """The builder called `name`, or the first installed one; `cluster` for ``cluster``.

    With `describe_only` (``--dry-run``) a builder that is not installed is
    still returned, and docker stands in when none is: describing a command
    needs no executable.
    """
    from jkctl.images.local import LocalBuilder

    if name == CLUSTER_BUILDER:
        if cluster is None:
            raise UsageError(
                "--builder cluster needs a cluster to build in.",
                hint="check that a kubeconfig is set up (KUBECONFIG or --kubeconfig)",
            )
        return cluster
    if name is not None and name not in LOCAL_BUILDERS:
        raise UsageError(
            f"--builder {name!r} is not a builder jkctl knows.",
            hint=f"choose one of {', '.join(BUILDER_NAMES)}",
        )
    candidates = (name,) if name is not None else LOCAL_BUILDERS
    for candidate in candidates:
        executable = _which(candidate, env)
        if executable is not None:
            return LocalBuilder(builder=candidate, executable=executable, env=env)
    if describe_only:
        fallback = name or LOCAL_BUILDERS[0]
        return LocalBuilder(builder=fallback, executable=fallback, env=env)
    if name is not None:
        raise BuilderNotFound(
            f"{name} is not installed (it is not on PATH), so it cannot build the image.",
            hint=_other_builders_hint(name, env),
        )
    raise BuilderNotFound(
        "no image builder is installed: none of docker, podman or buildah is on PATH.",
        hint="install one of them, or run with --dry-run and build the written context "
        "on a machine that has one",
    )


def _other_builders_hint(name: str, env: Mapping[str, str]) -> str:
    others = [other for other in installed_builders(env) if other != name]
    if others:
        return f"install {name}, or build with --builder {others[0]}"
    return f"install {name}, or run with --dry-run and build the written context elsewhere"


def _which(name: str, env: Mapping[str, str]) -> str | None:
    return shutil.which(name, path=env.get("PATH", os.defpath))
