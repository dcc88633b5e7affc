"""Resource amounts: quantities as the API server writes them, and as people read them.

Two audiences read the same numbers. The API server stores a quantity in
canonical form (``0.5`` comes back as ``500m``, ``1024Mi`` as ``1Gi``), so
anything jkctl writes and later compares — a team's quota, a LimitRange's
defaults — must be written canonically or every comparison would see a
change: :func:`canonical` does that, with the server's rules (the suffix
family is kept; binary amounts below 1Ki or fractional fall back to decimal).
People read "60 of 64 CPUs" and "250 GiB": :func:`cpus`, :func:`size` and
:func:`count` say amounts that way.

:func:`parse` accepts exactly the API server's grammar (through
:func:`.quantity.parse_quantity`) and returns the exact value as a
:class:`~fractions.Fraction` (``1Gi`` == ``1073741824``), which sums and
compares without rounding.

Nothing here talks to the API; what an amount is *for* (a quota, a request)
is the caller's business.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from .quantity import parse_quantity

_EXPONENT = re.compile(r"[0-9][eE][+-]?[0-9]+$")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_BY_SHIFT = {0: "", **{shift: suffix for suffix, shift in _BINARY.items()}}
_DECIMAL_BY_EXPONENT = {exponent: suffix for suffix, exponent in _DECIMAL.items()}
_NANO = 10**9
_SIZE_UNITS = (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))

#: How each kind of amount may be written, for error hints.
CPU_SYNTAX = "a number of CPUs such as 64 or 0.5, or millicores such as 500m"
MEMORY_SYNTAX = "bytes with a suffix such as 256Gi, 512Mi or 4G"
COUNT_SYNTAX = "a whole number such as 4"


def parse(text: str) -> Fraction:
    """The exact value of a quantity; ValueError if the API server would not accept ``text``."""
    value = Fraction(parse_quantity(text.strip()))
    # The server keeps nano precision and rounds anything finer up.
    return Fraction(math.ceil(value * _NANO), _NANO)


def canonical(text: str) -> str:
    """``text`` as the API server stores it: ``0.5`` -> ``500m``, ``4096Mi`` -> ``4Gi``."""
    text = text.strip()
    value = parse(text)
    if text.endswith(tuple(_BINARY)):
        return _binary(value)
    if _EXPONENT.search(text):
        mantissa, exponent = _decimal_parts(value)
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    return decimal(value)


def decimal(value: Fraction) -> str:
    """An amount in canonical decimal-SI form: 64 -> ``64``, 1/2 -> ``500m``, 64000 -> ``64k``."""
    mantissa, exponent = _decimal_parts(value)
    return f"{mantissa}{_DECIMAL_BY_EXPONENT[exponent]}"


def _binary(value: Fraction) -> str:
    if abs(value) < 1024 or value.denominator != 1:
        return decimal(value)  # as the server does: small or fractional amounts show decimal
    mantissa, shift = int(value), 0
    while mantissa % 1024 == 0 and shift < 60:
        mantissa //= 1024
        shift += 10
    return f"{mantissa}{_BINARY_BY_SHIFT[shift]}"


def _decimal_parts(value: Fraction) -> tuple[int, int]:
    if value == 0:
        return 0, 0
    mantissa, exponent = math.ceil(value * _NANO), -9
    while mantissa % 1000 == 0 and exponent < 18:
        mantissa //= 1000
        exponent += 3
    return mantissa, exponent


# -- for people ----------------------------------------------------------------------


def cpus(value: Fraction) -> str:
    """CPUs as a number: ``64``, ``0.5``, ``1.25`` (at most three decimals)."""
    return _number(value, places=3)


def size(value: Fraction) -> str:
    """Bytes in the largest binary unit that reads well: ``256 GiB``, ``1.5 GiB``, ``512 MiB``.

    Nothing is ``0``, which needs no unit.
    """
    if value == 0:
        return "0"
    for unit, factor in _SIZE_UNITS:
        if abs(value) >= factor:
            return f"{_number(value / factor, places=1)} {unit}"
    return f"{_number(value, places=0)} bytes"


def count(value: Fraction) -> str:
    """A whole count (GPUs, kernels): ``4``."""
    return _number(value, places=0)


def _number(value: Fraction, *, places: int) -> str:
    rounded = round(value, places)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{float(rounded):.{places}f}".rstrip("0").rstrip(".")
