"""Kernelspecs: the bundled kernel-templates, the user's folder, and extra folders.

A kernelspec is a folder with a standard Jupyter ``kernel.json`` (argv,
display_name, language, interrupt_mode, env, metadata) plus optional logos.
jkctl reads a ``metadata.jkctl`` block from it (image, resources, env, ...)
and hands it to the backend untouched.

Search order, first match wins: ``--kernel-templates`` folders (in the order
given), the user's folder (``jkctl.paths.user_kernels_dir()``), then the
bundled ``kernel-templates``. Specs are read from disk on every call, as
Jupyter Server does, so a spec added while the daemon runs shows up; a broken
spec is skipped with a warning when listing and is a
:class:`~jkctl.errors.TemplateError` when asked for by name.

Parsing and validation use ``jupyter_client.kernelspec.KernelSpec``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jkctl.backends.base import LaunchSpec
from jkctl.errors import KernelspecNotFound, TemplateError

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9._\-]+$", re.IGNORECASE)
#: Files a kernelspec may ship that clients fetch from /kernelspecs/NAME/FILE.
_RESOURCE_FILES = ("kernel.js", "kernel.css")


@dataclass(frozen=True, kw_only=True)
class KernelSpec:
    name: str
    resource_dir: Path
    argv: tuple[str, ...]
    display_name: str
    language: str
    interrupt_mode: str = "signal"
    env: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    kernel_protocol_version: str = "5.0"

    @property
    def jkctl(self) -> Mapping[str, Any]:
        block = self.metadata.get("jkctl", {})
        return block if isinstance(block, Mapping) else {}

    def launch_spec(self) -> LaunchSpec:
        return LaunchSpec(
            name=self.name,
            argv=self.argv,
            env=dict(self.env),
            resource_dir=self.resource_dir,
            jkctl=self.jkctl,
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``spec`` object of the REST model, as jupyter_client's ``KernelSpec.to_dict``."""
        return {
            "argv": list(self.argv),
            "env": dict(self.env),
            "display_name": self.display_name,
            "language": self.language,
            "interrupt_mode": self.interrupt_mode,
            "metadata": dict(self.metadata),
            "kernel_protocol_version": self.kernel_protocol_version,
        }

    def resource_files(self) -> dict[str, str]:
        """Resource name -> file name: ``logo-64x64`` -> ``logo-64x64.png``, ``kernel.js``..."""
        found: dict[str, str] = {}
        for name in _RESOURCE_FILES:
            if (self.resource_dir / name).is_file():
                found[name] = name
        for logo in sorted(self.resource_dir.glob("logo-*")):
            if logo.is_file():
                found[logo.stem] = logo.name
        return found

    def resource_path(self, file_name: str) -> Path | None:
        """The file behind /kernelspecs/NAME/FILE, if it is one of this spec's own files."""
        if "/" in file_name or "\\" in file_name or file_name.startswith("."):
            return None
        path = self.resource_dir / file_name
        return path if path.is_file() else None


@dataclass(frozen=True, kw_only=True)
class KernelSpecSource:
    """Where kernelspecs are looked for, most specific first."""

    dirs: tuple[Path, ...]
    default_name: str = "python3"

    @classmethod
    def standard(
        cls, *, extra: Sequence[Path], user_dir: Path, bundled_dir: Path
    ) -> KernelSpecSource:
        return cls(dirs=(*extra, user_dir, bundled_dir))

    def all(self) -> dict[str, KernelSpec]:
        """Every usable kernelspec by name; a broken one hides its namesakes further down."""
        specs: dict[str, KernelSpec] = {}
        seen: set[str] = set()
        for base in self.dirs:
            for folder in _spec_folders(base):
                name = folder.name.lower()
                if name in seen:
                    continue
                seen.add(name)
                try:
                    specs[name] = load_spec(folder)
                except TemplateError as error:
                    logger.warning("skipping kernelspec %s: %s", folder, error)
        return dict(sorted(specs.items()))

    def get(self, name: str) -> KernelSpec:
        if _NAME.match(name):
            for base in self.dirs:
                for folder in _spec_folders(base):
                    if folder.name.lower() == name.lower():
                        return load_spec(folder)
        available = ", ".join(self.all()) or "none"
        raise KernelspecNotFound(
            f"There is no kernelspec named '{name}'.",
            hint=f"Available kernelspecs: {available}.",
        )

    def default(self, specs: Mapping[str, KernelSpec]) -> str:
        if self.default_name in specs or not specs:
            return self.default_name
        return next(iter(specs))


def _spec_folders(base: Path) -> list[Path]:
    if not base.is_dir():
        return []
    return sorted(
        folder
        for folder in base.iterdir()
        if _NAME.match(folder.name) and (folder / "kernel.json").is_file()
    )


def load_spec(folder: Path) -> KernelSpec:
    """Read and validate one kernelspec folder."""
    from jupyter_client.kernelspec import KernelSpec as JupyterKernelSpec
    from traitlets import TraitError

    try:
        parsed = JupyterKernelSpec.from_resource_dir(str(folder))
    except (OSError, ValueError, TypeError, TraitError) as exc:
        raise TemplateError(
            f"The kernelspec in {folder} cannot be read: {exc}.",
            hint="Fix its kernel.json: a JSON object with argv, display_name and language.",
        ) from exc
    if not parsed.argv or not all(isinstance(arg, str) for arg in parsed.argv):
        raise TemplateError(
            f"The kernelspec in {folder} has no argv to run.",
            hint='Give kernel.json an "argv" list, e.g. ["python", "-m", "ipykernel_launcher", '
            '"-f", "{connection_file}"].',
        )
    metadata = parsed.metadata or {}
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:  # pragma: no cover - JSON in, JSON out
        raise TemplateError(f"The kernelspec in {folder} has invalid metadata.") from exc
    return KernelSpec(
        name=folder.name.lower(),
        resource_dir=folder,
        argv=tuple(parsed.argv),
        display_name=parsed.display_name or folder.name,
        language=parsed.language or "",
        interrupt_mode=parsed.interrupt_mode,
        env={str(k): str(v) for k, v in (parsed.env or {}).items()},
        metadata=metadata,
        kernel_protocol_version=str(parsed.kernel_protocol_version),
    )
