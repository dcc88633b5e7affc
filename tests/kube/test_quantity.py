"""Quantities: the API server's grammar, their values, and the mistakes worth naming."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jkctl.kube.quantity import format_cpu, format_memory, parse_quantity, quantity_problem


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2", Decimal(2)),
        ("500m", Decimal("0.5")),
        ("0.5", Decimal("0.5")),
        (".5", Decimal("0.5")),
        ("1Gi", Decimal(2**30)),
        ("1.5Mi", Decimal(3 * 2**19)),
        ("2G", Decimal(2 * 10**9)),
        ("1e3", Decimal(1000)),
        ("1E-3", Decimal("0.001")),
        ("100k", Decimal(100_000)),
        ("+1", Decimal(1)),
    ],
)
def test_values(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "2 cores", "4GB", "1gi", "Gi", "1.2.3", "1Gib", "0x10"])
def test_not_quantities(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("text", "resource", "expected"),
    [
        ("4GB", "memory", "is '4GB', which is not a Kubernetes quantity (Kubernetes writes 4G)"),
        ("2gi", "memory", "(Kubernetes writes 2Gi)"),
        ("2 cores", "cpu", "is '2 cores', which is not a Kubernetes quantity"),
        ("500m", "memory", "0.5 bytes, since m means thousandths"),
        ("-1", "cpu", "a negative amount"),
        ("0.5", "nvidia.com/gpu", "nvidia.com/gpu is only counted in whole units"),
    ],
)
def test_problems_say_what_is_wrong(text: str, resource: str, expected: str) -> None:
    problem = quantity_problem(text, resource=resource)
    assert problem is not None
    assert expected in problem


@pytest.mark.parametrize(
    ("text", "resource"), [("500m", "cpu"), ("4Gi", "memory"), ("1", "nvidia.com/gpu")]
)
def test_good_quantities_have_no_problem(text: str, resource: str) -> None:
    assert quantity_problem(text, resource=resource) is None


def test_formatting_for_tables() -> None:
    assert format_cpu("500m") == "0.5"
    assert format_cpu("4") == "4"
    assert format_memory("4294967296") == "4Gi"
    assert format_memory("1536Mi") == "1536Mi"
    assert format_memory("2G") == "2G"
    assert format_memory(None) == "-"
