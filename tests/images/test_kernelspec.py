from __future__ import annotations

import json
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from jkctl.errors import KernelspecExists, UsageError
from jkctl.images.kernelspec import (
    KernelOptions,
    Resources,
    check_image_reference,
    conda_kernelspec,
    register_kernelspec,
    write_kernelspec,
)


@pytest.mark.parametrize(
    "image",
    [
        "registry.example.com/team/kernel-geo:1",
        "localhost:5000/geo:2024.11-r1",
        "ghcr.io/org/sub/geo@sha256:" + "a" * 64,
        "geo",
    ],
)
def test_image_references_accepted(image: str) -> None:
    assert check_image_reference(image) == image


@pytest.mark.parametrize("image", ["Team/Geo:1", "geo:", "registry.example.com/geo:bad tag", ""])
def test_image_references_refused(image: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_image_reference(image)
    assert caught.value.message == f"--tag {image!r} is not an image reference."


def test_resources_request_and_limit() -> None:
    resources = Resources.from_options(cpu="500m:2", memory="8Gi", gpu=2)
    assert resources.to_json() == {
        "requests": {"cpu": "500m", "memory": "8Gi"},
        "limits": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "2"},
    }


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("cpu", "two", "--cpu 'two' is not a Kubernetes quantity."),
        ("memory", "8GB", "--memory '8GB' is not a Kubernetes quantity."),
        ("cpu", "4:2", "--cpu '4:2' requests more than its limit."),
        ("memory", "2Gi:1000Mi", "--memory '2Gi:1000Mi' requests more than its limit."),
    ],
)
def test_resource_errors(option: str, value: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        Resources.from_options(**{option: value})  # type: ignore[arg-type]
    assert caught.value.message == message
    assert caught.value.hint is not None and "REQUEST:LIMIT" in caught.value.hint


def write_spec(directory: Path, name: str = "geo", image: str = "r.example.com/geo:1") -> Path:
    spec = conda_kernelspec(name, KernelOptions(image=image))
    write_kernelspec(directory, spec)
    return directory


def test_registered_spec_loads_with_jupyter_client(tmp_path: Path) -> None:
    source = write_spec(tmp_path / "ctx" / "kernelspec")
    kernels = tmp_path / "data" / "kernels"
    target = register_kernelspec(source, "conda-geo", kernels_dir=kernels)
    assert target == kernels / "conda-geo"
    assert sorted(p.name for p in kernels.parent.iterdir()) == ["kernels"]  # no staging left

    spec = KernelSpecManager(kernel_dirs=[str(kernels)]).get_kernel_spec("conda-geo")
    assert spec.argv == [
        "/opt/conda/envs/geo/bin/python",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    assert spec.language == "python"
    assert spec.interrupt_mode == "message"
    assert spec.metadata["jkctl"]["image"] == "r.example.com/geo:1"


def test_registration_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    kernels = tmp_path / "kernels"
    register_kernelspec(write_spec(tmp_path / "a"), "conda-geo", kernels_dir=kernels)
    second = write_spec(tmp_path / "b", image="r.example.com/geo:2")
    with pytest.raises(KernelspecExists) as caught:
        register_kernelspec(second, "conda-geo", kernels_dir=kernels)
    assert caught.value.message == f"a kernelspec named conda-geo already exists in {kernels}."
    assert caught.value.hint is not None and "--force" in caught.value.hint

    register_kernelspec(second, "conda-geo", kernels_dir=kernels, force=True)
    written = json.loads((kernels / "conda-geo" / "kernel.json").read_text())
    assert written["metadata"]["jkctl"]["image"] == "r.example.com/geo:2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "kernels"]
