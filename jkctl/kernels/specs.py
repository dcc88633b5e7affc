"""Kernelspecs: the bundled kernel-templates, the user's folder, and extra folders.

A kernelspec is a folder with a standard Jupyter ``kernel.json`` (argv,
display_name, language, interrupt_mode, env, metadata) plus optional logos
and an optional ``kernel-pod.yaml.j2``. Its ``metadata.jkctl`` block (image,
resources, node selector, ...) is checked on loading into a
:class:`~jkctl.kube.podconfig.PodConfig`; a spec that asks for resource
profiles is multiplied out into one more spec per profile
(:mod:`jkctl.kernels.profiles`): ``python3`` with ``gpu`` gives ``python3-gpu``.

Search order, first match wins: ``--kernel-templates`` folders (in the order
given), the user's folder (``jkctl.paths.user_kernels_dir()``), then the
bundled ``kernel-templates``. A spec folder's name claims its name before any
profile-made spec does. A spec's pod template is the ``kernel-pod.yaml.j2`` in
its own folder, else the one beside its folder, else jkctl's shared one.

Specs are read from disk on every call, as Jupyter Server does, so a spec
added while the daemon runs shows up. A broken spec never takes anything down:
:meth:`KernelSpecSource.catalog` reports it (``jkctl kernelspecs list`` shows
it as broken), listings skip it with a warning, and asking for it by name is
its :class:`~jkctl.errors.TemplateError`; it hides its namesakes further down.

Parsing of the Jupyter fields uses ``jupyter_client.kernelspec.KernelSpec``.
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
from jkctl.kernels.profiles import Profile, ProfileSet
from jkctl.kube.podconfig import (
    FIELD,
    TEMPLATE_FILE,
    PodConfig,
    merge_blocks,
    parse_pod_config,
)

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
    #: The checked ``metadata.jkctl`` block: what the kernel's pod is made of.
    pod: PodConfig = field(default_factory=PodConfig)
    #: The profile this spec was made with (``gpu`` for ``python3-gpu``), if any.
    profile: str | None = None
    #: Where it was defined, for people: the kernel.json, and the profiles file.
    source: str = ""

    def launch_spec(self) -> LaunchSpec:
        return LaunchSpec(
            name=self.name,
            argv=self.argv,
            env=dict(self.env),
            resource_dir=self.resource_dir,
            pod=self.pod,
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

    def with_profile(self, profile: Profile) -> KernelSpec:
        """The spec `profile` makes of this one (``python3`` + ``gpu`` -> ``python3-gpu``)."""
        written = {key: value for key, value in self.pod.written.items() if key != "profiles"}
        merged = merge_blocks(written, profile.overrides)
        source = f"{self.source} with profile {profile.name} from {profile.source}"
        pod = parse_pod_config(merged, source=source, pod_template=self.pod.pod_template)
        return KernelSpec(
            name=f"{self.name}-{profile.name}",
            resource_dir=self.resource_dir,
            argv=self.argv,
            display_name=f"{self.display_name} \N{EM DASH} {profile.display_name}",
            language=self.language,
            interrupt_mode=self.interrupt_mode,
            env=self.env,
            metadata={**self.metadata, "jkctl": pod.to_json()},
            kernel_protocol_version=self.kernel_protocol_version,
            pod=pod,
            profile=profile.name,
            source=source,
        )


@dataclass(frozen=True, kw_only=True)
class BrokenSpec:
    """A kernelspec that cannot be used, and why."""

    name: str
    folder: Path
    error: TemplateError


@dataclass(frozen=True, kw_only=True)
class SpecCatalog:
    """What a search path holds: usable specs and broken ones, each name at most once."""

    specs: Mapping[str, KernelSpec]
    broken: Mapping[str, BrokenSpec]


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

    def catalog(self) -> SpecCatalog:
        """Every kernelspec on the path, usable or broken, profiles multiplied out."""
        specs: dict[str, KernelSpec] = {}
        broken: dict[str, BrokenSpec] = {}
        for base in self.dirs:
            for folder in _spec_folders(base):
                name = folder.name.lower()
                if name in specs or name in broken:
                    continue
                try:
                    specs[name] = load_spec(folder)
                except TemplateError as error:
                    broken[name] = BrokenSpec(name=name, folder=folder, error=error)
        profiles = ProfileSet.load(self.dirs)
        for spec in list(specs.values()):
            for profile_name, adjustments in spec.pod.profiles.items():
                name = f"{spec.name}-{profile_name}"
                if name in specs or name in broken:
                    logger.debug(
                        "kernelspec %s already exists; profile %s not applied", name, profile_name
                    )
                    continue
                try:
                    profile = profiles.get(profile_name, wanted_by=spec.source)
                    specs[name] = spec.with_profile(profile.adjusted(adjustments))
                except TemplateError as error:
                    broken[name] = BrokenSpec(name=name, folder=spec.resource_dir, error=error)
        return SpecCatalog(specs=dict(sorted(specs.items())), broken=dict(sorted(broken.items())))

    def all(self) -> dict[str, KernelSpec]:
        """Every usable kernelspec by name; a broken one is logged, and hides its namesakes."""
        catalog = self.catalog()
        for broken in catalog.broken.values():
            logger.warning("skipping kernelspec %s: %s", broken.name, broken.error)
        return dict(catalog.specs)

    def get(self, name: str) -> KernelSpec:
        catalog = self.catalog() if _NAME.match(name) else SpecCatalog(specs={}, broken={})
        key = name.lower()
        if key in catalog.specs:
            return catalog.specs[key]
        if key in catalog.broken:
            raise catalog.broken[key].error
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
    """Read and check one kernelspec folder (its profiles are not applied here)."""
    from jupyter_client.kernelspec import KernelSpec as JupyterKernelSpec
    from traitlets import TraitError

    kernel_json = folder / "kernel.json"
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
    pod = parse_pod_config(
        metadata.get("jkctl"), source=str(kernel_json), field=FIELD, pod_template=_template(folder)
    )
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
        pod=pod,
        source=str(kernel_json),
    )


def _template(folder: Path) -> Path | None:
    """The spec's pod template: its own, else its neighbours' (beside it), else jkctl's."""
    for candidate in (folder / TEMPLATE_FILE, folder.parent / TEMPLATE_FILE):
        if candidate.is_file():
            return candidate
    return None
