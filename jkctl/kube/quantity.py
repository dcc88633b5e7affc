"""Kubernetes resource quantities: checking their syntax, comparing them, showing them.

A quantity is what `resources.requests` and `resources.limits` hold: ``500m``,
``2``, ``0.5``, ``4Gi``, ``1G``, ``1e3``. :func:`parse_quantity` accepts exactly
the grammar the API server does (a signed decimal number, then a binary SI
suffix, a decimal SI suffix or a decimal exponent) and returns its value as a
:class:`~decimal.Decimal`, so ``1Gi`` and ``1073741824`` compare equal and a
request can be checked against its limit before the API server refuses it.

Kernelspec authors write quantities by hand, and a few mistakes are common
enough to name: ``4GB`` (not a suffix Kubernetes knows) and ``500m`` of memory
(half a byte). :func:`quantity_problem` says what is wrong with a quantity for
a given resource, in words fit for an error message.

Nothing here talks to the API or knows about kernelspecs.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<exponent>[eE][+-]?\d+)|(?P<decimal>[numkMGTPE]?))$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
# Suffixes people reach for that Kubernetes does not know, and what they meant.
_LOOKALIKES = {
    "kb": "k",
    "mb": "M",
    "gb": "G",
    "tb": "T",
    "kib": "Ki",
    "mib": "Mi",
    "gib": "Gi",
    "tib": "Ti",
    "ki": "Ki",
    "mi": "Mi",
    "gi": "Gi",
    "ti": "Ti",
    "g": "G",
}

#: What the hint says is allowed, per kind of resource.
CPU_ALLOWED = "a number of cores such as 2 or 0.5, or millicores such as 500m"
MEMORY_ALLOWED = "bytes with a suffix, such as 512Mi, 4Gi or 2G"
COUNT_ALLOWED = "a whole number such as 1"


def parse_quantity(text: str) -> Decimal:
    """The value of a quantity; ValueError if Kubernetes would not accept `text`."""
    found = _QUANTITY.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    try:
        number = Decimal(found["number"])
    except InvalidOperation as exc:  # pragma: no cover - the pattern only passes decimals
        raise ValueError(f"{text!r} is not a Kubernetes quantity") from exc
    if found["binary"]:
        return number * _BINARY[found["binary"]]
    if found["exponent"]:
        return number.scaleb(int(found["exponent"][1:]))
    return number * _DECIMAL[found["decimal"] or ""]


def quantity_problem(text: str, *, resource: str) -> str | None:
    """What is wrong with `text` as an amount of `resource` ("is '4GB', which ..."), or None."""
    try:
        value = parse_quantity(text)
    except ValueError:
        number = re.match(r"^\s*[+-]?[\d.]+\s*", text)
        suffix = text[number.end() :].strip() if number else ""
        meant = _LOOKALIKES.get(suffix.lower()) if number else None
        if meant is not None and number is not None:
            return (
                f"is {text!r}, which is not a Kubernetes quantity (Kubernetes writes "
                f"{number.group().strip()}{meant})"
            )
        return f"is {text!r}, which is not a Kubernetes quantity"
    if value < 0:
        return f"is {text!r}, a negative amount"
    if resource == "memory" and text.endswith("m") and value < 2**20:
        return f"is {text!r}: {value.normalize():f} bytes, since m means thousandths"
    if is_extended(resource) and value != value.to_integral_value():
        return f"is {text!r}, but {resource} is only counted in whole units"
    return None


def allowed(resource: str) -> str:
    """The hint's description of what `resource` takes."""
    if resource == "cpu":
        return CPU_ALLOWED
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        return MEMORY_ALLOWED
    return COUNT_ALLOWED


def is_extended(resource: str) -> bool:
    """Extended resources (`nvidia.com/gpu`): whole numbers, never overcommitted."""
    return "/" in resource and not resource.startswith(("kubernetes.io/", "requests."))


def format_cpu(text: str | None) -> str:
    """`500m` -> `0.5`, `2` -> `2`: cores, as a table shows them."""
    if not text:
        return "-"
    value = parse_quantity(text).normalize()
    return f"{value:f}"


def format_memory(text: str | None) -> str:
    """`4294967296` -> `4Gi`: in Ti, Gi or Mi when one divides it, else as written."""
    if not text:
        return "-"
    value = parse_quantity(text)
    for suffix in ("Ti", "Gi", "Mi"):
        factor = _BINARY[suffix]
        if value >= factor and value % factor == 0:
            return f"{value // factor}{suffix}"
    return text
