"""Local builders: docker, podman and buildah, run as subprocesses with their output streamed.

Each builder is a pair of command lines, build then (with ``--push``) push,
run with stdout and stderr merged and read line by line: every line goes to the
caller's :class:`~jkctl.images.builders.BuildProgress` and through a
:class:`~jkctl.images.buildlog.StepTracker`, so progress shows the current
step and a failure reports that step's own output. docker gets
``BUILDKIT_PROGRESS=plain`` in its environment rather than ``--progress=plain``
on its command line: the legacy builder rejects the flag, but ignores the
variable.

What the builders print when they cannot work at all (docker installed with no
engine running says "Cannot connect to the Docker daemon ... Is the docker
daemon running?" and exits 1) is recognised by
:func:`~jkctl.images.buildlog.diagnose`.

This module does not write build contexts or decide which builder to use.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from jkctl.errors import BuilderNotFound
from jkctl.images.builders import BuildProgress, BuildRequest, installed_builders
from jkctl.images.buildlog import StepTracker, diagnose

logger = logging.getLogger(__name__)

#: Seconds a builder gets to stop after SIGTERM when the build is interrupted.
STOP_GRACE = 10.0


@dataclass(frozen=True, kw_only=True)
class BuildCommand:
    """One command line of a build, with the environment variables it adds."""

    phase: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    def shell(self) -> str:
        """The command as a POSIX shell line, with its variables in front."""
        assignments = [f"{key}={shlex.quote(value)}" for key, value in self.env.items()]
        return " ".join([*assignments, shlex.join(self.argv)])


@dataclass(frozen=True, kw_only=True)
class LocalBuilder:
    """docker, podman or buildah on this machine."""

    builder: str
    #: The resolved executable; the commands shown to users say just `builder`.
    executable: str
    env: Mapping[str, str]

    @property
    def name(self) -> str:
        return self.builder

    def commands(self, request: BuildRequest) -> tuple[BuildCommand, ...]:
        build_verb = ("bud",) if self.builder == "buildah" else ("build",)
        platform = ("--platform", request.platform) if request.platform else ()
        build = BuildCommand(
            phase="build",
            argv=(
                self.builder,
                *build_verb,
                "--tag",
                request.image,
                "--file",
                str(request.dockerfile),
                *platform,
                str(request.context_dir),
            ),
            env={"BUILDKIT_PROGRESS": "plain"} if self.builder == "docker" else {},
        )
        if not request.push:
            return (build,)
        return (build, BuildCommand(phase="push", argv=(self.builder, "push", request.image)))

    def describe(self, request: BuildRequest) -> str:
        return "\n".join(command.shell() for command in self.commands(request))

    def build(self, request: BuildRequest, progress: BuildProgress) -> None:
        for command in self.commands(request):
            self._run(command, request, progress)

    def _run(self, command: BuildCommand, request: BuildRequest, progress: BuildProgress) -> None:
        shown = command.shell()
        progress.phase(command.phase, shown)
        tracker = StepTracker()
        argv = [self.executable, *command.argv[1:]]
        logger.debug("running %s", shown)
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**self.env, **command.env},
                cwd=request.context_dir,
                text=True,
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            raise BuilderNotFound(
                f"{self.builder} could not be started: {exc.strerror or exc}.",
                hint=f"check that {self.executable} is an executable {self.builder}, or choose "
                "another with --builder",
            ) from exc
        try:
            assert process.stdout is not None
            for raw in process.stdout:
                # Progress bars redraw with carriage returns; keep what was drawn last.
                line = raw.rstrip("\r\n").rsplit("\r", 1)[-1]
                step = tracker.feed(line)
                if step is not None:
                    progress.step(step)
                progress.output(line)
            returncode = process.wait()
        finally:
            _stop(process)
        if returncode != 0:
            raise diagnose(
                builder=self.builder,
                phase=command.phase,
                command=shown,
                returncode=returncode,
                tracker=tracker,
                image=request.image,
                context_dir=str(request.context_dir),
                other_builders=tuple(
                    name for name in installed_builders(self.env) if name != self.builder
                ),
            )


def _stop(process: subprocess.Popen[str]) -> None:
    """End the builder if it is still running (the user interrupted), and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
