"""Quantity parsing and printing, against what the API server accepts and prints."""

from __future__ import annotations

from fractions import Fraction

import pytest

from tests.kubesim.quantity import (
    PARSE_ERROR,
    Format,
    QuantityError,
    format_cpu,
    format_memory,
    parse,
    parse_cpu,
    parse_memory,
    parse_quantity,
    total,
)


@pytest.mark.parametrize(
    ("text", "value", "fmt"),
    [
        ("500m", Fraction(1, 2), Format.DECIMAL_SI),
        ("2", Fraction(2), Format.DECIMAL_SI),
        ("1Gi", Fraction(2**30), Format.BINARY_SI),
        ("1G", Fraction(10**9), Format.DECIMAL_SI),
        ("1e3", Fraction(1000), Format.DECIMAL_EXPONENT),
        ("1E3", Fraction(1000), Format.DECIMAL_EXPONENT),
        ("1.5", Fraction(3, 2), Format.DECIMAL_SI),
        (".5", Fraction(1, 2), Format.DECIMAL_SI),
        ("-1k", Fraction(-1000), Format.DECIMAL_SI),
        ("+3Ki", Fraction(3072), Format.BINARY_SI),
        ("1E", Fraction(10**18), Format.DECIMAL_SI),
        ("100n", Fraction(1, 10**7), Format.DECIMAL_SI),
    ],
)
def test_parse(text: str, value: Fraction, fmt: Format) -> None:
    quantity = parse(text)
    assert quantity.value == value
    assert quantity.format is fmt


@pytest.mark.parametrize("text", ["", "abc", "1x", "1ki", "--1", "1.2.3", "m", "1 Gi"])
def test_refuses_what_the_server_refuses(text: str) -> None:
    with pytest.raises(QuantityError):
        parse(text)


def test_the_error_is_the_servers_message() -> None:
    with pytest.raises(QuantityError) as raised:
        parse("abc")
    assert str(raised.value) == (
        "quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )
    assert str(raised.value) == PARSE_ERROR


def test_finer_than_nano_rounds_up() -> None:
    assert parse("0.0000000001").value == Fraction(1, 10**9)


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("500m", "500m"),
        ("1500m", "1500m"),
        ("2000m", "2"),
        ("1000", "1k"),
        ("1500", "1500"),
        ("0.5", "500m"),
        ("1Gi", "1Gi"),
        ("1536Mi", "1536Mi"),
        ("1.5Gi", "1536Mi"),
        ("1024", "1024"),
        ("512", "512"),
        ("0.5Ki", "512"),
        ("1e3", "1e3"),
        ("1.5e3", "1500"),
        ("0", "0"),
        ("0Gi", "0"),
        ("-250m", "-250m"),
    ],
)
def test_canonical_text(text: str, printed: str) -> None:
    assert str(parse(text)) == printed


def test_sums_keep_the_left_format_and_compare_by_amount() -> None:
    summed = total([parse("512Mi"), parse("512Mi")])
    assert str(summed) == "1Gi"
    assert str(total([parse("500m"), parse("500m")])) == "1"
    assert str(total([])) == "0"
    assert str(parse("0") + parse("1Gi")) == "1Gi"
    assert str(parse("1k") + parse("1Ki")) == "2024"
    assert parse("1Gi") == parse("1073741824")
    assert parse("1") > parse("999m")
    assert parse("1.5").millis() == 1500
    assert parse("1Ki").units() == 1024
    assert parse("1m").units() == 1


def test_scheduler_shorthands() -> None:
    assert [parse_cpu(v) for v in ("500m", "1", "0.1", "2.5", "1e3", "1u", 2)] == [
        500,
        1000,
        100,
        2500,
        1_000_000,
        1,
        2000,
    ]
    assert [parse_memory(v) for v in ("1Gi", "1G", "1.5Gi", "100m", 128974848)] == [
        2**30,
        10**9,
        3 * 2**29,
        1,
        128974848,
    ]
    assert parse_quantity("1.5k") == Fraction(1500)
    assert (format_cpu(2000), format_cpu(250), format_cpu(1500)) == ("2", "250m", "1500m")
    # Binary sizes below 1Ki print as decimal, as the server's CanonicalizeBytes does.
    assert (format_memory(2**30), format_memory(3 * 2**20), format_memory(1000)) == (
        "1Gi",
        "3Mi",
        "1k",
    )
