"""The kernel websocket, straight against the daemon, in both wire protocols."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.kernel_client import KernelClient
from tests.processes import RunningDaemon

PROTOCOLS = ["legacy", "v1"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def connect(
    http: aiohttp.ClientSession, daemon: RunningDaemon, kernel_id: str, protocol: str
) -> KernelClient:
    return await KernelClient.connect(
        http, daemon.url, kernel_id, token=daemon.token, protocol=protocol
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_print_reaches_the_client(
    http: aiohttp.ClientSession, daemon: RunningDaemon, kernel_id: str, protocol: str
) -> None:
    client = await connect(http, daemon, kernel_id, protocol)
    result = await client.execute("print(6*7)")
    assert result.reply.content["status"] == "ok"
    assert result.stdout == "42\n"
    assert result.iopub[0].msg_type == "status"
    await client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_error_comes_with_a_traceback(
    http: aiohttp.ClientSession, daemon: RunningDaemon, kernel_id: str, protocol: str
) -> None:
    client = await connect(http, daemon, kernel_id, protocol)
    result = await client.execute("1/0")
    assert result.reply.content["status"] == "error"
    assert result.reply.content["ename"] == "ZeroDivisionError"
    (error,) = [m for m in result.iopub if m.msg_type == "error"]
    assert error.content["ename"] == "ZeroDivisionError"
    traceback = ANSI.sub("", "\n".join(error.content["traceback"]))
    assert "1/0" in traceback
    assert "ZeroDivisionError" in traceback
    await client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_input_is_answered_over_stdin(
    http: aiohttp.ClientSession, daemon: RunningDaemon, kernel_id: str, protocol: str
) -> None:
    client = await connect(http, daemon, kernel_id, protocol)
    msg_id = await client.send(
        "shell",
        "execute_request",
        {"code": "print('hello', input('name? '))", "allow_stdin": True, "silent": False},
    )
    seen = await client.receive_until(lambda m: m.msg_type == "input_request")
    request = seen[-1]
    assert request.channel == "stdin"
    assert request.parent_id == msg_id
    assert request.content["prompt"] == "name? "
    client.pending.extend(m for m in seen if m.parent_id == msg_id and m is not request)
    await client.send("stdin", "input_reply", {"value": "ada"}, parent=request.header)
    result = await client.collect(msg_id)
    assert result.reply.content["status"] == "ok"
    assert "hello ada" in result.stdout
    await client.close()


async def test_two_clients_share_iopub_and_each_gets_its_own_replies(
    http: aiohttp.ClientSession, daemon: RunningDaemon, kernel_id: str
) -> None:
    alice = await connect(http, daemon, kernel_id, "legacy")
    bob = await connect(http, daemon, kernel_id, "v1")
    result = await alice.execute("print('from alice')")
    assert result.stdout == "from alice\n"
    alice_id = result.reply.parent_id

    bob_id = await bob.send("shell", "kernel_info_request", {})
    bob_saw = await bob.receive_until(lambda m: m.channel == "shell" and m.parent_id == bob_id)
    # Bob saw Alice's output on iopub (a print may arrive in several stream
    # messages), but not her reply.
    assert (
        "".join(
            m.content["text"] for m in bob_saw if m.msg_type == "stream" and m.parent_id == alice_id
        )
        == "from alice\n"
    )
    assert not [m for m in bob_saw if m.channel == "shell" and m.parent_id == alice_id]
    assert bob_saw[-1].msg_type == "kernel_info_reply"

    # And Alice does not get Bob's reply: her next shell message is her own.
    own_id = await alice.send("shell", "kernel_info_request", {})
    alice_saw = await alice.receive_until(lambda m: m.channel == "shell")
    assert alice_saw[-1].parent_id == own_id
    await alice.close()
    await bob.close()


ECHO_TARGET = """
def _echo(comm, open_msg):
    @comm.on_msg
    def _(msg):
        comm.send({"echo": msg["content"]["data"]}, buffers=msg["buffers"])
get_ipython().kernel.comm_manager.register_target("jkctl-echo", _echo)
"""


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_binary_buffers_travel_both_ways(
    http: aiohttp.ClientSession, daemon: RunningDaemon, kernel_id: str, protocol: str
) -> None:
    client = await connect(http, daemon, kernel_id, protocol)
    assert (await client.execute(ECHO_TARGET)).reply.content["status"] == "ok"
    comm_id = f"comm-{protocol}"
    await client.send(
        "shell", "comm_open", {"comm_id": comm_id, "target_name": "jkctl-echo", "data": {}}
    )
    payload = [bytes(range(256)) * 16, b"\x00second\xff"]
    await client.send("shell", "comm_msg", {"comm_id": comm_id, "data": {"n": 2}}, buffers=payload)
    seen = await client.receive_until(
        lambda m: m.msg_type == "comm_msg" and m.content["comm_id"] == comm_id
    )
    echo = seen[-1]
    assert echo.content["data"] == {"echo": {"n": 2}}
    assert echo.buffers == payload
    await client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_malformed_message_is_ignored_and_the_connection_lives_on(
    http: aiohttp.ClientSession, daemon: RunningDaemon, kernel_id: str, protocol: str
) -> None:
    client = await connect(http, daemon, kernel_id, protocol)
    if protocol == "v1":
        await client.ws.send_bytes(b"\x01\x00\x00\x00\x00\x00\x00\x00garbage")
    else:
        await client.ws.send_str("{not json")
    result = await client.execute("print('still here')")
    assert result.stdout == "still here\n"
    await client.close()


async def test_websocket_to_an_unknown_kernel_is_404(
    http: aiohttp.ClientSession, daemon: RunningDaemon
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
        await connect(http, daemon, "00000000-0000-0000-0000-000000000000", "legacy")
    assert raised.value.status == 404


async def test_websocket_without_the_token_is_401(
    http: aiohttp.ClientSession, daemon: RunningDaemon, kernel_id: str
) -> None:
    url = daemon.url.replace("http", "ws") + f"/api/kernels/{kernel_id}/channels"
    with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
        await http.ws_connect(url)
    assert raised.value.status == 401


async def test_websocket_from_a_foreign_origin_is_refused(
    http: aiohttp.ClientSession, daemon: RunningDaemon, kernel_id: str
) -> None:
    url = daemon.url.replace("http", "ws") + f"/api/kernels/{kernel_id}/channels"
    with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
        await http.ws_connect(
            url,
            headers={"Authorization": f"token {daemon.token}", "Origin": "https://evil.example"},
        )
    assert raised.value.status == 403
