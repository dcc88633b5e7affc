"""A team as options: :class:`TeamSpec`, and the checks that turn what an admin typed into one.

The admin writes amounts by hand (`--cpu 64 --memory 256Gi --gpu 4`), and a
wrong one should be refused here, naming the option and the syntax it
takes, rather than by the API server halfway through creating a team.
Amounts are kept in the API server's canonical form (`0.5` becomes `500m`)
so that the objects built from a spec compare equal to what the server
stores, which is what makes `update` idempotent.

:func:`team_spec` serves both `create` (every required option given) and
`update` (options given override the team's current spec; the rest stays).

Not here: the objects built from a spec (:mod:`.manifests`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from jkctl.errors import UsageError
from jkctl.kube import amounts

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LOOKALIKES = {"kb": "k", "mb": "M", "gb": "G", "tb": "T", "kib": "Ki", "mib": "Mi", "gib": "Gi"}
_LOOKALIKES.update({"tib": "Ti", "ki": "Ki", "mi": "Mi", "gi": "Gi", "ti": "Ti", "g": "G"})

#: Kernel defaults when the team is large enough; smaller teams get their whole quota.
DEFAULT_KERNEL_CPU = "1"
DEFAULT_KERNEL_MEMORY = "4Gi"
TEAM_NAME_SYNTAX = (
    "at most 63 lower-case letters, digits and '-', starting and ending with a letter or "
    "digit, such as geo or ml-research"
)


@dataclass(frozen=True, kw_only=True)
class TeamSpec:
    """What a team is given. Amounts are canonical quantity strings."""

    name: str
    cpu: str
    memory: str
    gpu: int = 0
    #: The most pods (kernels, builds) the team may have at once; None: no limit.
    max_kernels: int | None = None
    default_kernel_cpu: str = DEFAULT_KERNEL_CPU
    default_kernel_memory: str = DEFAULT_KERNEL_MEMORY
    members: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    @property
    def namespace(self) -> str:
        """A team is its namespace: they share the name."""
        return self.name


@dataclass(frozen=True, kw_only=True)
class TeamOptions:
    """What the admin typed; None means "not given" (for update: keep what the team has)."""

    cpu: str | None = None
    memory: str | None = None
    gpu: str | None = None
    max_kernels: int | None = None
    default_kernel_cpu: str | None = None
    default_kernel_memory: str | None = None
    members: Sequence[str] | None = None
    groups: Sequence[str] | None = None


def check_team_name(name: str) -> str:
    if len(name) > 63 or not _DNS_LABEL.match(name):
        raise UsageError(
            f"{name!r} cannot be a team name: it becomes the team's namespace name",
            hint=f"use {TEAM_NAME_SYNTAX}",
        )
    return name


def team_spec(name: str, options: TeamOptions, *, base: TeamSpec | None = None) -> TeamSpec:
    """A checked spec: ``options`` over ``base`` (update), or options alone (create)."""
    check_team_name(name)
    cpu = _positive("--cpu", options.cpu, amounts.CPU_SYNTAX) if options.cpu else None
    memory = (
        _positive("--memory", options.memory, amounts.MEMORY_SYNTAX) if options.memory else None
    )
    if base is None:
        if cpu is None or memory is None:
            missing = " and ".join(
                flag for flag, value in (("--cpu", cpu), ("--memory", memory)) if value is None
            )
            raise UsageError(
                f"creating team {name} needs {missing}: the team's share of the cluster",
                hint=f"for example: jkctl admin team create {name} --cpu 64 --memory 256Gi --gpu 4",
            )
        base = TeamSpec(
            name=name,
            cpu=cpu,
            memory=memory,
            # A team smaller than the usual kernel gets its whole quota as the default.
            default_kernel_cpu=_smaller(DEFAULT_KERNEL_CPU, cpu),
            default_kernel_memory=_smaller(DEFAULT_KERNEL_MEMORY, memory),
        )
    spec = TeamSpec(
        name=name,
        cpu=cpu or base.cpu,
        memory=memory or base.memory,
        gpu=base.gpu if options.gpu is None else _whole("--gpu", options.gpu),
        max_kernels=base.max_kernels
        if options.max_kernels is None
        else _max_kernels(name, options.max_kernels),
        default_kernel_cpu=base.default_kernel_cpu
        if options.default_kernel_cpu is None
        else _positive("--default-kernel-cpu", options.default_kernel_cpu, amounts.CPU_SYNTAX),
        default_kernel_memory=base.default_kernel_memory
        if options.default_kernel_memory is None
        else _positive(
            "--default-kernel-memory", options.default_kernel_memory, amounts.MEMORY_SYNTAX
        ),
        members=base.members if options.members is None else _names("--members", options.members),
        groups=base.groups if options.groups is None else _names("--group", options.groups),
    )
    _check_defaults_fit(spec)
    return spec


def _max_kernels(name: str, value: int) -> int:
    if value < 1:
        raise UsageError(
            f"--max-kernels {value} would let team {name} run nothing",
            hint=f"give {amounts.COUNT_SYNTAX} of at least 1",
        )
    return value


def _smaller(default: str, quota: str) -> str:
    return default if amounts.parse(default) <= amounts.parse(quota) else quota


def _check_defaults_fit(spec: TeamSpec) -> None:
    for flag, default, limit, team_flag in (
        ("--default-kernel-cpu", spec.default_kernel_cpu, spec.cpu, "--cpu"),
        ("--default-kernel-memory", spec.default_kernel_memory, spec.memory, "--memory"),
    ):
        if amounts.parse(default) > amounts.parse(limit):
            raise UsageError(
                f"{flag} {default} is more than team {spec.name}'s whole quota ({team_flag} "
                f"{limit}): no kernel of the default size could start",
                hint=f"lower {flag} or raise {team_flag}",
            )


def _quantity(flag: str, text: str, syntax: str) -> Fraction:
    try:
        return amounts.parse(text)
    except ValueError:
        pass
    number = re.match(r"^\s*[+-]?[0-9.]+", text)
    suffix = text[number.end() :].strip() if number else ""
    meant = _LOOKALIKES.get(suffix.lower()) if number else None
    said = f" (Kubernetes writes {number.group().strip()}{meant})" if number and meant else ""
    raise UsageError(
        f"{flag} {text} is not an amount Kubernetes understands{said}",
        hint=f"write {syntax}",
    )


def _positive(flag: str, text: str, syntax: str) -> str:
    value = _quantity(flag, text, syntax)
    if value <= 0:
        raise UsageError(f"{flag} {text} must be more than zero", hint=f"write {syntax}")
    return amounts.canonical(text)


def _whole(flag: str, text: str) -> int:
    value = _quantity(flag, text, amounts.COUNT_SYNTAX)
    if value < 0 or value.denominator != 1:
        raise UsageError(
            f"{flag} {text} must be a whole number of GPUs, zero or more",
            hint=f"write {amounts.COUNT_SYNTAX}",
        )
    return int(value)


def _names(flag: str, names: Sequence[str]) -> tuple[str, ...]:
    """Comma-separated or repeated names, de-duplicated, in order."""
    split = [part.strip() for name in names for part in name.split(",")]
    if any(not part for part in split) and any(split):
        raise UsageError(
            f"{flag} has an empty name in {','.join(names)!r}",
            hint=f"separate names with commas and nothing else: {flag} alice,bob",
        )
    return tuple(dict.fromkeys(part for part in split if part))
