"""The build context for a conda kernel image, written from the `images/conda` template.

Given a validated :class:`~jkctl.images.envfile.CondaEnvironment` and the
kernel's options, :func:`write_build_context` produces a folder any builder
(docker, podman, buildah, later an in-cluster one) can build as it is:

- ``Dockerfile``: the template with its "filled in by jkctl" ``ARG`` defaults
  set, so no ``--build-arg`` is needed and the folder rebuilds by hand;
- ``environment.yml`` (or ``environment.txt`` for an explicit spec): the
  environment with ``ipykernel`` added when missing, pip entries untouched;
- ``kernelspec/kernel.json``: the kernelspec `--register` installs;
- ``.dockerignore``, keeping the kernelspec out of what is sent to the builder.

The template is filled by replacing whole ``ARG NAME=default`` lines, not by a
text template engine: the values are validated names, and a template that lost
one of those lines is reported instead of silently building the wrong thing.
Nothing here runs a builder; see :mod:`jkctl.images.builders`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from jkctl import paths
from jkctl.errors import TemplateError, UsageError
from jkctl.images.envfile import CondaEnvironment, SpecKind, package_name
from jkctl.images.kernelspec import (
    KernelOptions,
    KernelspecJSON,
    conda_kernelspec,
    kernelspec_name,
    write_kernelspec,
)

KERNEL_PACKAGE = "ipykernel"
#: Used when an environment.yml names no channel: micromamba has no default.
DEFAULT_CHANNEL = "conda-forge"
KERNELSPEC_DIR = "kernelspec"
#: Everything write_build_context may put in a folder; any other file means the
#: folder is someone else's and is left alone.
CONTEXT_FILES = frozenset(
    {"Dockerfile", ".dockerignore", SpecKind.YAML.value, SpecKind.EXPLICIT.value, KERNELSPEC_DIR}
)


@dataclass(frozen=True, kw_only=True)
class BuildContext:
    """A written build context: its files and the kernelspec that goes with the image."""

    directory: Path
    dockerfile: Path
    environment_file: Path
    kernelspec_dir: Path
    kernelspec_name: str
    kernelspec: KernelspecJSON
    #: Changes made to the user's environment, to tell them about.
    notes: tuple[str, ...]


def conda_template_dir() -> Path:
    """The bundled `images/conda` folder holding the Dockerfile template."""
    return paths.bundled("images") / "conda"


def write_build_context(
    env: CondaEnvironment,
    options: KernelOptions,
    directory: Path,
    *,
    template_dir: Path | None = None,
) -> BuildContext:
    """Write the build context for `env` into `directory` (new, empty, or a previous context)."""
    _claim_directory(directory)
    template = (template_dir or conda_template_dir()) / "Dockerfile"
    notes = list(env.notes)

    environment_file = directory / env.kind.value
    for kind in SpecKind:  # a previous context in this folder may have used the other format
        (directory / kind.value).unlink(missing_ok=True)
    extra_packages = ""
    if env.kind is SpecKind.YAML:
        document, yaml_notes = environment_document(env)
        notes += yaml_notes
        environment_file.write_text(
            yaml.safe_dump(document, sort_keys=False, default_flow_style=False),
            encoding="utf-8",
        )
    else:
        environment_file.write_text(env.explicit_text, encoding="utf-8")
        if not env.has_package(KERNEL_PACKAGE):
            extra_packages = KERNEL_PACKAGE
            notes.append(
                f"{env.source} does not lock {KERNEL_PACKAGE}; the image installs it from "
                f"{DEFAULT_CHANNEL} on top of the locked packages (add it to the lock to pin it)"
            )

    dockerfile = directory / "Dockerfile"
    dockerfile.write_text(
        fill_template(
            _read_template(template),
            template=template,
            values={
                "JKCTL_ENV_NAME": env.name,
                "JKCTL_ENV_FILE": environment_file.name,
                "JKCTL_EXTRA_PACKAGES": extra_packages,
            },
        ),
        encoding="utf-8",
    )
    (directory / ".dockerignore").write_text(f"{KERNELSPEC_DIR}/\n", encoding="utf-8")

    spec = conda_kernelspec(env.name, options)
    kernelspec_dir = directory / KERNELSPEC_DIR
    logos = paths.bundled("kernel-templates") / "python3"
    write_kernelspec(
        kernelspec_dir, spec, logos=[logos / "logo-32x32.png", logos / "logo-64x64.png"]
    )
    return BuildContext(
        directory=directory,
        dockerfile=dockerfile,
        environment_file=environment_file,
        kernelspec_dir=kernelspec_dir,
        kernelspec_name=kernelspec_name(env.name),
        kernelspec=spec,
        notes=tuple(notes),
    )


def environment_document(env: CondaEnvironment) -> tuple[dict[str, Any], list[str]]:
    """The environment.yml to build from: ipykernel (and pip, for a pip section) added.

    Conda dependencies keep their order with additions appended; the pip
    sub-list is carried over entry for entry.
    """
    notes: list[str] = []
    dependencies: list[Any] = list(env.dependencies)
    if not env.has_package(KERNEL_PACKAGE):
        dependencies.append(KERNEL_PACKAGE)
        notes.append(f"added {KERNEL_PACKAGE} to the environment: the kernel needs it")
    if env.pip is not None and "pip" not in {package_name(spec) for spec in env.dependencies}:
        dependencies.append("pip")
        notes.append("added pip to the environment: its pip section needs it")
    if env.pip is not None:
        dependencies.append({"pip": list(env.pip)})
    channels = list(env.channels)
    notes += [
        f"channel {channel} is a path on this machine; the build sees it only if the "
        "builder has the same path"
        for channel in channels
        if channel.startswith("file:")
    ]
    if not channels:
        channels = [DEFAULT_CHANNEL]
        notes.append(f"{env.source} names no channel; using {DEFAULT_CHANNEL}")
    document: dict[str, Any] = {"name": env.name, "channels": channels}
    document["dependencies"] = dependencies
    document.update(env.extra)
    return document, notes


def fill_template(text: str, *, template: Path, values: dict[str, str]) -> str:
    """Set the default of each `ARG NAME=...` line named in `values`."""
    for name, value in values.items():
        found = list(re.finditer(rf"^ARG {name}=.*$", text, re.MULTILINE))
        if len(found) != 1:
            raise TemplateError(
                f"{template} must have exactly one `ARG {name}=` line for jkctl to fill in.",
                hint="restore the Dockerfile from the jkctl release, or keep that line when "
                "editing the template",
            )
        quoted = f'"{value}"' if " " in value else value
        text = f"{text[: found[0].start()]}ARG {name}={quoted}{text[found[0].end() :]}"
    return text


def _read_template(template: Path) -> str:
    try:
        return template.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(
            f"the conda image template {template} cannot be read: {exc.strerror}.",
            hint="reinstall jkctl: the template ships inside the package",
        ) from exc


def _claim_directory(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise UsageError(
            f"--context-dir {directory} is a file, not a directory.",
            hint="pass a new or empty directory for the build context",
        )
    if directory.is_dir():
        foreign = sorted({entry.name for entry in directory.iterdir()} - CONTEXT_FILES)
        if foreign:
            raise UsageError(
                f"--context-dir {directory} already holds files jkctl did not write "
                f"({', '.join(foreign[:3])}).",
                hint="pass a new or empty directory for the build context",
            )
    directory.mkdir(parents=True, exist_ok=True)
