"""Container logs: CRI-format files per container run, and streaming them as pods/log does.

Each run of a container writes `<restart>.log` in the kubelet's CRI format
(`2024-05-01T12:00:00.123456789Z stdout F text`), so `timestamps=true` can
show the time each line was written. The kubelet reads the child's stdout
and stderr pipes, so it knows when a line lands and wakes followers (no
polling); a follow ends once the run has ended and everything was sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

from tests.kubesim.broadcast import Broadcast

_CHUNK = 65536


def _timestamp() -> str:
    now = time.time_ns()
    seconds, nanos = divmod(now, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


class ContainerLog:
    """The log of one run of one container."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")
        self.changed = Broadcast()
        self.finished = False

    def write(self, stream: str, line: bytes, *, partial: bool = False) -> None:
        tag = b"P" if partial else b"F"
        self._file.write(_timestamp().encode() + f" {stream} ".encode() + tag + b" " + line + b"\n")
        self._file.flush()
        self.changed.notify()

    async def pump(self, reader: asyncio.StreamReader, stream: str) -> None:
        """Copy one pipe into the log, line by line, until EOF."""
        pending = b""
        while chunk := await reader.read(_CHUNK):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self.write(stream, line)
            if len(pending) >= _CHUNK:
                self.write(stream, pending, partial=True)
                pending = b""
        if pending:
            self.write(stream, pending)

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self._file.close()
            self.changed.notify()

    async def stream(
        self, *, follow: bool, tail_lines: int | None, timestamps: bool
    ) -> AsyncIterator[bytes]:
        with self.path.open("rb") as file:
            records = file.read().split(b"\n")
            pending = records.pop()  # b"" unless a write is half-way
            if tail_lines is not None:
                records = records[-tail_lines:] if tail_lines > 0 else []
            for record in records:
                yield _render(record, timestamps)
            if not follow:
                return
            while True:
                changed = self.changed.listen()
                finished = self.finished
                *records, pending = (pending + file.read()).split(b"\n")
                for record in records:
                    yield _render(record, timestamps)
                if finished and not records:
                    return
                if not records:
                    await changed.wait()


def _render(record: bytes, timestamps: bool) -> bytes:
    parts = record.split(b" ", 3)
    if len(parts) < 4:
        return b""
    stamp, _, tag, text = parts
    ending = b"" if tag == b"P" else b"\n"
    return (stamp + b" " if timestamps else b"") + text + ending
