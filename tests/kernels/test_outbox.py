"""A client's outbox: bounded by bytes, sheds output for a slow client, never silently."""

from __future__ import annotations

import json

from jkctl.kernels.outbox import Frame, Outbox, Shed


def notice(shed: Shed) -> Frame:
    text = json.dumps(
        {"dropped": shed.messages, "bytes": shed.nbytes, "parent": shed.parent.decode()}
    )
    return Frame(text.encode(), binary=False)


def output(n: int, size: int = 100) -> Frame:
    return Frame(f"{n:06d}".encode().ljust(size, b"."), binary=True)


async def drain(outbox: Outbox) -> list[Frame]:
    outbox.close()
    frames = []
    while (frame := await outbox.get()) is not None:
        frames.append(frame)
    return frames


async def test_frames_come_out_in_order_and_the_writer_ends_after_close() -> None:
    outbox = Outbox(limit=10_000, notice=notice)
    for n in range(50):
        outbox.put(output(n), sheddable=n % 2 == 0)
    assert outbox.queued_bytes == 5000
    frames = await drain(outbox)
    assert frames == [output(n) for n in range(50)]
    assert outbox.queued_bytes == 0
    assert await outbox.get() is None


async def test_a_slow_client_loses_output_but_is_told_exactly_how_much() -> None:
    outbox = Outbox(limit=1000, notice=notice)
    for n in range(30):  # 3000 bytes of output for a 1000-byte budget
        outbox.put(output(n), sheddable=True, parent=b'{"msg_id": "cell-1"}')
    outbox.put(Frame(b"status idle", binary=False))  # never shed
    frames = await drain(outbox)
    kept = [f for f in frames if f.binary]
    assert kept == [output(n) for n in range(10)]
    told = json.loads(frames[10].data)
    assert told == {"dropped": 20, "bytes": 2000, "parent": '{"msg_id": "cell-1"}'}
    assert frames[11] == Frame(b"status idle", binary=False)
    assert len(kept) + told["dropped"] == 30
    assert outbox.total_dropped_messages == 20


async def test_shedding_stops_once_the_client_caught_up_to_half_the_budget() -> None:
    outbox = Outbox(limit=1000, notice=notice)
    for n in range(12):
        outbox.put(output(n), sheddable=True)
    # The client reads 6 frames: 400 bytes left, under half the budget.
    for _ in range(6):
        assert await outbox.get() is not None
    outbox.put(output(100), sheddable=True)
    frames = await drain(outbox)
    assert [f.data[:6] for f in frames if f.binary] == [
        b"000006",
        b"000007",
        b"000008",
        b"000009",
        b"000100",
    ]
    (told,) = [json.loads(f.data) for f in frames if not f.binary]
    assert told["dropped"] == 2
    # The notice comes before the first output after the gap.
    assert not frames[4].binary


async def test_replies_and_status_are_never_shed() -> None:
    outbox = Outbox(limit=100, notice=notice)
    for n in range(20):
        outbox.put(output(n), sheddable=False)
    assert len(await drain(outbox)) == 20


async def test_nothing_is_put_after_close() -> None:
    outbox = Outbox(limit=100, notice=notice)
    outbox.close()
    outbox.put(output(1))
    assert await outbox.get() is None
