"""Quantities as the API server stores them, and as people read them."""

from __future__ import annotations

from fractions import Fraction

import pytest

from jkctl.kube import amounts


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("64", "64"),
        ("0.5", "500m"),
        ("1.5", "1500m"),
        ("3500m", "3500m"),
        ("1000m", "1"),
        ("64000", "64k"),
        ("256Gi", "256Gi"),
        ("4096Mi", "4Gi"),
        ("1536Mi", "1536Mi"),
        ("0.5Gi", "512Mi"),
        ("512", "512"),
        ("100Ki", "100Ki"),
        ("1e3", "1e3"),
        ("2G", "2G"),
        ("2000M", "2G"),
    ],
)
def test_canonical_as_the_api_server_stores_it(text: str, stored: str) -> None:
    assert amounts.canonical(text) == stored
    assert amounts.parse(stored) == amounts.parse(text)


@pytest.mark.parametrize("text", ["4GB", "1 Gi", "Gi", "", "1.2.3", "0x10", "1Gb", "--1"])
def test_what_the_api_server_refuses_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        amounts.parse(text)


def test_amounts_for_people() -> None:
    assert amounts.cpus(Fraction(64)) == "64"
    assert amounts.cpus(Fraction(1, 2)) == "0.5"
    assert amounts.cpus(Fraction(1250, 1000)) == "1.25"
    assert amounts.size(amounts.parse("256Gi")) == "256 GiB"
    assert amounts.size(amounts.parse("1536Mi")) == "1.5 GiB"
    assert amounts.size(amounts.parse("320Mi")) == "320 MiB"
    assert amounts.size(amounts.parse("2G")) == "1.9 GiB"
    assert amounts.size(Fraction(100)) == "100 bytes"
    assert amounts.size(Fraction(0)) == "0"
    assert amounts.count(Fraction(4)) == "4"
