"""Exporting a conda environment that exists on this machine, for `conda-env --name ENV`.

The environment is exported with conda (``conda env export --no-builds -n
NAME``) or, when conda is not installed, micromamba (``micromamba env export
--no-build -n NAME``), then read by the same parser as a file, so an export
is validated exactly like an environment.yml. Build strings are left out
because they tie packages to this machine's platform; the image is Linux.

This module only runs the exporter; it does not look environments up itself,
nor guess at pip packages micromamba leaves out of its export.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import replace

from jkctl.errors import UsageError
from jkctl.images.envfile import CondaEnvironment, parse_environment, validate_env_name

#: Exporters in the order they are tried, with the arguments before the name.
EXPORTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("conda", ("env", "export", "--no-builds", "-n")),
    ("micromamba", ("env", "export", "--no-build", "-n")),
)
EXPORT_TIMEOUT = 120.0


def export_local_environment(
    name: str, *, env: Mapping[str, str] = os.environ, timeout: float = EXPORT_TIMEOUT
) -> CondaEnvironment:
    """Export the local environment `name` and parse it."""
    validate_env_name(name, source="the command line", field_name="--name")
    found = _find_exporter(env)
    if found is None:
        raise UsageError(
            f"neither conda nor micromamba is installed, so the local environment {name!r} "
            "cannot be exported.",
            hint="pass the environment's file instead: "
            "jkctl build-kernel-image conda-env environment.yml --tag IMAGE",
        )
    tool, arguments, executable = found
    command = shlex.join([tool, *arguments, name])
    try:
        result = subprocess.run(
            [executable, *arguments, name],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            env=dict(env),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise UsageError(
            f"`{command}` did not finish within {timeout:.0f} seconds.",
            hint="run it yourself, save the output as environment.yml and pass that file",
        ) from exc
    except OSError as exc:
        raise UsageError(
            f"`{command}` could not be started: {exc.strerror or exc}.",
            hint="pass the environment's file instead of --name",
        ) from exc
    if result.returncode != 0:
        said = result.stderr.strip().splitlines()[-5:]
        raise UsageError(
            f"{tool} could not export the environment {name!r} (exit code {result.returncode}).",
            hint=f"`{tool} env list` shows the environments there are",
            context="\n".join(said) or None,
        )
    exported = parse_environment(result.stdout, source=f"`{command}`", name=name)
    if tool == "micromamba":
        exported = replace(
            exported,
            notes=(
                *exported.notes,
                "micromamba exports conda packages only; add pip-installed packages to an "
                "environment.yml under `pip:` if the kernel needs them",
            ),
        )
    return exported


def _find_exporter(env: Mapping[str, str]) -> tuple[str, tuple[str, ...], str] | None:
    for tool, arguments in EXPORTERS:
        executable = shutil.which(tool, path=env.get("PATH", os.defpath))
        if executable is not None:
            return tool, arguments, executable
    return None
