"""Quantities as the API server parses them."""

from __future__ import annotations

from fractions import Fraction

import pytest

from tests.kubesim.quantity import (
    QuantityError,
    format_cpu,
    format_memory,
    parse_cpu,
    parse_memory,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "millicores"),
    [
        ("500m", 500),
        ("1", 1000),
        ("0.1", 100),
        ("2.5", 2500),
        ("1e3", 1_000_000),
        ("1u", 1),
        (2, 2000),
    ],
)
def test_cpu(text: str, millicores: int) -> None:
    assert parse_cpu(text) == millicores


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1Gi", 2**30),
        ("1G", 10**9),
        ("1e3", 1000),
        ("128974848", 128974848),
        ("129M", 129 * 10**6),
        ("123Mi", 123 * 2**20),
        ("1.5Gi", 3 * 2**29),
        ("100m", 1),
    ],
)
def test_memory(text: str, size: int) -> None:
    assert parse_memory(text) == size


def test_exact_and_invalid() -> None:
    assert parse_quantity("1.5k") == Fraction(1500)
    assert parse_quantity(".5") == Fraction(1, 2)
    for bad in ("", "1Gb", "abc", "1 Gi", "--1"):
        with pytest.raises(QuantityError):
            parse_quantity(bad)


def test_format() -> None:
    assert (format_cpu(2000), format_cpu(250)) == ("2", "250m")
    assert (format_memory(2**30), format_memory(3 * 2**20), format_memory(1000)) == (
        "1Gi",
        "3Mi",
        "1000",
    )
