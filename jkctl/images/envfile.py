"""Conda environment inputs for `build-kernel-image conda-env`: reading and validating them.

A user brings one of two formats, and both become a :class:`CondaEnvironment`:

- an ``environment.yml``: ``name``, ``channels``, ``dependencies`` (conda match
  specs plus an optional ``pip:`` sub-list);
- an explicit spec or lock file: ``@EXPLICIT`` followed by one package URL per
  line (``conda list --explicit``, ``conda-lock render --kind explicit``).

Everything the image build would trip over later is checked here, up front, and
reported as an :class:`~jkctl.errors.EnvironmentSpecError` that names the file,
the field (``dependencies[3].pip[0]``) and what is allowed: a missing name, no
dependencies, a malformed pip section, channel syntax the builder will not
understand, a lock file made for another platform.

This module does not solve, download or rewrite environments: adding ipykernel
and writing the build context is :mod:`jkctl.images.context`'s job, exporting a
local environment :mod:`jkctl.images.export`'s.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import yaml

from jkctl.errors import EnvironmentSpecError

#: Environment names end up in a path, a Docker build ARG, the kernelspec name
#: ``conda-NAME`` and a Kubernetes label value (at most 63 characters, starting
#: and ending alphanumeric), so they are held to the strictest of those.
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,55}[A-Za-z0-9])?$")

_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CHANNEL_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/label/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PACKAGE_NAME = re.compile(r"^(?:[^\s:]+::)?([A-Za-z0-9_][A-Za-z0-9_.+-]*)")
_PLATFORM_LINE = re.compile(r"^#\s*platform:\s*(\S+)")
_PACKAGE_SUFFIXES = (".conda", ".tar.bz2")

CHANNELS_ALLOWED = (
    "a channel name (conda-forge), a label (conda-forge/label/rc), "
    "an https:// URL or a file:// path"
)

# pip options that point at files on this machine, which the image build
# cannot see: the build context holds only the environment file.
_PIP_LOCAL_OPTIONS = ("-r", "--requirement", "-c", "--constraint", "-e", "--editable")
_PIP_LOCAL_PREFIXES = (".", "/", "~", "file:")


class SpecKind(enum.Enum):
    """The two input formats, named after the file each one is written to in the context."""

    YAML = "environment.yml"
    EXPLICIT = "environment.txt"


@dataclass(frozen=True, kw_only=True)
class CondaEnvironment:
    """A validated conda environment, ready to be written into a build context."""

    name: str
    #: Where it came from, as users would name it: a path, or the export command.
    source: str
    kind: SpecKind
    channels: tuple[str, ...] = ()
    #: Conda match specs, verbatim (``numpy>=1.26``, ``conda-forge::gdal``).
    dependencies: tuple[str, ...] = ()
    #: The ``pip:`` sub-list, verbatim; None when the file has none.
    pip: tuple[str, ...] | None = None
    #: Explicit specs only: the file's text, kept byte for byte, and its package URLs.
    explicit_text: str = ""
    package_urls: tuple[str, ...] = ()
    #: Other top-level keys of an environment.yml (``variables``), kept verbatim.
    extra: Mapping[str, object] = field(default_factory=dict)
    #: Things the user should know about how the environment was read.
    notes: tuple[str, ...] = ()

    def has_package(self, package: str) -> bool:
        """Whether a conda dependency, pip requirement or locked URL installs `package`."""
        wanted = package.lower()
        if self.kind is SpecKind.EXPLICIT:
            return any(_url_package_name(url) == wanted for url in self.package_urls)
        names = {package_name(spec) for spec in self.dependencies}
        names |= {package_name(req).replace("_", "-") for req in self.pip or () if req[:1] != "-"}
        return wanted in names


def package_name(spec: str) -> str:
    """The package a conda match spec or pip requirement names, lower-cased."""
    found = _PACKAGE_NAME.match(spec.strip())
    return found.group(1).lower() if found else ""


def validate_env_name(name: str, *, source: str, field_name: str) -> str:
    """Check an environment name (from a file's `name` or from --name)."""
    if name == "base":
        raise EnvironmentSpecError(
            f"{source}: `{field_name}` is 'base', the name of micromamba's root environment, "
            "which the image already has.",
            hint="choose another name with --name, for example --name kernel",
        )
    if not ENV_NAME_PATTERN.match(name):
        raise EnvironmentSpecError(
            f"{source}: `{field_name}` {name!r} cannot name a kernel image environment.",
            hint="use 1-57 letters, digits, '.', '_' or '-', starting and ending with a letter "
            "or digit (it becomes the kernelspec conda-NAME and a Kubernetes label)",
        )
    return name


def load_environment_file(path: Path, *, name: str | None = None) -> CondaEnvironment:
    """Read an environment.yml or an explicit spec file; `name` (--name) overrides its name."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise EnvironmentSpecError(
            f"the environment file {path} does not exist.",
            hint="pass the path of an environment.yml or explicit spec file, "
            "or --name ENV to export a local environment",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvironmentSpecError(
            f"the environment file {path} cannot be read: {exc}.",
            hint="pass a UTF-8 text file: an environment.yml or an @EXPLICIT spec",
        ) from exc
    return parse_environment(text, source=str(path), name=name)


def parse_environment(text: str, *, source: str, name: str | None = None) -> CondaEnvironment:
    """Parse either format from text; `source` names it in errors."""
    if _first_statement(text) == "@EXPLICIT":
        return _parse_explicit(text, source=source, name=name)
    return _parse_yaml(text, source=source, name=name)


def _first_statement(text: str) -> str:
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            return line
    return ""


# -- environment.yml -------------------------------------------------------------------------


def _parse_yaml(text: str, *, source: str, name: str | None) -> CondaEnvironment:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise EnvironmentSpecError(
            f"{source} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}.",
            hint="an environment file is either YAML with name, channels and dependencies, "
            "or an explicit spec whose first line is @EXPLICIT",
        ) from exc
    if not isinstance(document, dict):
        raise EnvironmentSpecError(
            f"{source} is neither an environment.yml nor an explicit spec file.",
            hint="an environment.yml is a YAML mapping with name, channels and dependencies; "
            "an explicit spec starts with an @EXPLICIT line",
        )
    if {"version", "metadata", "package"} <= document.keys():
        raise EnvironmentSpecError(
            f"{source} is a conda-lock lock file, which micromamba cannot create from directly.",
            hint=f"render it first: conda-lock render --kind explicit --platform linux-64 {source}",
        )

    env_name = _yaml_name(document, source=source, override=name)
    channels = _yaml_channels(document.get("channels"), source=source)
    dependencies, pip = _yaml_dependencies(document.get("dependencies"), source=source)
    extra = {
        key: value
        for key, value in document.items()
        if key not in {"name", "channels", "dependencies", "prefix"}
    }
    return CondaEnvironment(
        name=env_name,
        source=source,
        kind=SpecKind.YAML,
        channels=channels,
        dependencies=dependencies,
        pip=pip,
        extra=extra,
    )


def _yaml_name(document: Mapping[str, object], *, source: str, override: str | None) -> str:
    if override is not None:
        return validate_env_name(override, source=source, field_name="--name")
    name = document.get("name")
    if name is None or name == "":
        raise EnvironmentSpecError(
            f"{source} has no `name` and no --name was given.",
            hint=f"add `name: myenv` to {source}, or pass --name myenv",
        )
    if not isinstance(name, str):
        raise EnvironmentSpecError(
            f"{source}: `name` is {name!r}, not a string.",
            hint="quote it, for example name: 'geo'",
        )
    return validate_env_name(name, source=source, field_name="name")


def _yaml_channels(channels: object, *, source: str) -> tuple[str, ...]:
    if channels is None:
        return ()
    if not isinstance(channels, list):
        raise EnvironmentSpecError(
            f"{source}: `channels` must be a list, not {type(channels).__name__}.",
            hint=f"write one channel per line, '- conda-forge'; allowed: {CHANNELS_ALLOWED}",
        )
    for index, channel in enumerate(channels):
        if not isinstance(channel, str) or not _is_channel(channel):
            raise EnvironmentSpecError(
                f"{source}: `channels[{index}]` {channel!r} is not a channel the build "
                "understands.",
                hint=f"allowed: {CHANNELS_ALLOWED}",
            )
    return tuple(channels)


def _is_channel(channel: str) -> bool:
    if _CHANNEL_NAME.match(channel) or _CHANNEL_LABEL.match(channel):
        return True
    parts = urlsplit(channel)
    if parts.scheme == "https":
        return bool(parts.netloc) and " " not in channel
    if parts.scheme == "file":
        return not parts.netloc and parts.path.startswith("/")
    return False


def _yaml_dependencies(
    dependencies: object, *, source: str
) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    if dependencies is None or dependencies == []:
        raise EnvironmentSpecError(
            f"{source} has no `dependencies`, so the environment would be empty.",
            hint="list the packages the kernel needs under `dependencies:`, for example "
            "'- python=3.12' and '- numpy'",
        )
    if not isinstance(dependencies, list):
        raise EnvironmentSpecError(
            f"{source}: `dependencies` must be a list, not {type(dependencies).__name__}.",
            hint="write one package per line, '- numpy>=1.26', and pip packages under '- pip:'",
        )
    specs: list[str] = []
    pip: tuple[str, ...] | None = None
    for index, entry in enumerate(dependencies):
        where = f"dependencies[{index}]"
        if isinstance(entry, dict):
            if pip is not None:
                raise EnvironmentSpecError(
                    f"{source}: `{where}` is a second `pip:` section.",
                    hint="merge the pip sections into one '- pip:' list",
                )
            pip = _yaml_pip(entry, source=source, where=where)
        elif isinstance(entry, str) and package_name(entry):
            specs.append(entry)
        else:
            raise EnvironmentSpecError(
                f"{source}: `{where}` is {entry!r}, not a package spec.",
                hint="write packages as strings such as 'numpy', 'python=3.12' or "
                "'conda-forge::gdal>=3.8' (quote versions that YAML reads as numbers)",
            )
    return tuple(specs), pip


def _yaml_pip(entry: Mapping[object, object], *, source: str, where: str) -> tuple[str, ...]:
    if set(entry) != {"pip"}:
        keys = ", ".join(repr(key) for key in entry)
        raise EnvironmentSpecError(
            f"{source}: `{where}` is a mapping with {keys}; the only mapping allowed in "
            "dependencies is `pip:`.",
            hint="write '- pip:' followed by an indented list of pip requirements",
        )
    requirements = entry["pip"]
    if not isinstance(requirements, list) or not requirements:
        raise EnvironmentSpecError(
            f"{source}: `{where}.pip` must be a non-empty list of pip requirements, "
            f"not {requirements!r}.",
            hint="indent the requirements under '- pip:', one '- package==1.0' per line",
        )
    for index, requirement in enumerate(requirements):
        field_name = f"{where}.pip[{index}]"
        if not isinstance(requirement, str) or not requirement.strip():
            raise EnvironmentSpecError(
                f"{source}: `{field_name}` is {requirement!r}, not a pip requirement.",
                hint="write requirements as strings such as 'requests==2.32.3'",
            )
        if _pip_refers_to_local_file(requirement):
            raise EnvironmentSpecError(
                f"{source}: `{field_name}` {requirement!r} refers to a file on this machine, "
                "which the image build cannot see.",
                hint="list the requirements themselves, or install from an index, a wheel URL "
                "or a git+https:// URL",
            )
    return tuple(requirements)


def _pip_refers_to_local_file(requirement: str) -> bool:
    text = requirement.strip()
    option = text.split(maxsplit=1)[0].split("=", 1)[0]
    if option in _PIP_LOCAL_OPTIONS:
        return True
    if text.startswith(_PIP_LOCAL_PREFIXES):
        return True
    return re.search(r"@\s*file:", text) is not None


# -- explicit specs --------------------------------------------------------------------------


def _parse_explicit(text: str, *, source: str, name: str | None) -> CondaEnvironment:
    if name is None:
        raise EnvironmentSpecError(
            f"{source} is an explicit spec, which has no `name`, and no --name was given.",
            hint="pass --name myenv to name the environment",
        )
    env_name = validate_env_name(name, source=source, field_name="--name")
    urls: list[str] = []
    # parse_environment sends a file here only when @EXPLICIT is its first statement.
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line == "@EXPLICIT":
            continue
        if line.startswith("#"):
            platform = _PLATFORM_LINE.match(line)
            if platform:
                _check_platform(platform.group(1), source=source, where=f"line {number}")
            continue
        urls.append(_check_package_url(line, source=source, number=number))
    if not urls:
        raise EnvironmentSpecError(
            f"{source} lists no packages after @EXPLICIT, so the environment would be empty.",
            hint="regenerate it with `conda list --explicit --md5 -n ENV`",
        )
    return CondaEnvironment(
        name=env_name,
        source=source,
        kind=SpecKind.EXPLICIT,
        explicit_text=text,
        package_urls=tuple(urls),
    )


def _check_platform(platform: str, *, source: str, where: str) -> None:
    if platform != "noarch" and not platform.startswith("linux-"):
        raise EnvironmentSpecError(
            f"{source}: {where} says the spec was locked for {platform}, but kernel images "
            "run on Linux.",
            hint="lock the environment for linux-64 (for example "
            "`conda-lock --kind explicit --platform linux-64`), or pass the environment.yml",
        )


def _check_package_url(line: str, *, source: str, number: int) -> str:
    parts = urlsplit(line)
    path = PurePosixPath(parts.path)
    if parts.scheme not in {"https", "http", "file"} or not path.name.endswith(_PACKAGE_SUFFIXES):
        raise EnvironmentSpecError(
            f"{source}: line {number} {line!r} is not a package URL.",
            hint="after @EXPLICIT each line is the https:// (or file://) URL of a .conda or "
            ".tar.bz2 package, optionally followed by #md5 or #sha256",
        )
    subdir = path.parent.name
    if subdir and subdir != "noarch" and re.match(r"^(osx|win)-", subdir):
        _check_platform(subdir, source=source, where=f"line {number}")
    return line


def _url_package_name(url: str) -> str:
    filename = PurePosixPath(urlsplit(url).path).name
    # name-version-build.conda: the name may itself contain dashes.
    stem = filename.removesuffix(".conda").removesuffix(".tar.bz2")
    parts = stem.rsplit("-", 2)
    return parts[0].lower() if len(parts) == 3 else ""
