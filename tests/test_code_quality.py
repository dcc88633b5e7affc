"""The code's shape is part of the suite: lint, strict types, and layering.

Run as tests so that `python -m pytest`, the README's one test command, is
also the one gate CI applies.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_tool(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; install the test extra: pip install -e '.[test]'")
    return found


def test_ruff_lint() -> None:
    result = run_tool(tool("ruff"), "check", "jkctl", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = run_tool(tool("ruff"), "format", "--check", "jkctl", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = run_tool(sys.executable, "-m", "mypy", "jkctl")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_layers() -> None:
    result = run_tool(tool("lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
