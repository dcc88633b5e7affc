from __future__ import annotations

from pathlib import Path

import pytest

from jkctl.errors import EnvironmentSpecError
from jkctl.images.envfile import (
    SpecKind,
    load_environment_file,
    package_name,
    parse_environment,
)
from tests.images.fakes import DATA


def test_plain_file_reads_name_and_dependencies() -> None:
    env = load_environment_file(DATA / "plain.yml")
    assert env.name == "stats"
    assert env.kind is SpecKind.YAML
    assert env.channels == ()
    assert env.dependencies == ("python=3.12", "numpy>=1.26", "pandas")
    assert env.pip is None
    assert not env.has_package("ipykernel")


def test_pip_section_is_kept_verbatim() -> None:
    env = load_environment_file(DATA / "with_pip.yml")
    assert env.pip == (
        "transformers==4.46.3",
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        "torch==2.5.1+cpu",
        "git+https://github.com/example/tokenizers-extra.git@v1.2",
    )
    assert env.has_package("ipykernel")


def test_channel_syntaxes_and_extra_keys() -> None:
    env = load_environment_file(DATA / "with_channels.yml")
    assert env.channels == (
        "conda-forge",
        "conda-forge/label/gdal_rc",
        "https://conda.example.com/team-channel",
        "file:///srv/conda/local-channel",
        "nodefaults",
    )
    assert env.extra == {"variables": {"PROJ_NETWORK": "ON"}}


def test_explicit_spec_needs_name_and_keeps_text() -> None:
    env = load_environment_file(DATA / "explicit.txt", name="locked")
    assert env.kind is SpecKind.EXPLICIT
    assert env.name == "locked"
    assert len(env.package_urls) == 4
    assert env.explicit_text == (DATA / "explicit.txt").read_text()
    assert env.has_package("numpy")
    assert env.has_package("_libgcc_mutex")
    assert not env.has_package("ipykernel")


def test_name_option_overrides_the_file() -> None:
    assert load_environment_file(DATA / "plain.yml", name="other").name == "other"


def test_prefix_from_an_export_is_dropped() -> None:
    env = parse_environment(
        "name: x\ndependencies: [numpy]\nprefix: /Users/me/miniforge3/envs/x\n", source="e.yml"
    )
    assert env.extra == {}


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("numpy", "numpy"),
        ("numpy>=1.26", "numpy"),
        ("conda-forge::GDAL >=3.8", "gdal"),
        ("python=3.12", "python"),
        ("scikit-learn[version='>=1.5']", "scikit-learn"),
    ],
)
def test_package_name(spec: str, name: str) -> None:
    assert package_name(spec) == name


def error_for(text: str, *, name: str | None = None) -> EnvironmentSpecError:
    with pytest.raises(EnvironmentSpecError) as caught:
        parse_environment(text, source="env.yml", name=name)
    return caught.value


def test_no_name_and_no_option() -> None:
    error = error_for("dependencies: [numpy]\n")
    assert error.message == "env.yml has no `name` and no --name was given."
    assert error.hint == "add `name: myenv` to env.yml, or pass --name myenv"


def test_explicit_spec_without_name_option() -> None:
    error = error_for("@EXPLICIT\nhttps://x.org/c/linux-64/numpy-2.1.3-py312_0.conda\n")
    assert error.message == (
        "env.yml is an explicit spec, which has no `name`, and no --name was given."
    )
    assert error.hint == "pass --name myenv to name the environment"


@pytest.mark.parametrize("name", ["my env", "-x", "x" * 58, "geo/1"])
def test_names_that_cannot_become_a_kernelspec(name: str) -> None:
    error = error_for(f"name: '{name}'\ndependencies: [numpy]\n")
    assert error.message == f"env.yml: `name` {name!r} cannot name a kernel image environment."
    assert error.hint is not None and "conda-NAME" in error.hint


def test_base_is_taken() -> None:
    error = error_for("name: base\ndependencies: [numpy]\n")
    assert "`name` is 'base'" in error.message
    assert error.hint is not None and "--name" in error.hint


@pytest.mark.parametrize("dependencies", ["", "dependencies: []\n", "dependencies:\n"])
def test_no_dependencies(dependencies: str) -> None:
    error = error_for(f"name: x\n{dependencies}")
    assert error.message == "env.yml has no `dependencies`, so the environment would be empty."
    assert error.hint is not None and "dependencies:" in error.hint


def test_dependencies_not_a_list() -> None:
    error = error_for("name: x\ndependencies: numpy\n")
    assert error.message == "env.yml: `dependencies` must be a list, not str."


def test_number_instead_of_spec() -> None:
    error = error_for("name: x\ndependencies:\n  - numpy\n  - 3.9\n")
    assert error.message == "env.yml: `dependencies[1]` is 3.9, not a package spec."
    assert error.hint is not None and "quote" in error.hint


def test_pip_section_not_a_list() -> None:
    error = error_for("name: x\ndependencies:\n  - pip\n  - pip: requests\n")
    assert error.message == (
        "env.yml: `dependencies[1].pip` must be a non-empty list of pip requirements, "
        "not 'requests'."
    )
    assert error.hint is not None and "'- pip:'" in error.hint


def test_pip_section_with_a_non_string() -> None:
    error = error_for("name: x\ndependencies:\n  - pip:\n      - requests\n      - {a: 1}\n")
    assert error.message == (
        "env.yml: `dependencies[0].pip[1]` is {'a': 1}, not a pip requirement."
    )


@pytest.mark.parametrize(
    "requirement", ["-r requirements.txt", "-e .", "./vendor/pkg", "mypkg @ file:///tmp/x.whl"]
)
def test_pip_requirement_on_a_local_file(requirement: str) -> None:
    error = error_for(f"name: x\ndependencies:\n  - pip:\n      - '{requirement}'\n")
    assert error.message == (
        f"env.yml: `dependencies[0].pip[0]` {requirement!r} refers to a file on this machine, "
        "which the image build cannot see."
    )


def test_mapping_other_than_pip() -> None:
    error = error_for("name: x\ndependencies:\n  - numpy\n  - conda: [scipy]\n")
    assert error.message == (
        "env.yml: `dependencies[1]` is a mapping with 'conda'; the only mapping allowed in "
        "dependencies is `pip:`."
    )


def test_two_pip_sections() -> None:
    error = error_for("name: x\ndependencies:\n  - pip: [a]\n  - pip: [b]\n")
    assert error.message == "env.yml: `dependencies[1]` is a second `pip:` section."


@pytest.mark.parametrize(
    "channel",
    [
        "http://conda.example.com/insecure",
        "conda forge",
        "conda-forge/gdal_rc",
        "s3://bucket/channel",
        "file://relative/path",
    ],
)
def test_unknown_channel_syntax(channel: str) -> None:
    error = error_for(f"name: x\nchannels:\n  - conda-forge\n  - '{channel}'\ndependencies: [a]\n")
    assert error.message == (
        f"env.yml: `channels[1]` {channel!r} is not a channel the build understands."
    )
    assert error.hint == (
        "allowed: a channel name (conda-forge), a label (conda-forge/label/rc), "
        "an https:// URL or a file:// path"
    )


def test_channels_not_a_list() -> None:
    error = error_for("name: x\nchannels: conda-forge\ndependencies: [a]\n")
    assert error.message == "env.yml: `channels` must be a list, not str."


def test_invalid_yaml_names_the_line() -> None:
    error = error_for("name: x\ndependencies:\n  - [unclosed\n")
    assert error.message.startswith("env.yml is not valid YAML at line 4")


def test_neither_format() -> None:
    error = error_for("numpy=1.26\npandas\n")
    assert error.message == "env.yml is neither an environment.yml nor an explicit spec file."


def test_conda_lock_file_is_pointed_at_render() -> None:
    error = error_for("version: 1\nmetadata: {}\npackage: []\n")
    assert "conda-lock lock file" in error.message
    assert error.hint is not None and "conda-lock render --kind explicit" in error.hint


def test_explicit_line_that_is_not_a_url() -> None:
    error = error_for("@EXPLICIT\nhttps://x.org/c/linux-64/a-1-0.conda\nnumpy=1.26\n", name="x")
    assert error.message == "env.yml: line 3 'numpy=1.26' is not a package URL."


def test_explicit_spec_for_another_platform() -> None:
    error = error_for("# platform: osx-arm64\n@EXPLICIT\nhttps://x.org/a-1-0.conda\n", name="x")
    assert error.message == (
        "env.yml: line 1 says the spec was locked for osx-arm64, but kernel images run on Linux."
    )
    error = error_for("@EXPLICIT\nhttps://x.org/conda-forge/win-64/a-1-0.conda\n", name="x")
    assert "locked for win-64" in error.message


def test_explicit_spec_without_packages() -> None:
    error = error_for("# platform: linux-64\n@EXPLICIT\n", name="x")
    assert error.message == (
        "env.yml lists no packages after @EXPLICIT, so the environment would be empty."
    )


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentSpecError) as caught:
        load_environment_file(tmp_path / "nope.yml")
    assert caught.value.message == f"the environment file {tmp_path / 'nope.yml'} does not exist."
