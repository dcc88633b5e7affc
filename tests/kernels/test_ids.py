"""Kernel ids by unique prefix, as git takes hashes; and the short form tables show."""

from __future__ import annotations

import pytest

from jkctl.errors import KernelNotFound, UsageError
from jkctl.kernels.ids import resolve_kernel_id, short_id

IDS = [
    "3f2a9c10-0000-4000-8000-000000000001",
    "3f2a9c11-0000-4000-8000-000000000002",
    "7b00e4d2-0000-4000-8000-000000000003",
]


def test_short_ids_are_the_first_eight_characters() -> None:
    assert short_id(IDS[0]) == "3f2a9c10"


@pytest.mark.parametrize(
    ("prefix", "found"),
    [("7", IDS[2]), ("3F2A9C10", IDS[0]), (" 3f2a9c11 ", IDS[1]), (IDS[1], IDS[1])],
)
def test_a_unique_prefix_names_its_kernel(prefix: str, found: str) -> None:
    assert resolve_kernel_id(prefix, IDS) == found


def test_an_ambiguous_prefix_shows_what_tells_them_apart() -> None:
    with pytest.raises(UsageError) as raised:
        resolve_kernel_id("3f2a", IDS)
    assert raised.value.message == (
        "The kernel id prefix '3f2a' is ambiguous: it matches 3f2a9c10, 3f2a9c11."
    )
    assert raised.value.hint == "Type more characters of the id."


def test_no_match_says_where_it_looked() -> None:
    with pytest.raises(KernelNotFound) as raised:
        resolve_kernel_id("ffff", IDS, where="in namespace geo")
    assert raised.value.message == "No kernel in namespace geo has an id starting with 'ffff'."
    assert raised.value.exit_code == 2


def test_an_empty_prefix_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="cannot be empty"):
        resolve_kernel_id("  ", IDS)
