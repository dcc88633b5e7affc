"""The kernelspec of a built conda kernel image, and registering it for the user.

A conda kernel image runs its environment's own python, so its kernelspec is
small and fixed: ``/opt/conda/envs/NAME/bin/python -m ipykernel_launcher -f
{connection_file}``, a display name, ``language: python`` and a
``metadata.jkctl`` block with the image and the pod's resources. This module
builds that JSON from explicit options (:class:`KernelOptions`), checks the
option values users type (image reference, cpu, memory, gpu) and writes the
spec as ``conda-NAME`` into the user's kernel folder, where the daemon picks it
up after the next ``jkctl connect``.

It does not load, list or validate other kernelspecs (that is
:mod:`jkctl.kernels`), and it never replaces a spec unless asked to.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TypedDict

from jkctl.errors import UsageError
from jkctl.kernels.install import check_target, install_folder
from jkctl.kube.names import image_problem

#: Where the conda template creates environments inside the image.
ENVS_ROOT = PurePosixPath("/opt/conda/envs")

#: Resources when no --cpu/--memory is given: those of the bundled python3 spec.
DEFAULT_CPU = ("500m", "2")
DEFAULT_MEMORY = ("1Gi", "4Gi")
GPU_RESOURCE = "nvidia.com/gpu"

_CPU = re.compile(r"^(?:\d+(?:\.\d+)?|\d+m)$")
_MEMORY = re.compile(r"^\d+(?:\.\d+)?(?:Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_MEMORY_FACTORS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


class ResourcesJSON(TypedDict):
    requests: dict[str, str]
    limits: dict[str, str]


class JkctlMetadata(TypedDict):
    image: str
    resources: ResourcesJSON


class KernelspecMetadata(TypedDict):
    jkctl: JkctlMetadata


class KernelspecJSON(TypedDict):
    """A kernel.json as jkctl writes it (Jupyter's fields plus metadata.jkctl)."""

    argv: list[str]
    display_name: str
    language: str
    interrupt_mode: str
    metadata: KernelspecMetadata


@dataclass(frozen=True, kw_only=True)
class Resources:
    """The kernel pod's requests and limits (Kubernetes quantities, as strings)."""

    cpu_request: str = DEFAULT_CPU[0]
    cpu_limit: str = DEFAULT_CPU[1]
    memory_request: str = DEFAULT_MEMORY[0]
    memory_limit: str = DEFAULT_MEMORY[1]
    gpu: int = 0

    @classmethod
    def from_options(
        cls, *, cpu: str | None = None, memory: str | None = None, gpu: int | None = None
    ) -> Resources:
        """Parse ``--cpu REQUEST[:LIMIT]``, ``--memory REQUEST[:LIMIT]`` and ``--gpu N``.

        One value sets request and limit alike; unset options keep the defaults.
        """
        cpu_request, cpu_limit = (
            _split_quantity(cpu, option="--cpu", pattern=_CPU, example="500m:2")
            if cpu
            else DEFAULT_CPU
        )
        memory_request, memory_limit = (
            _split_quantity(memory, option="--memory", pattern=_MEMORY, example="2Gi:8Gi")
            if memory
            else DEFAULT_MEMORY
        )
        if gpu is not None and gpu < 0:
            raise UsageError(
                f"--gpu {gpu} is negative.", hint="pass the number of GPUs, for example --gpu 1"
            )
        return cls(
            cpu_request=cpu_request,
            cpu_limit=cpu_limit,
            memory_request=memory_request,
            memory_limit=memory_limit,
            gpu=gpu or 0,
        )

    def to_json(self) -> ResourcesJSON:
        limits = {"cpu": self.cpu_limit, "memory": self.memory_limit}
        if self.gpu:
            limits[GPU_RESOURCE] = str(self.gpu)
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": limits,
        }


@dataclass(frozen=True, kw_only=True)
class KernelOptions:
    """What the kernelspec says besides the environment: image, display name, resources."""

    image: str
    display_name: str | None = None
    resources: Resources = field(default_factory=Resources)


def check_image_reference(image: str) -> str:
    """Check an image reference (--tag) the way a registry would; return it unchanged."""
    if image_problem(image) is not None:
        raise UsageError(
            f"--tag {image!r} is not an image reference.",
            hint="use REGISTRY/PATH:TAG with a lower-case path, for example "
            "registry.example.com/team/kernel-geo:1",
        )
    return image


def kernelspec_name(env_name: str) -> str:
    """The kernelspec a conda environment registers as (Jupyter lower-cases spec names)."""
    return f"conda-{env_name.lower()}"


def conda_kernelspec(env_name: str, options: KernelOptions) -> KernelspecJSON:
    """The kernel.json for an image whose environment lives at /opt/conda/envs/NAME."""
    python = ENVS_ROOT / env_name / "bin" / "python"
    return {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": options.display_name or f"Python (conda: {env_name})",
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {"jkctl": {"image": options.image, "resources": options.resources.to_json()}},
    }


def write_kernelspec(directory: Path, spec: KernelspecJSON, *, logos: Iterable[Path] = ()) -> Path:
    """Write kernel.json, plus the given logo files, into `directory`; return kernel.json."""
    directory.mkdir(parents=True, exist_ok=True)
    for logo in logos:
        if logo.is_file():
            shutil.copyfile(logo, directory / logo.name)
    target = directory / "kernel.json"
    target.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return target


_REGISTER_HINT = "pass --force to replace it, or --name to build the environment under another name"


def check_registration(name: str, *, kernels_dir: Path, force: bool) -> Path:
    """Where `name` would be registered; refuse early when it exists and `force` is not set."""
    return check_target(name, kernels_dir=kernels_dir, force=force, hint=_REGISTER_HINT)


def register_kernelspec(source: Path, name: str, *, kernels_dir: Path, force: bool = False) -> Path:
    """Copy the kernelspec folder `source` to kernels_dir/name, atomically; return its path."""
    return install_folder(source, name, kernels_dir=kernels_dir, force=force, hint=_REGISTER_HINT)


def _split_quantity(
    value: str, *, option: str, pattern: re.Pattern[str], example: str
) -> tuple[str, str]:
    request, _, limit = value.partition(":")
    limit = limit or request
    for quantity in (request, limit):
        if not pattern.match(quantity):
            raise UsageError(
                f"{option} {value!r} is not a Kubernetes quantity.",
                hint=f"pass REQUEST or REQUEST:LIMIT, for example {option} {example}",
            )
    if _quantity_value(request) > _quantity_value(limit):
        raise UsageError(
            f"{option} {value!r} requests more than its limit.",
            hint=f"pass REQUEST:LIMIT with the smaller value first, for example {option} {example}",
        )
    return request, limit


def _quantity_value(quantity: str) -> float:
    if quantity.endswith("m") and quantity[:-1].isdigit():
        return int(quantity[:-1]) / 1000
    number = re.match(r"^\d+(?:\.\d+)?", quantity)
    assert number is not None  # the patterns above only pass quantities starting with digits
    return float(number.group()) * _MEMORY_FACTORS[quantity[number.end() :]]
