"""Exporting a local environment with (fake) conda or micromamba."""

from __future__ import annotations

from pathlib import Path

import pytest

from jkctl.errors import EnvironmentSpecError, UsageError
from jkctl.images.envfile import SpecKind
from jkctl.images.export import export_local_environment
from tests.images.fakes import fake_exporter, fake_path

CONDA_EXPORT = """\
name: geo
channels:
  - conda-forge
dependencies:
  - gdal=3.9.2
  - python=3.12.7
  - pip:
      - rio-tiler==7.0.1
prefix: /Users/me/miniforge3/envs/geo
"""


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path


def test_conda_is_preferred_and_exports_without_builds(bin_dir: Path) -> None:
    conda_log = fake_exporter(bin_dir, "conda", output=CONDA_EXPORT)
    micromamba_log = fake_exporter(bin_dir, "micromamba", output="unused")
    env = export_local_environment("geo", env={"PATH": fake_path(bin_dir)})
    assert conda_log.read_text() == "env export --no-builds -n geo\n"
    assert not micromamba_log.exists()
    assert env.kind is SpecKind.YAML
    assert env.name == "geo"
    assert env.source == "`conda env export --no-builds -n geo`"
    assert env.dependencies == ("gdal=3.9.2", "python=3.12.7")
    assert env.pip == ("rio-tiler==7.0.1",)
    assert env.extra == {}
    assert env.notes == ()


def test_micromamba_when_there_is_no_conda(bin_dir: Path) -> None:
    log = fake_exporter(
        bin_dir, "micromamba", output="name: geo\nchannels: [conda-forge]\ndependencies: [gdal]"
    )
    env = export_local_environment("geo", env={"PATH": fake_path(bin_dir)})
    assert log.read_text() == "env export --no-build -n geo\n"
    assert env.dependencies == ("gdal",)
    assert any("pip" in note for note in env.notes)


def test_neither_conda_nor_micromamba(bin_dir: Path) -> None:
    with pytest.raises(UsageError) as caught:
        export_local_environment("geo", env={"PATH": fake_path(bin_dir)})
    assert caught.value.message == (
        "neither conda nor micromamba is installed, so the local environment 'geo' "
        "cannot be exported."
    )
    assert caught.value.hint is not None and "environment.yml" in caught.value.hint


def test_unknown_environment(bin_dir: Path) -> None:
    fake_exporter(
        bin_dir,
        "conda",
        output="",
        stderr="EnvironmentLocationNotFound: Not a conda environment: geo",
        code=1,
    )
    with pytest.raises(UsageError) as caught:
        export_local_environment("geo", env={"PATH": fake_path(bin_dir)})
    assert caught.value.message == "conda could not export the environment 'geo' (exit code 1)."
    assert caught.value.context == "EnvironmentLocationNotFound: Not a conda environment: geo"
    assert caught.value.hint == "`conda env list` shows the environments there are"


def test_export_is_validated_like_a_file(bin_dir: Path) -> None:
    fake_exporter(bin_dir, "conda", output="name: geo\nchannels: [conda-forge]\n")
    with pytest.raises(EnvironmentSpecError) as caught:
        export_local_environment("geo", env={"PATH": fake_path(bin_dir)})
    assert caught.value.message == (
        "`conda env export --no-builds -n geo` has no `dependencies`, so the environment "
        "would be empty."
    )


def test_bad_name_is_refused_before_running_anything(bin_dir: Path) -> None:
    log = fake_exporter(bin_dir, "conda", output=CONDA_EXPORT)
    with pytest.raises(EnvironmentSpecError):
        export_local_environment("my env", env={"PATH": fake_path(bin_dir)})
    assert not log.exists()
