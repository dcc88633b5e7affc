"""The culler's rules on a fake clock: who is due, who never is, and what the log says."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from jkctl.kernels.culler import Culler
from jkctl.kernels.kernel import KernelState
from jkctl.kernels.settings import CullSettings

NOW = 1_000_000.0
HOUR = 3600.0


@dataclass
class FakeKernel:
    """What the culler reads of a kernel, and its shutdown."""

    id: str
    last_activity: float
    connections: int = 0
    state: KernelState = KernelState.IDLE
    pod: str | None = None
    stopped: list[str] = field(default_factory=list)

    @property
    def handle(self) -> Any:
        return SimpleNamespace(placement=lambda: SimpleNamespace(pod=self.pod))

    async def shutdown(self) -> None:
        self.stopped.append(self.id)


def culler(kernels: list[FakeKernel], **settings: float) -> Culler:
    return Culler(lambda: kernels, CullSettings(**settings), clock=lambda: NOW)  # type: ignore[arg-type, return-value]


async def test_an_idle_kernel_no_one_is_connected_to_is_culled_after_its_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopped: list[str] = []
    due = FakeKernel("due", NOW - 2 * HOUR - 1, pod="jkctl-due", stopped=stopped)
    fresh = FakeKernel("fresh", NOW - HOUR, stopped=stopped)
    with caplog.at_level(logging.WARNING, logger="jkctl.kernels.culler"):
        wake = await culler([due, fresh], disconnected_timeout=2 * HOUR).cull_due()
    assert stopped == ["due"]
    assert wake == fresh.last_activity + 2 * HOUR
    (line,) = caplog.messages
    assert line.startswith("kernel due (pod jkctl-due): culling it: idle for 2h")
    assert line.endswith("with no client connected (cull_disconnected_timeout is 2h 0m)")


async def test_connected_kernels_are_left_alone_unless_asked() -> None:
    stopped: list[str] = []
    watched = FakeKernel("watched", NOW - 10 * HOUR, connections=1, stopped=stopped)
    assert await culler([watched], disconnected_timeout=HOUR).cull_due() is None
    assert stopped == []
    await culler([watched], disconnected_timeout=HOUR, idle_timeout=5 * HOUR).cull_due()
    assert stopped == ["watched"]


@pytest.mark.parametrize("state", [KernelState.BUSY, KernelState.STARTING, KernelState.RESTARTING])
async def test_only_idle_kernels_are_ever_due(state: KernelState) -> None:
    stopped: list[str] = []
    working = FakeKernel("working", NOW - 100 * HOUR, state=state, stopped=stopped)
    assert await culler([working], disconnected_timeout=HOUR).cull_due() is None
    assert stopped == []


async def test_with_both_rules_off_the_culler_does_nothing_at_all() -> None:
    stopped: list[str] = []
    old = FakeKernel("old", 0.0, stopped=stopped)
    off = culler([old], disconnected_timeout=0, idle_timeout=0)
    assert not off.enabled
    await off.run()  # returns at once instead of looping
    assert stopped == []
