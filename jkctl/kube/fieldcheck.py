"""Checking hand-written JSON field by field, collecting every problem with its field's path.

Kernelspecs and profile files are written by hand, so a check should report
all that is wrong at once, each problem as "``metadata.jkctl.resources.requests.cpu``
is '2 cores', which is not a Kubernetes quantity" plus what the field takes.
A :class:`Checker` collects :class:`Problem`\\ s while the caller walks the
document; :func:`problems_error` turns them into one
:class:`~jkctl.errors.TemplateError` naming the file: the first problem is the
message, the others its context.

What each field takes is :mod:`.podfields`' business; this module only knows
JSON shapes, and how to check an object against a model of the `kubernetes`
package (imported only when such a field is present).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jkctl.errors import TemplateError

#: What a field check returns for a value it rejected (after recording why).
BAD: Any = object()


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong: the field's path, what is wrong with it, and what to do."""

    field: str
    what: str
    hint: str

    def sentence(self) -> str:
        return f"{self.field} {self.what}"


def describe(value: object) -> str:
    """A JSON value as an error message names it: `the string '2 cores'`, `an array`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return "an array" if isinstance(value, list | tuple) else "an object"


def problems_error(source: str, problems: Sequence[Problem]) -> TemplateError:
    """One error for all `problems` found in `source`."""
    first, *rest = problems
    context = "\n".join(f"also: {p.sentence()}; {p.hint}" for p in rest) or None
    return TemplateError(f"{source}: {first.sentence()}.", hint=first.hint, context=context)


class Checker:
    """Collects problems; its methods check one JSON shape each and return BAD on failure."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, what: str, hint: str) -> Any:
        self.problems.append(Problem(field=path, what=what, hint=hint))
        return BAD

    def wrong(self, path: str, value: object, allowed: str, *, why: str = "") -> Any:
        """`path is <value><why>`; hint: `path takes <allowed>.`"""
        return self.add(path, f"is {describe(value)}{why}", f"{path} takes {allowed}.")

    def raise_problems(self, source: str) -> None:
        if self.problems:
            raise problems_error(source, self.problems)

    def unknown(
        self, path: str, key: str, known: Sequence[str], *, meant: str | None = None
    ) -> Any:
        """`path` is a field nobody knows; the hint guesses (or says `meant`) and lists `known`."""
        close = [meant] if meant else difflib.get_close_matches(key, known, n=1)
        guess = f"Did you mean {close[0]}? " if close else ""
        parent = path.rpartition(".")[0]
        return self.add(
            path, "is not a field jkctl knows", f"{guess}{parent} takes: {', '.join(known)}."
        )

    def string(self, raw: object, path: str, *, allowed: str) -> Any:
        if not isinstance(raw, str):
            return self.wrong(path, raw, allowed, why=", not a string")
        return raw

    def mapping(self, raw: object, path: str, *, example: str) -> Mapping[str, Any] | None:
        if not isinstance(raw, Mapping):
            self.add(path, f"is {describe(raw)}, not an object", f"Write {path} as {example}.")
            return None
        return raw

    def array(self, raw: object, path: str, *, example: str) -> Sequence[Any] | None:
        if not isinstance(raw, list | tuple):
            self.add(path, f"is {describe(raw)}, not an array", f"Write {path} as {example}.")
            return None
        return raw

    def string_map(
        self,
        raw: object,
        path: str,
        *,
        example: str,
        key_problem: Callable[[str], str | None],
        key_allowed: str,
        value_problem: Callable[[str], str | None] | None = None,
        value_allowed: str = "a string",
    ) -> Any:
        """An object of strings, such as labels or env: keys and values checked."""
        found = self.mapping(raw, path, example=example)
        if found is None:
            return BAD
        checked: dict[str, str] = {}
        for key, value in found.items():
            where = f"{path}.{key}"
            problem = key_problem(key)
            if problem is not None:
                self.add(where, f"(the key) {problem}", f"Keys of {path} are {key_allowed}.")
            elif not isinstance(value, str):
                quote = f': quote it, "{value}"' if isinstance(value, int | float) else ""
                self.add(
                    where, f"is {describe(value)}, not a string", f"{where} takes a string{quote}."
                )
            elif value_problem is not None and (problem := value_problem(value)):
                self.add(where, problem, f"{where} takes {value_allowed}.")
            else:
                checked[key] = value
        return checked

    def kube_model(self, model: str, raw: object, path: str, *, reference: str) -> bool:
        """Check `raw` against the `kubernetes` package's `model` (V1Volume, ...)."""
        if not isinstance(raw, Mapping):
            self.add(path, f"is {describe(raw)}, not an object", f"See {reference}.")
            return False
        import pydantic
        from kubernetes import client as k8s_models

        try:
            getattr(k8s_models, model).model_validate(raw)
        except pydantic.ValidationError as exc:
            for error in exc.errors()[:3]:
                where = path + "".join(
                    f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
                )
                what = {
                    "extra_forbidden": "is not a field Kubernetes knows here",
                    "missing": "is required",
                }.get(error.get("type", ""), str(error.get("msg", "is invalid")).lower())
                self.add(where, what, f"See {reference}.")
            return False
        return True
