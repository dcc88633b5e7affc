"""A slow client cannot stall the kernel or other clients, and loses nothing silently."""

from __future__ import annotations

import re
from collections.abc import Iterator

import aiohttp
import pytest

from tests.kernel_client import KernelClient, Message
from tests.processes import RunningDaemon, start_daemon

CHUNK = 64 * 1024
TOTAL = 32 * 1024 * 1024
CELL = (
    "import sys\n"
    f"_chunk = 'x' * {CHUNK - 1} + '\\n'\n"
    f"for _ in range({TOTAL // CHUNK}):\n"
    "    sys.stdout.write(_chunk)\n"
    "    sys.stdout.flush()\n"
)
NOTICE = re.compile(r"^\[jkctl\] (\d+) output messages? \(([\d.]+ \w+)\) (was|were) not shown here")


@pytest.fixture(scope="module")
def small_budget_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """A daemon that lets a client fall only 4 MiB behind (TCP buffers hold a few more)."""
    running = start_daemon(
        tmp_path_factory.mktemp("small-budget"),
        env_overrides={"JKCTL_CLIENT_QUEUE_LIMIT": str(4 * 1024 * 1024)},
    )
    yield running
    running.stop()


def account(messages: list[Message], msg_id: str | None) -> tuple[int, int]:
    """(stdout messages delivered, messages the notices say were dropped) for one cell."""
    delivered = dropped = 0
    for msg in messages:
        if msg.parent_id != msg_id or msg.msg_type != "stream":
            continue
        if msg.content["name"] == "stdout":
            assert len(msg.content["text"]) == CHUNK
            delivered += 1
        else:
            notice = NOTICE.match(msg.content["text"])
            assert notice, msg.content["text"]
            dropped += int(notice[1])
    return delivered, dropped


async def test_a_slow_client_stalls_no_one_and_is_told_what_it_missed(
    small_budget_daemon: RunningDaemon,
) -> None:
    daemon = small_budget_daemon
    status, model = daemon.request("POST", "/api/kernels", {"name": "python3"})
    assert status == 201, model
    async with aiohttp.ClientSession() as http:
        fast = await KernelClient.connect(
            http, daemon.url, model["id"], token=daemon.token, protocol="v1"
        )
        slow = await KernelClient.connect(http, daemon.url, model["id"], token=daemon.token)

        # The slow client reads nothing until the fast one has run the whole cell.
        result = await fast.execute(CELL)
        assert result.reply.content["status"] == "ok"
        msg_id = result.reply.parent_id
        expected = TOTAL // CHUNK
        delivered, dropped = account(result.iopub, msg_id)
        assert delivered + dropped == expected

        seen = await slow.receive_until(
            lambda m: (
                m.parent_id == msg_id
                and m.msg_type == "status"
                and m.content["execution_state"] == "idle"
            )
        )
        delivered, dropped = account(seen, msg_id)
        assert dropped > 0, "the slow client was never slow: raise TOTAL"
        assert delivered + dropped == expected
        # It still works as a client afterwards.
        assert (await slow.execute("print('caught up')")).stdout == "caught up\n"
        await fast.close()
        await slow.close()
    daemon.request("DELETE", f"/api/kernels/{model['id']}")
