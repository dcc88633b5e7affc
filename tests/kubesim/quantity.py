"""Resource quantities ("500m", "2", "1Gi", "1G", "1e3"), read and printed as the API does.

kubesim needs quantities in three places: validation (a request of "abc" is
refused with the real message), quota admission (sums compared with limits,
printed in the real "exceeded quota" message) and the kubelet's scheduler
(fits a pod onto a node). All three use this one parser.

Values are exact (`Fraction`), rounded up to nano units as the API server
rounds them. Printing follows the server's canonical form, which keeps the
quantity's format (DecimalSI "1500m", BinarySI "1536Mi", DecimalExponent
"1e3"): a sum takes the format of its left operand unless that is zero, as
`Quantity.Add` does. `parse` gives the whole quantity; `parse_quantity`,
`parse_cpu`, `parse_memory`, `format_cpu` and `format_memory` are the
scheduler's shorthands (exact value, millicores, bytes).

Not here: the full `inf.Dec` arithmetic, or negative-exponent binary suffixes
(the API has none).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction

QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
PARSE_ERROR = f"quantities must match the regular expression '{QUANTITY_PATTERN}'"

_QUANTITY = re.compile(QUANTITY_PATTERN)
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]*)?$|^\.[0-9]+$")
_EXPONENT = re.compile(r"^[eE]([-+]?[0-9]+)$")
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15}
_DECIMAL_SUFFIXES["E"] = 18
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {exp: suffix for suffix, exp in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_EXPONENT = {0: "", **{exp: suffix for suffix, exp in _BINARY_SUFFIXES.items()}}
_NANO = 10**9


class Format(Enum):
    DECIMAL_SI = "DecimalSI"
    BINARY_SI = "BinarySI"
    DECIMAL_EXPONENT = "DecimalExponent"


class QuantityError(ValueError):
    """The text is not a quantity; the message is the API server's."""


@dataclass(frozen=True)
class Quantity:
    value: Fraction
    format: Format = Format.DECIMAL_SI

    # -- arithmetic, keeping the left operand's format --------------------------

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.value + other.value, self._format_with(other))

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.value - other.value, self._format_with(other))

    def _format_with(self, other: Quantity) -> Format:
        # As `Quantity.Add`: a zero takes the other operand's format, so sums
        # that start from zero print as "1Gi", not "1073741824".
        return other.format if self.value == 0 else self.format

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __le__(self, other: Quantity) -> bool:
        return self.value <= other.value

    def __gt__(self, other: Quantity) -> bool:
        return self.value > other.value

    def __ge__(self, other: Quantity) -> bool:
        return self.value >= other.value

    def __eq__(self, other: object) -> bool:
        # Equal amounts are equal quantities, whatever their format: 1Gi == 1073741824.
        return isinstance(other, Quantity) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __bool__(self) -> bool:
        return self.value != 0

    # -- views ------------------------------------------------------------------

    def millis(self) -> int:
        """The amount in thousandths, rounded up (`MilliValue`): CPU "500m" -> 500."""
        return math.ceil(self.value * 1000)

    def units(self) -> int:
        """The amount rounded up to a whole number (`Value`): memory "1Ki" -> 1024."""
        return math.ceil(self.value)

    def __str__(self) -> str:
        return canonical(self.value, self.format)

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"


ZERO = Quantity(Fraction(0))


def parse(text: str | int | float) -> Quantity:
    """Parse a quantity, keeping its format; `QuantityError` carries the server's message."""
    text = text.strip() if isinstance(text, str) else str(text)
    match = _QUANTITY.match(text)
    if not match:
        raise QuantityError(PARSE_ERROR)
    number, suffix = match.groups()
    sign = -1 if number.startswith("-") else 1
    digits = number.lstrip("+-")
    if not _NUMBER.match(digits):
        raise QuantityError(PARSE_ERROR)
    amount = Fraction(digits)
    if suffix in _BINARY_SUFFIXES:
        amount *= 2 ** _BINARY_SUFFIXES[suffix]
        fmt = Format.BINARY_SI
    elif suffix in _DECIMAL_SUFFIXES:
        amount *= Fraction(10) ** _DECIMAL_SUFFIXES[suffix]
        fmt = Format.DECIMAL_SI
    elif exponent := _EXPONENT.match(suffix):
        amount *= Fraction(10) ** int(exponent.group(1))
        fmt = Format.DECIMAL_EXPONENT
    else:
        raise QuantityError("unable to parse quantity's suffix")
    # The server keeps nano precision and rounds anything finer up.
    amount = Fraction(math.ceil(amount * _NANO), _NANO)
    return Quantity(sign * amount, fmt)


# -- shorthands for the scheduler: exact values, CPU in millicores, sizes in units --


def parse_quantity(text: str | int | float) -> Fraction:
    """The exact amount in base units: "1Gi" -> 1073741824, "500m" -> 1/2."""
    return parse(text).value


def parse_cpu(text: str | int | float) -> int:
    """CPU in millicores, rounded up ("500m" -> 500, "1" -> 1000, "0.1" -> 100)."""
    return parse(text).millis()


def parse_memory(text: str | int | float) -> int:
    """Memory (or any countable resource) in whole units, rounded up ("1Gi" -> 1073741824)."""
    return parse(text).units()


def format_cpu(millicores: int) -> str:
    """Millicores as the API prints CPU: 2000 -> "2", 250 -> "250m"."""
    return canonical(Fraction(millicores, 1000), Format.DECIMAL_SI)


def format_memory(size: int) -> str:
    """Bytes as the API prints binary sizes: 1073741824 -> "1Gi", 1000 -> "1000"."""
    return canonical(Fraction(size), Format.BINARY_SI)


def is_quantity(value: object) -> bool:
    if not isinstance(value, (str, int, float)):
        return False
    try:
        parse(str(value))
    except QuantityError:
        return False
    return True


def canonical(value: Fraction, fmt: Format) -> str:
    """The server's canonical text for an amount in a format."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if fmt is Format.BINARY_SI and (amount < 1024 or amount.denominator != 1):
        fmt = Format.DECIMAL_SI  # as the server does: small or fractional shows decimal
    if fmt is Format.BINARY_SI:
        mantissa, exponent = int(amount), 0
        while mantissa % 1024 == 0 and exponent < 60:
            mantissa //= 1024
            exponent += 10
        return f"{sign}{mantissa}{_BINARY_BY_EXPONENT[exponent]}"
    mantissa, exponent = math.ceil(amount * _NANO), -9
    while mantissa % 1000 == 0 and exponent < 18:
        mantissa //= 1000
        exponent += 3
    if fmt is Format.DECIMAL_EXPONENT:
        return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")
    return f"{sign}{mantissa}{_DECIMAL_BY_EXPONENT[exponent]}"


def total(quantities: list[Quantity]) -> Quantity:
    """The sum, in the first quantity's format (zero if there are none)."""
    if not quantities:
        return ZERO
    result = quantities[0]
    for quantity in quantities[1:]:
        result = result + quantity
    return result
