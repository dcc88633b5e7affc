"""The kernel manager without HTTP: launch variables, and re-attaching discovered kernels."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from jkctl import paths
from jkctl.backends.base import KernelHandle, LaunchSpec
from jkctl.backends.local import LocalBackend
from jkctl.errors import UsageError
from jkctl.kernels.manager import KernelManager, validate_launch_env
from jkctl.kernels.settings import KernelSettings
from jkctl.kernels.specs import KernelSpecSource


def test_launch_env_keeps_valid_kernel_variables_only() -> None:
    env = validate_launch_env(
        {
            "KERNEL_USERNAME": "ada",
            "KERNEL_CPUS": 2,
            "KERNEL_GPUS": 0.5,
            "PATH": "/evil",
            "kernel_lowercase": "x",
            "KERNEL_": "empty suffix",
        }
    )
    assert env == {"KERNEL_USERNAME": "ada", "KERNEL_CPUS": "2", "KERNEL_GPUS": "0.5"}
    assert validate_launch_env(None) == {}


@pytest.mark.parametrize(
    "env",
    [
        ["KERNEL_USERNAME=ada"],
        {"KERNEL_USERNAME": ["a", "b"]},
        {"KERNEL_IMAGE": "x" * 5000},
        {"KERNEL_NAMESPACE": "a\x00b"},
    ],
)
def test_launch_env_with_structure_is_refused(env: object) -> None:
    with pytest.raises(UsageError):
        validate_launch_env(env)


class Survivors(LocalBackend):
    """A backend whose kernels outlive the daemon: discover() returns those left running."""

    kernels_outlive_daemon = True

    def __init__(self, *, runtime_dir: Path, left: list[KernelHandle]) -> None:
        super().__init__(runtime_dir=runtime_dir)
        self.left = left

    async def discover(self) -> list[KernelHandle]:
        return self.left


async def test_discovered_kernels_are_re_attached(tmp_path: Path) -> None:
    earlier = LocalBackend(runtime_dir=tmp_path / "runtime")
    spec = LaunchSpec(
        name="python3",
        argv=(sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"),
        resource_dir=tmp_path,
    )
    handle = await earlier.launch(spec, kernel_id="left-running", env={})
    manager = KernelManager(
        backend=Survivors(runtime_dir=tmp_path / "runtime", left=[handle]),
        specs=KernelSpecSource(dirs=(paths.bundled("kernel-templates"),)),
        settings=KernelSettings(start_timeout=60),
    )
    try:
        await manager.adopt()
        kernel = manager.get("left-running")
        assert str(kernel.state) == "idle"
        assert kernel.spec.name == "python3"
        reply = await kernel.relay.request("shell", "kernel_info_request")
        assert reply.content()["status"] == "ok"
    finally:
        await manager.aclose(stop_kernels=True)
    assert manager.list() == []
    await earlier.aclose()
