"""Resource profiles: sizes declared once in ``profiles.yaml``, multiplied out over the specs.

A kernel-templates folder may hold a ``profiles.yaml`` beside its spec folders::

    profiles:
      large:
        displayName: "large: 4 CPUs, 16 GiB"
        resources:
          requests: {cpu: "4", memory: 16Gi}
          limits: {cpu: "8", memory: 16Gi}
      gpu:
        displayName: "GPU: 1 NVIDIA GPU"
        resources: {limits: {nvidia.com/gpu: "1"}}
        nodeSelector: {nvidia.com/gpu.present: "true"}
        tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]

Each profile is a fragment of ``metadata.jkctl`` (any of its fields but
``profiles``) plus a ``displayName``. A kernelspec asks for profiles by name
(``"profiles": ["large", "gpu"]``, or ``{"gpu": {"image": "..."}}`` to adjust
one for that spec), and gets one more kernelspec per profile, ``NAME-PROFILE``
(``python3-gpu``), whose block is the spec's with the profile laid over it
(:func:`~jkctl.kube.podconfig.merge_blocks`).

Profiles are looked up by name along the same search path as kernelspecs, so
a team's ``--kernel-templates`` folder can redefine ``gpu`` (its GPU nodes'
labels and taints) for the bundled specs too. A broken profile hides its
namesakes further down, as a broken spec does. Multiplying out is
:mod:`jkctl.kernels.specs`' job; this module reads and checks the files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jkctl.errors import TemplateError
from jkctl.kube.podconfig import check_fragment, merge_blocks
from jkctl.kube.podfields import PROFILE_NAME

PROFILES_FILE = "profiles.yaml"


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    #: What the kernel menu adds after the spec's display name; the name if not given.
    display_name: str
    #: The checked fragment of metadata.jkctl this profile lays over a spec's block.
    overrides: Mapping[str, Any]
    source: Path

    def adjusted(self, overrides: Mapping[str, Any]) -> Profile:
        """This profile with a spec's own adjustments (a checked fragment) laid over it."""
        extra = dict(overrides)
        display_name = str(extra.pop("displayName", self.display_name))
        return Profile(
            name=self.name,
            display_name=display_name,
            overrides=merge_blocks(self.overrides, extra),
            source=self.source,
        )


@dataclass(frozen=True, kw_only=True)
class ProfileSet:
    """Every profile along a search path, first definition of a name winning."""

    profiles: Mapping[str, Profile] = field(default_factory=dict)
    #: Profiles (by name) or whole files (by path) that could not be read.
    broken: Mapping[str, TemplateError] = field(default_factory=dict)

    @classmethod
    def load(cls, dirs: Sequence[Path]) -> ProfileSet:
        profiles: dict[str, Profile] = {}
        broken: dict[str, TemplateError] = {}
        for base in dirs:
            path = base / PROFILES_FILE
            if not path.is_file():
                continue
            try:
                entries = read_profiles_file(path)
            except TemplateError as error:
                broken[str(path)] = error
                continue
            for name, entry in entries.items():
                if name in profiles or name in broken:
                    continue
                if isinstance(entry, TemplateError):
                    broken[name] = entry
                else:
                    profiles[name] = entry
        return cls(profiles=profiles, broken=broken)

    def get(self, name: str, *, wanted_by: str) -> Profile:
        """The profile `name` asks for by the spec `wanted_by`; TemplateError if there is none."""
        if name in self.profiles:
            return self.profiles[name]
        if name in self.broken:
            raise self.broken[name]
        known = ", ".join(self.profiles) or "none"
        unreadable = [key for key in self.broken if key.endswith(PROFILES_FILE)]
        context = (
            f"{unreadable[0]} could not be read: {self.broken[unreadable[0]]}"
            if unreadable
            else None
        )
        raise TemplateError(
            f"{wanted_by}: metadata.jkctl.profiles names {name!r}, a profile no profiles.yaml "
            "defines.",
            hint=f"Use one of the defined profiles ({known}), or define {name!r} in a "
            f"{PROFILES_FILE} beside your kernelspecs.",
            context=context,
        )


def read_profiles_file(path: Path) -> dict[str, Profile | TemplateError]:
    """The profiles in `path`; a bad entry is its error (it hides its namesakes)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(
            f"The profiles file {path} cannot be read: {exc}.",
            hint="Check its permissions and that it is UTF-8 text.",
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise TemplateError(
            f"The profiles file {path}{line} is not valid YAML: {getattr(exc, 'problem', exc)}.",
            hint="Fix the YAML at that line; the file maps profile names under `profiles:`.",
        ) from exc
    if document is None:
        return {}
    if not isinstance(document, dict) or set(document) - {"profiles"}:
        raise TemplateError(
            f"The profiles file {path} must be a mapping with one key, profiles.",
            hint="Write `profiles:` and under it one entry per profile, such as `large:`.",
        )
    entries = document.get("profiles") or {}
    if not isinstance(entries, dict):
        raise TemplateError(
            f"{path}: profiles must map profile names to their settings.",
            hint="Write one entry per profile under `profiles:`, such as `large: {...}`.",
        )
    found: dict[str, Profile | TemplateError] = {}
    for name, entry in entries.items():
        if not isinstance(name, str) or not PROFILE_NAME.match(name):
            found[str(name)] = TemplateError(
                f"{path}: profiles.{name} is not a profile name.",
                hint="Profile names are lower-case letters, digits and '-', such as gpu or large.",
            )
            continue
        try:
            overrides = check_fragment(
                entry, source=str(path), field=f"profiles.{name}", extra=("displayName",)
            )
        except TemplateError as error:
            found[name] = error
            continue
        display_name = str(overrides.pop("displayName", name))
        found[name] = Profile(
            name=name, display_name=display_name, overrides=overrides, source=path
        )
    return found
