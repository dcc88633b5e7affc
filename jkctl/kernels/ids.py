"""Kernel ids as people type them: unique prefixes, as git takes abbreviated hashes.

Kernel ids are UUIDs; tables show the first eight characters
(:func:`short_id`), and every command that takes an id takes any prefix that
names exactly one kernel (:func:`resolve_kernel_id`). An unknown or ambiguous
prefix is one sentence with a hint, like any other jkctl error.

Pure functions on strings: where the ids come from (the daemon's table, the
pods in a namespace) is the caller's business.
"""

from __future__ import annotations

from collections.abc import Iterable

from jkctl.errors import KernelNotFound, UsageError

#: How many characters of an id tables show (a UUID's first group).
SHORT = 8


def short_id(kernel_id: str) -> str:
    return kernel_id[:SHORT]


def resolve_kernel_id(prefix: str, known: Iterable[str], *, where: str = "") -> str:
    """The one id in ``known`` that starts with ``prefix`` (case-insensitive).

    ``where`` says where the ids were looked for ("in namespace geo"), for the
    error. Raises KernelNotFound for no match, UsageError for several.
    """
    wanted = prefix.strip().lower()
    ids = sorted(set(known))
    if not wanted:
        raise UsageError("A kernel id cannot be empty.", hint="`jkctl kernels list` shows the ids.")
    exact = [kernel_id for kernel_id in ids if kernel_id.lower() == wanted]
    if exact:
        return exact[0]
    matches = [kernel_id for kernel_id in ids if kernel_id.lower().startswith(wanted)]
    place = f" {where}" if where else ""
    if not matches:
        raise KernelNotFound(
            f"No kernel{place} has an id starting with '{prefix}'.",
            hint="`jkctl kernels list` shows the kernels and their ids.",
        )
    if len(matches) > 1:
        shown = ", ".join(_distinct_prefixes(matches)[:5])
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        raise UsageError(
            f"The kernel id prefix '{prefix}' is ambiguous: it matches {shown}{more}.",
            hint="Type more characters of the id.",
        )
    return matches[0]


def _distinct_prefixes(ids: list[str]) -> list[str]:
    """Each id cut to the shortest prefix (at least SHORT characters) no other id shares."""
    shown = []
    for kernel_id in ids:
        others = [other for other in ids if other != kernel_id]
        length = SHORT
        while length < len(kernel_id) and any(
            other.startswith(kernel_id[:length]) for other in others
        ):
            length += 1
        shown.append(kernel_id[:length])
    return shown
