"""Kubernetes resource quantities: parse "500m", "1Gi", "1G", "1e3" the way the API server does.

The scheduler (requests against allocatable) and the API server's quota
admission both need them. Quantities are exact (`Fraction`), as in
apimachinery's `resource.Quantity`; CPU is compared in millicores and memory
in bytes, each rounded up as the real server rounds a fractional milli-value.
What it does not do: canonical re-serialisation beyond the simple forms
`format_cpu` and `format_memory` print.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$"
)


class QuantityError(ValueError):
    """Not a quantity; the message is the API server's."""


def parse_quantity(text: str | int | float) -> Fraction:
    """The exact value of a quantity in base units ("1Gi" -> 1073741824, "500m" -> 1/2)."""
    if isinstance(text, int | float):
        return Fraction(text)
    match = _QUANTITY.match(text.strip())
    if not match:
        raise QuantityError(
            f"quantities must match the regular expression "
            f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (got {text!r})"
        )
    number, exponent, suffix = match.groups()
    value = Fraction(number)
    if exponent:
        value *= Fraction(10) ** int(exponent[1:])
    elif suffix in _BINARY:
        value *= _BINARY[suffix]
    elif suffix:
        value *= _DECIMAL[suffix]
    return value


def parse_cpu(text: str | int | float) -> int:
    """CPU in millicores, rounded up ("500m" -> 500, "1" -> 1000, "0.1" -> 100)."""
    return math.ceil(parse_quantity(text) * 1000)


def parse_memory(text: str | int | float) -> int:
    """Memory (or any countable resource) in whole units, rounded up ("1Gi" -> 1073741824)."""
    return math.ceil(parse_quantity(text))


def format_cpu(millicores: int) -> str:
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def format_memory(size: int) -> str:
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if size and size % _BINARY[suffix] == 0:
            return f"{size // _BINARY[suffix]}{suffix}"
    return str(size)
