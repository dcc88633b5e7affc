"""Results in the format a script asks for: ``-o json`` or ``-o yaml`` on stdout.

Commands that show data take ``-o/--output``; the default is the human form
(a rich table, or text) and the others print the same data structured, and
nothing else, on stdout. Status and errors go to stderr regardless.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def output_option(default: str, *choices: str) -> Callable[[F], F]:
    """``-o/--output`` with the human `default` first and json, yaml after it."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice([default, *choices, "json", "yaml"]),
        default=default,
        show_default=True,
        help="Output format.",
    )


def emit(data: Any, output: str) -> None:
    """Print `data` as JSON or YAML on stdout."""
    if output == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
