"""Resource profiles: declared once, multiplied out over the specs that ask, overridable by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jkctl import paths
from jkctl.errors import TemplateError
from jkctl.kernels.specs import KernelSpecSource
from tests.processes import write_kernelspec

BUNDLED = paths.bundled("kernel-templates")
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def source(tmp_path: Path) -> KernelSpecSource:
    return KernelSpecSource.standard(
        extra=[tmp_path / "extra"], user_dir=tmp_path / "user", bundled_dir=BUNDLED
    )


def write_profiles(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "profiles.yaml"
    path.write_text(text)
    return path


def test_bundled_specs_come_in_every_profile_they_ask_for(tmp_path: Path) -> None:
    specs = source(tmp_path).all()
    assert {"python3-small", "python3-medium", "python3-large", "python3-gpu"} <= set(specs)
    assert {"r", "r-small", "r-medium", "r-large"} <= set(specs)
    gpu = specs["python3-gpu"]
    assert gpu.profile == "gpu"
    assert gpu.display_name == "Python 3 (jkctl) \N{EM DASH} GPU: 1 NVIDIA GPU, 8 CPUs, 16 GiB"
    assert gpu.argv == specs["python3"].argv
    assert gpu.resource_dir == BUNDLED / "python3"  # its logos are python3's
    assert gpu.pod.resources.gpus == 1
    assert gpu.pod.node_selector == {"nvidia.com/gpu.present": "true"}
    assert gpu.pod.tolerations == (GPU_TOLERATION,)
    assert gpu.pod.image == specs["python3"].pod.image
    # What the REST API shows is what the pod gets, without the profile list.
    assert gpu.to_dict()["metadata"]["jkctl"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "profiles" not in gpu.to_dict()["metadata"]["jkctl"]
    assert "profiles.yaml" in gpu.source


def test_an_earlier_folder_redefines_a_profile_for_every_spec(tmp_path: Path) -> None:
    write_profiles(
        tmp_path / "extra",
        """
profiles:
  gpu:
    displayName: A100
    resources: {limits: {nvidia.com/gpu: "2"}}
    nodeSelector: {cloud.google.com/gke-accelerator: nvidia-tesla-a100}
""",
    )
    gpu = source(tmp_path).get("python3-gpu")
    assert gpu.display_name.endswith("A100")
    assert gpu.pod.resources.gpus == 2
    assert gpu.pod.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}
    assert gpu.pod.tolerations == ()
    # The other bundled profiles are untouched.
    assert source(tmp_path).get("python3-large").pod.resources.limits["cpu"] == "8"


def test_a_spec_adjusts_a_profile_for_itself(tmp_path: Path) -> None:
    write_kernelspec(
        tmp_path / "user",
        "torch",
        argv=["python"],
        metadata={
            "jkctl": {
                "image": "registry.example.com/team/torch:1",
                "profiles": {"gpu": {"image": "registry.example.com/team/torch:1-cuda"}},
            }
        },
    )
    specs = source(tmp_path).all()
    assert specs["torch"].pod.image == "registry.example.com/team/torch:1"
    assert specs["torch-gpu"].pod.image == "registry.example.com/team/torch:1-cuda"
    assert specs["torch-gpu"].pod.resources.gpus == 1


def test_a_real_spec_folder_wins_over_a_profile_made_one(tmp_path: Path) -> None:
    write_kernelspec(tmp_path / "user", "python3-gpu", argv=["mine"], display_name="Mine")
    assert source(tmp_path).get("python3-gpu").argv == ("mine",)


def test_an_unknown_profile_breaks_only_that_combination(tmp_path: Path) -> None:
    folder = write_kernelspec(
        tmp_path / "user", "geo", argv=["python"], metadata={"jkctl": {"profiles": ["huge"]}}
    )
    catalog = source(tmp_path).catalog()
    assert "geo" in catalog.specs
    assert "geo-huge" in catalog.broken
    with pytest.raises(TemplateError) as raised:
        source(tmp_path).get("geo-huge")
    assert raised.value.message == (
        f"{folder / 'kernel.json'}: metadata.jkctl.profiles names 'huge', a profile no "
        "profiles.yaml defines."
    )
    assert raised.value.hint is not None
    assert "small, medium, large, gpu" in raised.value.hint


def test_a_bad_profile_names_its_file_and_field_and_hides_its_namesakes(tmp_path: Path) -> None:
    profiles = write_profiles(
        tmp_path / "extra",
        "profiles:\n  large:\n    resources: {limits: {memory: 16GB}}\n  tiny: {}\n",
    )
    catalog = source(tmp_path).catalog()
    assert "python3-large" in catalog.broken  # not the bundled large: this one is broken
    assert "python3" in catalog.specs and "python3-small" in catalog.specs
    message = catalog.broken["python3-large"].error.message
    assert message.startswith(f"{profiles}: profiles.large.resources.limits.memory is '16GB'")


def test_a_profile_that_contradicts_the_spec_names_both_files(tmp_path: Path) -> None:
    profiles = write_profiles(
        tmp_path / "extra", "profiles:\n  lean:\n    resources: {limits: {cpu: 100m}}\n"
    )
    folder = write_kernelspec(
        tmp_path / "user",
        "geo",
        argv=["python"],
        metadata={"jkctl": {"resources": {"requests": {"cpu": "1"}}, "profiles": ["lean"]}},
    )
    error = source(tmp_path).catalog().broken["geo-lean"].error
    assert error.message.startswith(
        f"{folder / 'kernel.json'} with profile lean from {profiles}: "
        "metadata.jkctl.resources.requests.cpu is 1, more than its limit 100m"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("profiles: [\n", "line 2 is not valid YAML"),
        ("large: {}\n", "must be a mapping with one key, profiles"),
        ("profiles: [large]\n", "profiles must map profile names to their settings"),
    ],
)
def test_an_unreadable_profiles_file_is_reported(tmp_path: Path, text: str, expected: str) -> None:
    write_profiles(tmp_path / "extra", text)
    write_kernelspec(
        tmp_path / "user", "geo", argv=["python"], metadata={"jkctl": {"profiles": ["huge"]}}
    )
    catalog = source(tmp_path).catalog()
    # The bundled profiles still apply; the spec asking for an undefined one says
    # that a profiles file could not be read.
    assert "python3-gpu" in catalog.specs
    error = catalog.broken["geo-huge"].error
    assert error.context is not None
    assert expected in error.context


def test_profiles_are_only_applied_once_per_name(tmp_path: Path) -> None:
    (tmp_path / "user").mkdir()
    spec = json.loads((BUNDLED / "python3" / "kernel.json").read_text())
    spec["metadata"]["jkctl"]["profiles"] = ["gpu"]
    write_kernelspec(tmp_path / "user", "python3", **spec)
    specs = source(tmp_path).all()
    assert "python3-gpu" in specs
    assert "python3-large" not in specs  # the bundled python3, which asks for it, is hidden
