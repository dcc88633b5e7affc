"""Build contexts written from the images/conda template, for each kind of input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from jkctl.errors import TemplateError, UsageError
from jkctl.images.context import BuildContext, write_build_context
from jkctl.images.envfile import load_environment_file
from jkctl.images.kernelspec import KernelOptions, Resources
from tests.images.fakes import DATA

IMAGE = "registry.example.com/team/kernel:1"


def build(
    tmp_path: Path, sample: str, *, name: str | None = None, kernel: KernelOptions | None = None
) -> BuildContext:
    env = load_environment_file(DATA / sample, name=name)
    return write_build_context(env, kernel or KernelOptions(image=IMAGE), tmp_path / "ctx")


def dockerfile_args(context: BuildContext) -> dict[str, str]:
    text = context.dockerfile.read_text()
    return dict(re.findall(r"^ARG (JKCTL_\w+)=(.*)$", text, re.MULTILINE))


def test_plain_environment(tmp_path: Path) -> None:
    context = build(tmp_path, "plain.yml")
    assert sorted(p.name for p in context.directory.iterdir()) == [
        ".dockerignore",
        "Dockerfile",
        "environment.yml",
        "kernelspec",
    ]
    assert dockerfile_args(context) == {
        "JKCTL_ENV_NAME": "stats",
        "JKCTL_ENV_FILE": "environment.yml",
        "JKCTL_EXTRA_PACKAGES": "",
    }
    assert yaml.safe_load(context.environment_file.read_text()) == {
        "name": "stats",
        "channels": ["conda-forge"],
        "dependencies": ["python=3.12", "numpy>=1.26", "pandas", "ipykernel"],
    }
    assert any("added ipykernel" in note for note in context.notes)
    assert any("names no channel; using conda-forge" in note for note in context.notes)

    spec = json.loads((context.kernelspec_dir / "kernel.json").read_text())
    assert spec == context.kernelspec
    assert spec["argv"] == [
        "/opt/conda/envs/stats/bin/python",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    assert spec["display_name"] == "Python (conda: stats)"
    assert spec["language"] == "python"
    assert spec["metadata"]["jkctl"] == {
        "image": IMAGE,
        "resources": {
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "limits": {"cpu": "2", "memory": "4Gi"},
        },
    }
    assert context.kernelspec_name == "conda-stats"
    assert (context.directory / ".dockerignore").read_text() == "kernelspec/\n"


def test_pip_section_survives_untouched(tmp_path: Path) -> None:
    context = build(tmp_path, "with_pip.yml")
    document = yaml.safe_load(context.environment_file.read_text())
    assert document["dependencies"] == [
        "python=3.11",
        "ipykernel>=6.29",
        "pip",
        {
            "pip": [
                "transformers==4.46.3",
                "--extra-index-url https://download.pytorch.org/whl/cpu",
                "torch==2.5.1+cpu",
                "git+https://github.com/example/tokenizers-extra.git@v1.2",
            ]
        },
    ]
    assert document["channels"] == ["conda-forge"]
    assert not any("ipykernel" in note for note in context.notes)
    assert any("added pip" in note for note in context.notes)
    assert context.kernelspec["argv"][0] == "/opt/conda/envs/nlp/bin/python"


def test_channels_and_variables_are_carried_over(tmp_path: Path) -> None:
    context = build(
        tmp_path,
        "with_channels.yml",
        kernel=KernelOptions(
            image=IMAGE,
            display_name="Geo (GDAL 3.8)",
            resources=Resources.from_options(cpu="1:4", memory="8Gi", gpu=1),
        ),
    )
    document = yaml.safe_load(context.environment_file.read_text())
    assert document["channels"] == [
        "conda-forge",
        "conda-forge/label/gdal_rc",
        "https://conda.example.com/team-channel",
        "file:///srv/conda/local-channel",
        "nodefaults",
    ]
    assert document["dependencies"][-1] == "ipykernel"
    assert document["variables"] == {"PROJ_NETWORK": "ON"}
    assert any("file:///srv/conda/local-channel is a path" in note for note in context.notes)
    assert context.kernelspec["display_name"] == "Geo (GDAL 3.8)"
    assert context.kernelspec["metadata"]["jkctl"]["resources"] == {
        "requests": {"cpu": "1", "memory": "8Gi"},
        "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"},
    }


def test_explicit_spec_is_copied_and_ipykernel_topped_up(tmp_path: Path) -> None:
    context = build(tmp_path, "explicit.txt", name="locked")
    assert context.environment_file.name == "environment.txt"
    assert context.environment_file.read_text() == (DATA / "explicit.txt").read_text()
    assert dockerfile_args(context) == {
        "JKCTL_ENV_NAME": "locked",
        "JKCTL_ENV_FILE": "environment.txt",
        "JKCTL_EXTRA_PACKAGES": "ipykernel",
    }
    assert any("does not lock ipykernel" in note for note in context.notes)
    assert context.kernelspec["argv"][0] == "/opt/conda/envs/locked/bin/python"


def test_dockerfile_differs_from_the_template_only_in_filled_args(tmp_path: Path) -> None:
    context = build(tmp_path, "plain.yml")
    template = (Path(__file__).parents[2] / "images" / "conda" / "Dockerfile").read_text()
    changed = [
        (old, new)
        for old, new in zip(
            template.splitlines(), context.dockerfile.read_text().splitlines(), strict=True
        )
        if old != new
    ]
    assert changed == [("ARG JKCTL_ENV_NAME=kernel", "ARG JKCTL_ENV_NAME=stats")]


def test_rewriting_a_previous_context_switches_formats(tmp_path: Path) -> None:
    build(tmp_path, "explicit.txt", name="locked")
    context = build(tmp_path, "plain.yml")
    assert not (context.directory / "environment.txt").exists()
    assert context.environment_file.exists()


def test_a_folder_with_other_files_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "thesis.tex").write_text("precious")
    with pytest.raises(UsageError) as caught:
        build(tmp_path, "plain.yml")
    assert caught.value.message == (
        f"--context-dir {tmp_path / 'ctx'} already holds files jkctl did not write (thesis.tex)."
    )


def test_a_template_without_the_fill_in_lines_is_reported(tmp_path: Path) -> None:
    (tmp_path / "template").mkdir()
    (tmp_path / "template" / "Dockerfile").write_text("FROM scratch\nARG JKCTL_ENV_NAME=x\n")
    env = load_environment_file(DATA / "plain.yml")
    with pytest.raises(TemplateError) as caught:
        write_build_context(
            env, KernelOptions(image=IMAGE), tmp_path / "ctx", template_dir=tmp_path / "template"
        )
    assert "exactly one `ARG JKCTL_ENV_FILE=` line" in caught.value.message
