"""The stock Dockerfiles keep the properties jkctl relies on.

A light reading, not a linter: continuation lines are joined, comments
dropped, and `ARG` defaults substituted so that `FROM ${X}` can be checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jkctl import paths

IMAGES = paths.bundled("images")
STOCK = ("python", "r", "conda")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    parsed = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            parsed.append((keyword.upper(), " ".join(rest.split())))
    return parsed


def expand(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), value)


def arg_defaults(parsed: list[tuple[str, str]]) -> dict[str, str]:
    return dict(rest.split("=", 1) for keyword, rest in parsed if keyword == "ARG" and "=" in rest)


def runs(parsed: list[tuple[str, str]]) -> str:
    return "\n".join(rest for keyword, rest in parsed if keyword == "RUN")


@pytest.mark.parametrize("image", STOCK)
def test_runs_as_a_numeric_non_root_user(image: str) -> None:
    users = [
        rest for keyword, rest in instructions(IMAGES / image / "Dockerfile") if keyword == "USER"
    ]
    assert users, "no USER: the image would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, (
        f"final USER {users[-1]!r} must be a numeric non-root uid"
    )
    assert not gid or gid.isdigit()


@pytest.mark.parametrize("image", STOCK)
def test_no_launcher_and_no_entrypoint(image: str) -> None:
    parsed = instructions(IMAGES / image / "Dockerfile")
    keywords = {keyword for keyword, _ in parsed}
    assert "ENTRYPOINT" not in keywords
    assert "CMD" not in keywords
    for keyword, rest in parsed:
        if keyword in {"COPY", "ADD"}:
            sources = [word for word in rest.split() if not word.startswith("--")][:-1]
            assert not any(re.search(r"launch|entrypoint|\.sh$", s) for s in sources), rest


@pytest.mark.parametrize("image", STOCK)
def test_base_image_is_pinned_and_has_a_shell(image: str) -> None:
    parsed = instructions(IMAGES / image / "Dockerfile")
    args = arg_defaults(parsed)
    bases = [expand(rest.split()[0], args) for keyword, rest in parsed if keyword == "FROM"]
    assert len(bases) == 1
    name, _, tag = bases[0].rpartition(":")
    assert name and tag and tag != "latest", bases[0]
    # jkctl wraps the kernel in a POSIX sh watchdog: no distroless or scratch bases.
    assert not re.search(r"distroless|scratch", bases[0])


def test_python_image_installs_ipykernel() -> None:
    parsed = instructions(IMAGES / "python" / "Dockerfile")
    assert re.search(r"pip install --no-cache-dir \S*ipykernel", runs(parsed))
    assert arg_defaults(parsed)["IPYKERNEL_VERSION"]


def test_r_image_installs_irkernel() -> None:
    parsed = instructions(IMAGES / "r" / "Dockerfile")
    assert re.search(r"install2\.r --error .*IRkernel", runs(parsed))
    assert "library(IRkernel)" in runs(parsed)


def test_conda_template_creates_the_named_environment_and_cleans_up() -> None:
    parsed = instructions(IMAGES / "conda" / "Dockerfile")
    args = arg_defaults(parsed)
    assert {"JKCTL_ENV_NAME", "JKCTL_ENV_FILE", "JKCTL_EXTRA_PACKAGES"} <= args.keys()
    commands = runs(parsed)
    assert 'micromamba create --yes --name "${JKCTL_ENV_NAME}" --file' in commands
    assert "micromamba clean --all --yes" in commands
    assert '"/opt/conda/envs/${JKCTL_ENV_NAME}/bin/python" -c "import ipykernel"' in commands
    # The base image sets ENV ENV_NAME, which would override an ARG of that name.
    assert "ENV_NAME" not in args


def test_readme_lists_every_image() -> None:
    readme = (IMAGES / "README.md").read_text()
    for image in STOCK:
        assert f"`{image}/`" in readme
