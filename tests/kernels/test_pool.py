"""The warm pool through the kernel manager, with real local kernels.

What a user must never notice: a pooled kernel is not listed, nobody else
had it, and one that a client had is never handed out again. What they do
notice: the launch is immediate, and the pool is full again afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from jkctl import paths
from jkctl.backends.base import LaunchSpec
from jkctl.backends.local import LocalBackend, LocalKernel
from jkctl.errors import ConfigError, QuotaExceeded
from jkctl.kernels.kernel import Kernel
from jkctl.kernels.manager import KernelManager
from jkctl.kernels.settings import KernelSettings
from jkctl.kernels.specs import KernelSpecSource

WAIT = 60  # seconds a pool may take to fill on a loaded machine


class Outliving(LocalBackend):
    """Local kernels, but the manager is told they may outlive the daemon."""

    kernels_outlive_daemon = True


class TwoKernelQuota(LocalBackend):
    """Local kernels under a team quota of two, refused at launch as Kubernetes refuses pods."""

    async def launch(
        self, spec: LaunchSpec, *, kernel_id: str, env: Any, pooled: bool = False
    ) -> LocalKernel:
        if len(self._kernels) >= 2:
            raise QuotaExceeded("team t has 2 of 2 kernels in use; this kernel asks for 1")
        return await super().launch(spec, kernel_id=kernel_id, env=env, pooled=pooled)


def manager_with_pool(tmp_path: Path, size: int, *, backend: LocalBackend | None = None) -> Any:
    return KernelManager(
        backend=backend or LocalBackend(runtime_dir=tmp_path / "runtime"),
        specs=KernelSpecSource(dirs=(paths.bundled("kernel-templates"),)),
        settings=KernelSettings(start_timeout=60, warm_pool=(("python3", size),)),
    )


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[KernelManager]:
    manager = manager_with_pool(tmp_path, 2)
    await manager.open()
    async with asyncio.timeout(WAIT):
        await manager.pool.wait_full()
    yield manager
    await manager.aclose(stop_kernels=True)


def pooled(manager: KernelManager) -> set[str]:
    return {kernel.id for ready in manager.pool._ready.values() for kernel in ready}


async def execute(kernel: Kernel, code: str, **expressions: str) -> dict[str, Any]:
    reply = await kernel.relay.request(
        "shell",
        "execute_request",
        {"code": code, "silent": False, "user_expressions": expressions, "allow_stdin": False},
    )
    content: dict[str, Any] = reply.content()
    return content


async def test_pooled_kernels_are_not_listed_and_a_launch_takes_one(
    manager: KernelManager,
) -> None:
    waiting = pooled(manager)
    assert len(waiting) == 2
    assert manager.list() == []
    kernel = await manager.start_kernel(name="python3")
    assert kernel.id in waiting
    assert [k.id for k in manager.list()] == [kernel.id]
    assert str(kernel.state) == "idle"
    assert (await execute(kernel, "x = 6 * 7", x="x"))["user_expressions"]["x"]["data"] == {
        "text/plain": "42"
    }
    # Replaced in the background by a kernel nobody has seen.
    async with asyncio.timeout(WAIT):
        await manager.pool.wait_full()
    refilled = pooled(manager)
    assert len(refilled) == 2
    assert kernel.id not in refilled
    assert waiting - {kernel.id} <= refilled


async def test_a_kernel_a_client_had_is_never_handed_out_again(manager: KernelManager) -> None:
    first = await manager.start_kernel(name="python3")
    await execute(first, "secret = 'from the first user'")
    await first.shutdown()
    seen = {first.id}
    for _ in range(3):  # more launches than the pool holds: every one a new kernel
        kernel = await manager.start_kernel(name="python3")
        assert kernel.id not in seen
        seen.add(kernel.id)
        reply = await execute(kernel, "", secret="secret")
        assert reply["user_expressions"]["secret"]["status"] == "error"
        await kernel.shutdown()
        assert kernel.id not in pooled(manager)


async def test_a_launch_with_kernel_variables_is_not_served_from_the_pool(
    manager: KernelManager,
) -> None:
    waiting = pooled(manager)
    kernel = await manager.start_kernel(name="python3", env={"KERNEL_USERNAME": "ada"})
    assert kernel.id not in waiting
    assert pooled(manager) == waiting
    assert (await execute(kernel, "import os", user="os.environ['KERNEL_USERNAME']"))[
        "user_expressions"
    ]["user"]["data"] == {"text/plain": "'ada'"}


async def test_a_pooled_kernel_that_dies_is_replaced(manager: KernelManager) -> None:
    victim = next(iter(manager.pool._ready["python3"]))
    handle = victim._handle
    assert isinstance(handle, LocalKernel) and handle.pid is not None
    os.kill(handle.pid, signal.SIGKILL)
    async with asyncio.timeout(WAIT):
        while victim.id in pooled(manager) or not manager.pool.full:
            await manager.pool._change.wait()
    assert victim.id not in pooled(manager)
    assert manager.list() == []


async def test_pooled_kernels_stop_with_the_daemon_even_when_kernels_outlive_it(
    tmp_path: Path,
) -> None:
    backend = Outliving(runtime_dir=tmp_path / "runtime")
    manager = manager_with_pool(tmp_path, 1, backend=backend)
    await manager.open()
    async with asyncio.timeout(WAIT):
        await manager.pool.wait_full()
    (kernel,) = manager.pool._ready["python3"]
    handle = kernel._handle
    assert isinstance(handle, LocalKernel)
    process = handle._process
    assert process is not None
    await manager.aclose(stop_kernels=False)
    assert process.returncode is not None
    assert backend._kernels == {}


async def test_a_pool_for_an_unknown_kernelspec_is_a_configuration_error(tmp_path: Path) -> None:
    manager = KernelManager(
        backend=LocalBackend(runtime_dir=tmp_path / "runtime"),
        specs=KernelSpecSource(dirs=(paths.bundled("kernel-templates"),)),
        settings=KernelSettings(warm_pool=(("no-such-kernel", 1),)),
    )
    try:
        with pytest.raises(ConfigError, match="no-such-kernel"):
            await manager.open()
    finally:
        await manager.aclose(stop_kernels=True)


async def test_pooled_kernels_make_room_in_the_quota_for_a_users_kernel(tmp_path: Path) -> None:
    backend = TwoKernelQuota(runtime_dir=tmp_path / "runtime")
    manager = manager_with_pool(tmp_path, 1, backend=backend)
    try:
        await manager.open()
        async with asyncio.timeout(WAIT):
            await manager.pool.wait_full()
        first = await manager.start_kernel(name="python3")  # from the pool
        async with asyncio.timeout(WAIT):
            await manager.pool.wait_full()  # the quota is full now: one kernel, one pooled
        (waiting,) = pooled(manager)
        # A kernel of its own (launch variables): no room, until the pooled one goes.
        own = await manager.start_kernel(name="python3", env={"KERNEL_USERNAME": "ada"})
        assert {k.id for k in manager.list()} == {first.id, own.id}
        assert waiting not in pooled(manager)
        assert waiting not in {k.kernel_id for k in backend._kernels.values()}
        # With nothing left in the pool to give way, the team's quota is said as it is.
        with pytest.raises(QuotaExceeded, match="team t has 2 of 2 kernels in use"):
            await manager.start_kernel(name="python3", env={"KERNEL_USERNAME": "bob"})
    finally:
        await manager.aclose(stop_kernels=True)
