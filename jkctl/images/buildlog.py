"""Reading a builder's output: which step it is on, and what went wrong when it fails.

Builders print their progress in three dialects, all plain text when their
output is not a terminal:

- BuildKit (``docker build`` with buildx, ``BUILDKIT_PROGRESS=plain``):
  ``#7 [3/5] RUN micromamba create ...`` opens step 7, later lines of that step
  start with ``#7 `` (``#7 1.234 some output``, ``#7 DONE 3.1s``,
  ``#7 ERROR: ...``), and steps may interleave;
- docker's legacy builder: ``Step 3/5 : RUN ...`` then the step's output;
- podman and buildah: ``STEP 3/5: RUN ...`` then the step's output;
- Kaniko (the cluster builder, ``--log-format=text``): ``level=info msg="RUN ..."``
  opens a step for each Dockerfile instruction, its other ``level=`` lines are
  its status, and the step's own output comes as plain lines. Kaniko does not
  number steps, so the tracker counts them (out of ``expected_steps`` when
  the caller counted the Dockerfile's instructions).

:class:`StepTracker` follows that, keeping the last lines of every step, so
that a failed build can be reported as the failing step and its own output
rather than the last screenful of interleaved noise. :func:`diagnose` turns a
failure into the most specific :class:`~jkctl.errors.ImageBuildError`,
recognising the failures users hit before any step runs (an engine that is not
running, a missing buildx plugin, a registry refusing a push).

Nothing here runs a process; :mod:`jkctl.images.local` feeds it lines.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from jkctl.errors import BuilderUnavailable, ImageBuildError

#: How many lines of the failing step an error carries.
TAIL_LINES = 30

_BUILDKIT_LINE = re.compile(r"^#(\d+) (.*)$")
_BUILDKIT_TIMESTAMP = re.compile(r"^\d+\.\d+ ")
_BUILDKIT_STATUS = re.compile(r"^(?:DONE \S+|CACHED|ERROR\b.*|CANCELED.*)$")
_NUMBERED = re.compile(r"\[(?:\S+ )?(\d+)/(\d+)\]")
_DOCKER_LEGACY = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_PODMAN = re.compile(r"^STEP (\d+)/(\d+): (.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# logrus, as Kaniko writes it: `level=info msg="..."` (text) or `INFO[0003] ...` (color).
_KANIKO_TEXT = re.compile(r'^(?:time="[^"]*" )?level=(\w+) msg="((?:[^"\\]|\\.)*)"')
_KANIKO_COLOR = re.compile(r"^(INFO|WARN|ERRO|FATA|DEBU)\[\d+\] (.*)$")
INSTRUCTIONS = (
    *("FROM", "ARG", "RUN", "COPY", "ADD", "ENV", "USER", "WORKDIR", "LABEL", "SHELL"),
    *("ENTRYPOINT", "CMD", "EXPOSE", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD"),
)
_INSTRUCTION = re.compile(rf"^(?:{'|'.join(INSTRUCTIONS)})\b", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class BuildStep:
    """One step of a build, as the builder announced it."""

    key: str
    title: str
    number: int | None = None
    total: int | None = None

    def label(self, width: int = 72) -> str:
        """`step 3/5: RUN micromamba create ...`, shortened to about `width` characters."""
        title = self.title if len(self.title) <= width else self.title[: width - 1] + "…"
        if self.number is not None and self.total is not None:
            return f"step {self.number}/{self.total}: {title}"
        if self.number is not None:
            return f"step {self.number}: {title}"
        return title


class StepTracker:
    """Follows builder output line by line; remembers each step's last lines."""

    def __init__(self, *, tail_lines: int = TAIL_LINES, expected_steps: int | None = None) -> None:
        self._tail_lines = tail_lines
        self._expected_steps = expected_steps
        self._counted = 0
        self._steps: dict[str, BuildStep] = {}
        self._output: dict[str, deque[str]] = {}
        self._failed: str | None = None
        self.current: BuildStep | None = None
        self.tail: deque[str] = deque(maxlen=tail_lines)

    def feed(self, line: str) -> BuildStep | None:
        """Take one line of output; return the step it opens, if it opens one."""
        line = _ANSI.sub("", line)
        self.tail.append(line)
        kaniko = _KANIKO_TEXT.match(line) or _KANIKO_COLOR.match(line)
        if kaniko:
            message = kaniko.group(2).replace('\\"', '"').replace("\\\\", "\\")
            self.tail[-1] = message  # what a person reads, without logrus' framing
            return self._feed_kaniko(kaniko.group(1).lower(), message)
        buildkit = _BUILDKIT_LINE.match(line)
        if buildkit:
            return self._feed_buildkit(buildkit.group(1), buildkit.group(2))
        sequential = _DOCKER_LEGACY.match(line) or _PODMAN.match(line)
        if sequential:
            number, total, title = sequential.groups()
            return self._open(
                BuildStep(key=number, title=title, number=int(number), total=int(total))
            )
        if self.current is not None:
            self._output[self.current.key].append(line)
        return None

    def _feed_buildkit(self, key: str, rest: str) -> BuildStep | None:
        key = f"#{key}"
        if key not in self._steps:
            numbered = _NUMBERED.match(rest)
            if numbered is None:  # BuildKit's own work: "[internal] load build definition"
                return self._open(BuildStep(key=key, title=rest))
            return self._open(
                BuildStep(
                    key=key,
                    title=rest[numbered.end() :].strip(),
                    number=int(numbered[1]),
                    total=int(numbered[2]),
                )
            )
        if rest.startswith("ERROR"):
            self._failed = key
        if not _BUILDKIT_STATUS.match(rest):
            self._output[key].append(_BUILDKIT_TIMESTAMP.sub("", rest, count=1))
        return None

    def _feed_kaniko(self, level: str, message: str) -> BuildStep | None:
        if level == "info" and _INSTRUCTION.match(message):
            self._counted += 1
            total = self._expected_steps
            return self._open(
                BuildStep(
                    key=f"kaniko-{self._counted}",
                    title=message,
                    number=self._counted,
                    total=total if total is not None and total >= self._counted else None,
                )
            )
        if self.current is not None:
            self._output[self.current.key].append(message)
        return None

    def _open(self, step: BuildStep) -> BuildStep:
        self._steps[step.key] = step
        self._output[step.key] = deque(maxlen=self._tail_lines)
        self.current = step
        return step

    def failed_step(self) -> BuildStep | None:
        """The step that failed: the one BuildKit marked ERROR, else the last one opened."""
        if self._failed is not None:
            return self._steps[self._failed]
        return self.current

    def output_of(self, step: BuildStep) -> list[str]:
        return list(self._output.get(step.key, ()))


# (pattern, message, hint) for failures that are about the builder, not the build.
_UNAVAILABLE: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(r"Cannot connect to the Docker daemon|Is the docker daemon running", re.I),
        "{builder} is installed but its engine is not running.",
        "start Docker (Docker Desktop, or `sudo systemctl start docker`){others}",
    ),
    (
        re.compile(r"permission denied while trying to connect to the Docker daemon", re.I),
        "{builder} is installed but this user may not use its engine.",
        "add yourself to the docker group and log in again{others}",
    ),
    (
        re.compile(r"Cannot connect to Podman|unable to connect to Podman", re.I),
        "{builder} is installed but cannot reach its service or machine.",
        "start it with `podman machine start` (macOS, Windows){others}",
    ),
    (
        re.compile(r"buildx component is missing|BuildKit is enabled but the buildx", re.I),
        "{builder} cannot build: BuildKit is enabled but the buildx plugin is missing.",
        "install the docker-buildx plugin, or unset DOCKER_BUILDKIT{others}",
    ),
)
_PUSH_REFUSED = re.compile(
    r"unauthorized|authentication required|denied:|insufficient_scope|requested access", re.I
)


def diagnose(
    *,
    builder: str,
    phase: str,
    command: str,
    returncode: int,
    tracker: StepTracker,
    image: str,
    context_dir: str,
    other_builders: tuple[str, ...] = (),
) -> ImageBuildError:
    """The error for a builder command that exited with `returncode`."""
    others = (
        f", or build with {' or '.join(f'--builder {name}' for name in other_builders)}"
        if other_builders
        else ""
    )
    output = "\n".join(tracker.tail)
    for pattern, message, hint in _UNAVAILABLE:
        found = pattern.search(output)
        if found:
            line = next(line for line in tracker.tail if pattern.search(line))
            return BuilderUnavailable(
                message.format(builder=builder),
                hint=hint.format(others=others),
                context=f"{builder} said: {line.strip()}",
            )
    if phase == "push" and _PUSH_REFUSED.search(output):
        registry = image.split("/", 1)[0] if "/" in image else "docker.io"
        return ImageBuildError(
            f"the registry refused to let {builder} push {image}.",
            hint=f"log in with `{builder} login {registry}` and check that you may push there, "
            "then run again with --push",
            context=_indent(tracker.tail),
        )

    where, context = failure_context(tracker, command=command)
    retry = f"the build context is kept in {context_dir}, and `{command}` retries by hand"
    return ImageBuildError(
        f"{builder} {phase} failed{where} (exit code {returncode}).",
        hint=f"fix what the output shows and run again; {retry}"
        if phase == "push"
        else f"fix the environment file (or the Dockerfile) and run again; {retry}",
        context=context,
    )


def failure_context(tracker: StepTracker, *, command: str) -> tuple[str, str]:
    """For a failed build: ` at step 3/5: RUN ...` and the failing step's own last lines."""
    step = tracker.failed_step()
    lines = tracker.output_of(step) if step is not None else []
    if not lines:
        lines = list(tracker.tail)
    elif tracker.tail and tracker.tail[-1] not in lines:
        lines.append(tracker.tail[-1])  # the builder's own summary ("ERROR: failed to solve")
    where = f" at {step.label(48)}" if step is not None else ""
    heading = f"output of {step.label()}:" if step is not None else f"last output of `{command}`:"
    return where, f"{heading}\n{_indent(lines[-TAIL_LINES:])}"


def _indent(lines: Iterable[str]) -> str:
    return "\n".join(f"  | {line}" for line in lines)
