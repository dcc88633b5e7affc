"""Kernelspecs: search order, the metadata.jkctl block, broken specs, clear not-found errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from jkctl import paths
from jkctl.errors import KernelspecNotFound, TemplateError
from jkctl.kernels.specs import KernelSpecSource, load_spec
from tests.processes import write_kernelspec


def source(tmp_path: Path) -> KernelSpecSource:
    return KernelSpecSource.standard(
        extra=[tmp_path / "extra"],
        user_dir=tmp_path / "user",
        bundled_dir=paths.bundled("kernel-templates"),
    )


def test_bundled_python3_with_its_jkctl_block() -> None:
    spec = load_spec(paths.bundled("kernel-templates") / "python3")
    assert spec.name == "python3"
    assert spec.interrupt_mode == "message"
    assert spec.pod.image is not None
    assert spec.pod.image.startswith("quay.io/jupyter/")
    launch = spec.launch_spec()
    assert launch.argv == ("python", "-m", "ipykernel_launcher", "-f", "{connection_file}")
    assert launch.pod == spec.pod
    assert spec.resource_files() == {
        "logo-32x32": "logo-32x32.png",
        "logo-64x64": "logo-64x64.png",
    }


def test_first_folder_wins(tmp_path: Path) -> None:
    write_kernelspec(tmp_path / "user", "python3", argv=["user-python"], display_name="User")
    write_kernelspec(tmp_path / "extra", "python3", argv=["extra-python"], display_name="Extra")
    write_kernelspec(tmp_path / "user", "r", argv=["R"], language="R")
    specs = source(tmp_path).all()
    assert specs["python3"].display_name == "Extra"
    assert specs["r"].language == "R"
    assert source(tmp_path).get("python3").argv == ("extra-python",)


def test_a_broken_spec_is_skipped_in_listings_and_an_error_by_name(tmp_path: Path) -> None:
    broken = tmp_path / "user" / "broken"
    broken.mkdir(parents=True)
    (broken / "kernel.json").write_text("{not json")
    write_kernelspec(tmp_path / "user", "no-argv", argv=[])
    specs = source(tmp_path).all()
    assert "broken" not in specs
    assert "no-argv" not in specs
    assert "python3" in specs
    with pytest.raises(TemplateError, match="cannot be read"):
        source(tmp_path).get("broken")
    with pytest.raises(TemplateError, match="no argv"):
        source(tmp_path).get("no-argv")


@pytest.mark.parametrize("name", ["nope", "../python3", "python3/../x", ""])
def test_unknown_names_say_what_exists(tmp_path: Path, name: str) -> None:
    with pytest.raises(KernelspecNotFound) as raised:
        source(tmp_path).get(name)
    assert raised.value.hint is not None
    assert "python3" in raised.value.hint


def test_resources_cannot_escape_the_spec_folder(tmp_path: Path) -> None:
    spec = source(tmp_path).get("python3")
    assert spec.resource_path("logo-64x64.png") is not None
    assert spec.resource_path("../python3/kernel.json") is None
    assert spec.resource_path(".hidden") is None


def test_default_is_python3_else_the_first(tmp_path: Path) -> None:
    only = KernelSpecSource(dirs=(tmp_path / "user",))
    write_kernelspec(tmp_path / "user", "julia", argv=["julia"])
    assert only.default(only.all()) == "julia"
    assert source(tmp_path).default(source(tmp_path).all()) == "python3"


def test_a_bad_jkctl_field_breaks_only_its_spec_and_is_named(tmp_path: Path) -> None:
    folder = write_kernelspec(
        tmp_path / "user",
        "geo",
        argv=["python"],
        metadata={"jkctl": {"resources": {"requests": {"memory": "8GB"}}}},
    )
    catalog = source(tmp_path).catalog()
    assert "geo" in catalog.broken
    assert catalog.broken["geo"].folder == folder
    assert "python3" in catalog.specs
    assert "geo" not in source(tmp_path).all()
    with pytest.raises(TemplateError) as raised:
        source(tmp_path).get("geo")
    assert raised.value.message.startswith(
        f"{folder / 'kernel.json'}: metadata.jkctl.resources.requests.memory is '8GB'"
    )


def test_a_spec_without_a_jkctl_block_is_a_plain_jupyter_spec(tmp_path: Path) -> None:
    write_kernelspec(tmp_path / "user", "plain", argv=["python"])
    spec = source(tmp_path).get("plain")
    assert spec.pod.image is None
    assert spec.launch_spec().pod.resources.limits["memory"] == "4Gi"


def test_a_spec_uses_its_own_pod_template_else_its_neighbours(tmp_path: Path) -> None:
    own = write_kernelspec(tmp_path / "extra", "own", argv=["python"])
    (own / "kernel-pod.yaml.j2").write_text("kind: Pod\n")
    write_kernelspec(tmp_path / "extra", "neighbour", argv=["python"])
    write_kernelspec(tmp_path / "user", "mine", argv=["python"])
    (tmp_path / "extra" / "kernel-pod.yaml.j2").write_text("kind: Pod\n")
    specs = source(tmp_path).all()
    assert specs["own"].pod.pod_template == own / "kernel-pod.yaml.j2"
    assert specs["neighbour"].pod.pod_template == tmp_path / "extra" / "kernel-pod.yaml.j2"
    assert specs["mine"].pod.pod_template is None
    bundled = paths.bundled("kernel-templates")
    assert specs["python3"].pod.pod_template == bundled / "kernel-pod.yaml.j2"
