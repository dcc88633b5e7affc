from __future__ import annotations

from jkctl import errors


def test_payload_round_trip_keeps_the_most_specific_type() -> None:
    original = errors.QuotaExceeded(
        "team geo has 60 of 64 CPUs in use; this kernel asks for 8",
        hint="stop a kernel or ask for a smaller one",
        context="pods/create in namespace geo",
    )
    rebuilt = errors.JkctlError.from_payload(original.to_payload())
    assert type(rebuilt) is errors.QuotaExceeded
    assert isinstance(rebuilt, errors.KubeForbidden)
    assert rebuilt.message == original.message
    assert rebuilt.hint == original.hint
    assert rebuilt.context == original.context


def test_unknown_reference_falls_back_to_the_base_type() -> None:
    rebuilt = errors.JkctlError.from_payload({"reference": "from-the-future", "message": "x"})
    assert type(rebuilt) is errors.JkctlError


def test_references_are_unique_kebab_case() -> None:
    seen: dict[str, type[errors.JkctlError]] = {}
    for cls in errors._BY_REFERENCE.values():
        assert cls.reference == cls.reference.lower()
        assert " " not in cls.reference
        assert "_" not in cls.reference
        assert cls.reference not in seen, f"{cls} reuses {seen.get(cls.reference)}'s reference"
        seen[cls.reference] = cls
