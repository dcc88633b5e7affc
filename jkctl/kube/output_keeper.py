"""jkctl's output keeper: runs in a kernel pod, beside the kernel, and loses no iopub.

Never imported by jkctl: the kernel wrapper runs this file's text with the
image's own Python (``python3 -c SOURCE CONNECTION_FILE REWRITTEN_FILE``), so
it may use only the standard library and pyzmq.

A ZeroMQ PUB socket drops what it publishes while no subscriber is connected,
and the daemon's subscription crosses a tunnel that drops. So the kernel
publishes to this process instead (on a pod-internal port, through a
connection file rewritten here), whose subscription never drops, and this
process serves the daemon on the kernel's iopub port:

- every kernel message gets a first frame ``jkctl-seq:<keeper-id>:<n>``
  (keeper-id random per process, n from 1) and is kept in a ring bounded by
  bytes (oldest dropped: the daemon sees a gap in n);
- it is sent only while a subscriber is *live*: one that subscribed to
  ``jkctl-resume:<keeper-id>:<n>`` (replay what came after n, then go live)
  or ``jkctl-resume:live`` (go live from now). When that subscription ends
  (XPUB reports it when the connection ends) messages are only kept;
- having caught up, it sends ``[jkctl-seq:<keeper-id>:<n>, <the resume topic>]``
  (a *sync*): everything up to n was sent, in answer to that topic.

Exit codes: 3 when it cannot run (no pyzmq, no tcp transport); the wrapper then
runs the kernel as it always did.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any

try:
    import zmq
except ImportError:  # the image has no pyzmq: the wrapper runs the kernel without us
    sys.exit(3)

RESUME = b"jkctl-resume:"
SEQ = b"jkctl-seq:"
#: Rough cost of keeping one frame beyond its bytes (objects, list slot).
_FRAME_OVERHEAD = 128
_MAX_BYTES = 64 * 1024 * 1024
_BATCH = 256


class Keeper:
    def __init__(self, sub: Any, xpub: Any, *, max_bytes: int) -> None:
        self.sub = sub
        self.xpub = xpub
        self.max_bytes = max_bytes
        self.id = os.urandom(6).hex().encode()
        self.seq = 0  # the last number given
        self.first = 1  # the oldest kept
        self.ring: dict[int, tuple[list[Any], int]] = {}
        self.nbytes = 0
        self.sent = 0  # the last number sent to live subscribers
        self.live: dict[bytes, int] = {}  # resume topics subscribed, and how often
        self.syncs: list[bytes] = []  # topics answered once caught up
        self.blocked = False  # a subscriber's queue is full: wait until writable

    def keep(self) -> None:
        for _ in range(_BATCH):
            try:
                frames = self.sub.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self.seq += 1
            size = sum(len(f) + _FRAME_OVERHEAD for f in frames)
            self.ring[self.seq] = (frames, size)
            self.nbytes += size
            # Sent before anything is dropped: a burst bigger than the ring must not
            # cost a live subscriber what it would have had at once.
            if self.live and not self.blocked:
                self.pump()
            while self.nbytes > self.max_bytes and self.ring:
                self.nbytes -= self.ring.pop(self.first)[1]
                self.first += 1

    def subscription(self) -> None:
        while True:
            try:
                event = self.xpub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            topic = event[1:]
            if not topic.startswith(RESUME):
                continue  # b"" and the like: a subscriber, but not a live one
            if event[:1] == b"\x01":
                self.resume(topic)
                # Manual mode: this connection gets messages from now on, and not
                # before its replay began (a message ahead of the replay would
                # look like a gap, and the replay like duplicates).
                self.xpub.setsockopt(zmq.SUBSCRIBE, SEQ)
            elif self.live.get(topic, 0) > 1:
                self.live[topic] -= 1
            else:
                self.live.pop(topic, None)
                if topic in self.syncs:
                    self.syncs.remove(topic)

    def resume(self, topic: bytes) -> None:
        start = self.seq
        parts = topic[len(RESUME) :].split(b":")
        if len(parts) == 2 and parts[0] == self.id and parts[1].isdigit():
            start = min(int(parts[1]), self.seq)  # else: another keeper's numbers; none
        self.sent = min(self.sent, start) if self.live else start
        self.live[topic] = self.live.get(topic, 0) + 1
        self.syncs.append(topic)

    def pump(self) -> None:
        """Send what live subscribers have not had yet, then the syncs owed."""
        self.blocked = False
        if not self.live:
            return
        try:
            while self.sent < self.seq:
                n = max(self.sent + 1, self.first)  # below first: dropped, a visible gap
                frames = self.ring[n][0]
                self.xpub.send_multipart([self.tag(n), *frames], zmq.NOBLOCK, copy=False)
                self.sent = n
            while self.syncs:
                self.xpub.send_multipart([self.tag(self.sent), self.syncs[0]], zmq.NOBLOCK)
                self.syncs.pop(0)
        except zmq.Again:
            self.blocked = True

    def tag(self, n: int) -> bytes:
        return b"%s%s:%d" % (SEQ, self.id, n)


def free_port(ip: str, near: int) -> int:
    """A free port just above the iopub port, which keeps it out of the ephemeral range
    (pods use low fixed ports): there, our own SUB, reconnecting until the kernel binds
    the port, could take it as its source port, or even connect to itself."""
    for port in [*range(near + 10, min(near + 100, 65536)), 0]:
        with socket.socket() as probe:
            try:
                probe.bind((ip, port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError("no free port for the kernel's iopub")


def main(argv: list[str]) -> int:
    source, rewritten = argv[1], argv[2]
    max_bytes = int(argv[3]) if len(argv) > 3 else _MAX_BYTES
    with open(source) as f:
        info = json.load(f)
    if info.get("transport", "tcp") != "tcp":
        return 3
    ip = info.get("ip") or "127.0.0.1"
    local = "127.0.0.1" if ip in ("0.0.0.0", "*") else ip
    context = zmq.Context()
    xpub = context.socket(zmq.XPUB)
    xpub.setsockopt(zmq.XPUB_VERBOSER, 1)  # every (un)subscription, duplicates too
    xpub.setsockopt(zmq.XPUB_MANUAL, 1)  # a connection gets nothing until it resumes
    xpub.setsockopt(zmq.XPUB_NODROP, 1)  # a full queue says so: we keep, and retry
    xpub.setsockopt(zmq.LINGER, 0)
    # A connection whose tunnel vanished without a word is found out and ended.
    xpub.setsockopt(zmq.HEARTBEAT_IVL, 10_000)
    xpub.setsockopt(zmq.HEARTBEAT_TIMEOUT, 30_000)
    xpub.bind(f"tcp://{ip}:{info['iopub_port']}")
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RECONNECT_IVL, 10)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    internal = free_port(local, int(info["iopub_port"]))
    sub.connect(f"tcp://{local}:{internal}")
    # Only now, with the daemon-facing port served, may the kernel start.
    info["iopub_port"] = internal
    staged = f"{rewritten}.{os.getpid()}"
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    os.replace(staged, rewritten)

    keeper = Keeper(sub, xpub, max_bytes=max_bytes)
    parent = os.getppid()
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    poller.register(xpub, zmq.POLLIN)
    while True:
        # XPUB always reads as writable, even when a queue is full: when blocked,
        # try again shortly rather than wait for an event that says nothing.
        events = dict(poller.poll(10 if keeper.blocked else 1000))
        if os.getppid() != parent:
            return 0  # the wrapper is gone: so is the kernel we kept for
        if sub in events:
            keeper.keep()
        if xpub in events:
            keeper.subscription()
        keeper.pump()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
