"""Durations as people write them (culling settings, `--idle`) and as tables show them."""

from __future__ import annotations

import pytest

from jkctl.durations import parse_duration, say_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("45s", 45),
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        (" 1H 30M ", 5400),
        ("0.5h", 1800),
        (120, 120),
    ],
)
def test_what_people_write(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "2 hours", "h", "1h30", "-5"])
def test_what_is_not_a_duration_says_what_is(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration|is negative"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0, "0s"), (12.7, "12s"), (250, "4m 10s"), (7500, "2h 5m"), (273600, "3d 4h")],
)
def test_the_two_largest_units_are_said(seconds: float, said: str) -> None:
    assert say_duration(seconds) == said
