from __future__ import annotations

import subprocess
import sys

import pytest

from jkctl import __version__
from jkctl.cli.main import render_error
from jkctl.errors import KernelNotFound


def jkctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jkctl", *args], capture_output=True, text=True, check=False
    )


def test_version() -> None:
    result = jkctl("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_commands(flag: str) -> None:
    result = jkctl(flag)
    assert result.returncode == 0, result.stderr
    assert "Usage: jkctl" in result.stdout
    assert "Commands" in result.stdout or "Options" in result.stdout


def test_unknown_command_is_a_usage_error_not_a_traceback() -> None:
    result = jkctl("frobnicate")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "No such command" in result.stderr


def test_error_rendering_has_message_hint_and_reference() -> None:
    text = render_error(KernelNotFound("no kernel matches 'abc'", hint="run `jkctl kernels list`"))
    assert text.splitlines() == [
        "error: no kernel matches 'abc'",
        "hint: run `jkctl kernels list`",
        "(kernel-not-found)",
    ]
