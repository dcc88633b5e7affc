"""The output keeper, run as a pod runs it, between a fake kernel's PUB and a daemon's SUB.

What it promises: a subscriber that comes back with ``jkctl-resume:<id>:<n>``
gets every message after n, in order, once; another keeper's id gets none;
what the ring had to drop shows as a gap in the numbers.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import zmq

SEQ = b"jkctl-seq:"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Rig:
    def __init__(self, tmp_path: Path, *, max_bytes: int | None = None) -> None:
        self.port = free_port()
        source = tmp_path / "connection.json"
        source.write_text(
            json.dumps({"transport": "tcp", "ip": "127.0.0.1", "iopub_port": self.port, "key": "k"})
        )
        rewritten = tmp_path / "rewritten.json"
        code = resources.files("jkctl.kube").joinpath("output_keeper.py").read_text()
        argv = [sys.executable, "-c", code, str(source), str(rewritten)]
        if max_bytes is not None:
            argv.append(str(max_bytes))
        self.process = subprocess.Popen(argv)
        deadline = time.monotonic() + 10
        while not rewritten.exists():
            assert self.process.poll() is None, "the keeper exited"
            assert time.monotonic() < deadline, "no rewritten connection file"
            time.sleep(0.01)
        internal = json.loads(rewritten.read_text())["iopub_port"]
        assert internal != self.port
        self.context = zmq.Context()
        self.kernel = self.context.socket(zmq.PUB)
        self.kernel.bind(f"tcp://127.0.0.1:{internal}")
        self.subs: list[zmq.Socket[bytes]] = []

    def subscriber(self, resume: bytes) -> zmq.Socket[bytes]:
        sub = self.context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.setsockopt(zmq.SUBSCRIBE, b"jkctl-resume:" + resume)
        sub.connect(f"tcp://127.0.0.1:{self.port}")
        self.subs.append(sub)
        return sub

    def publish_until_synced(self, sub: zmq.Socket[bytes]) -> tuple[bytes, int]:
        """Until the keeper's sync arrives (the in-pod SUB may still be connecting)."""
        deadline = time.monotonic() + 10
        while True:
            assert time.monotonic() < deadline, "no sync from the keeper"
            if sub.poll(50):
                frames = sub.recv_multipart()
                if len(frames) == 2:
                    return parse(frames[0])

    def publish(self, *texts: str) -> None:
        for text in texts:
            self.kernel.send_multipart([b"stream.stdout", b"<IDS|MSG>", text.encode()])

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        for sub in self.subs:
            sub.close()
        self.kernel.close(linger=0)
        self.context.term()


def parse(tag: bytes) -> tuple[bytes, int]:
    assert tag.startswith(SEQ), tag
    keeper, n = tag[len(SEQ) :].split(b":")
    return keeper, int(n)


def receive(sub: zmq.Socket[bytes], count: int) -> list[tuple[int, str]]:
    """``count`` kernel messages as (n, text); syncs skipped; fails after 10 s."""
    got: list[tuple[int, str]] = []
    deadline = time.monotonic() + 10
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)}, up to {got[-1:]!s:.80}"
        if sub.poll(50):
            frames = sub.recv_multipart()
            if len(frames) > 2:
                got.append((parse(frames[0])[1], frames[-1].decode()))
    return got


def quiet(sub: zmq.Socket[bytes], seconds: float = 0.3) -> list[list[bytes]]:
    extra: list[list[bytes]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if sub.poll(int(left * 1000) + 1):
            extra.append(sub.recv_multipart())
    return extra


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    running = Rig(tmp_path)
    yield running
    running.close()


def warm_up(rig: Rig, sub: zmq.Socket[bytes]) -> tuple[bytes, int]:
    """Publish until the kernel→keeper link carries messages; returns (keeper id, last n)."""
    keeper, _ = rig.publish_until_synced(sub)
    deadline = time.monotonic() + 10
    while True:
        assert time.monotonic() < deadline, "the keeper never got the kernel's messages"
        rig.publish("warm")
        if sub.poll(50):
            frames = sub.recv_multipart()
            if len(frames) > 2:
                break
    rig.publish("mark")
    while True:  # after any "warm" still on its way
        ((n, text),) = receive(sub, 1)
        if text == "mark":
            return keeper, n


def test_a_subscriber_coming_back_gets_what_it_missed_in_order_once(rig: Rig) -> None:
    sub = rig.subscriber(b"live")
    keeper, last = warm_up(rig, sub)
    sub.close()
    rig.publish(*(f"missed {i}" for i in range(100)))
    again = rig.subscriber(b"%s:%d" % (keeper, last))
    got = receive(again, 100)
    assert got == [(last + 1 + i, f"missed {i}") for i in range(100)]
    rig.publish("after")
    assert receive(again, 1) == [(last + 101, "after")]
    extra = quiet(again)
    assert [f for f in extra if len(f) > 2] == []  # no duplicates
    # The sync said where the replay ended.
    assert [parse(f[0])[1] for f in extra if len(f) == 2] in ([], [last + 100], [last + 101])


def test_another_keepers_id_gets_no_replay(rig: Rig) -> None:
    sub = rig.subscriber(b"live")
    keeper, last = warm_up(rig, sub)
    rig.publish("missed")
    assert receive(sub, 1) == [(last + 1, "missed")]  # the keeper has it
    again = rig.subscriber(b"%s:%d" % (b"0" * len(keeper), last))
    sync_keeper, n = rig.publish_until_synced(again)
    assert (sync_keeper, n) == (keeper, last + 1)
    rig.publish("new")
    assert receive(again, 1) == [(last + 2, "new")]


def test_a_connection_gets_nothing_until_it_resumes(rig: Rig) -> None:
    sub = rig.subscriber(b"live")
    keeper, last = warm_up(rig, sub)
    plain = rig.context.socket(zmq.SUB)  # subscribed to everything, but no resume topic
    rig.subs.append(plain)
    plain.setsockopt(zmq.SUBSCRIBE, b"")
    monitor = plain.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    plain.connect(f"tcp://127.0.0.1:{rig.port}")
    assert monitor.poll(10_000), "no connection to the keeper"
    rig.publish("kept")
    assert receive(sub, 1) == [(last + 1, "kept")]  # the keeper had it, and sent it live
    assert quiet(plain) == []
    plain.setsockopt(zmq.SUBSCRIBE, b"jkctl-resume:%s:%d" % (keeper, last))
    assert receive(plain, 1) == [(last + 1, "kept")]
    plain.disable_monitor()
    monitor.close()


def test_an_overflowing_ring_shows_a_gap(tmp_path: Path) -> None:
    rig = Rig(tmp_path, max_bytes=64 * 1024)
    try:
        sub = rig.subscriber(b"live")
        keeper, last = warm_up(rig, sub)
        rig.publish(*(f"{i:04d}" + "x" * 1000 for i in range(200)))
        assert receive(sub, 200)[-1] == (last + 200, "0199" + "x" * 1000)  # all kept
        again = rig.subscriber(b"%s:%d" % (keeper, last))
        rig.publish("end")
        got = receive(again, 1)
        while got[-1][1] != "end":
            got += receive(again, 1)
        numbers = [n for n, _ in got]
        assert numbers[0] > last + 1  # the oldest were dropped: a gap the daemon sees
        assert numbers == list(range(numbers[0], last + 202))
    finally:
        rig.close()
