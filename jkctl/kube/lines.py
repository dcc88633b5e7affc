"""Line-delimited streaming bodies: watch events and followed logs.

A watch is one JSON event per line and a followed log is text lines, both
on a response that stays open for minutes. :func:`read_lines` splits such a
body into lines as the bytes arrive (no line waits for the next chunk), caps
a line's size so a misbehaving server cannot grow memory without bound, and
declares a stream dead when it has been silent longer than ``idle`` seconds
(a half-open TCP connection otherwise looks like a quiet watch forever).
Failures leave as jkctl errors, like everything else in this package.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import aiohttp

from jkctl.errors import KubeError

from .connection import TRANSPORT_ERRORS, unavailable_error
from .status import Action


async def read_lines(
    content: aiohttp.StreamReader,
    *,
    limit: int,
    idle: float | None,
    server: str,
    action: Action,
) -> AsyncGenerator[bytes, None]:
    """The body's non-empty lines without their line ends; the last may lack a newline."""
    buffer = bytearray()
    start = 0  # where to look for the next newline: earlier bytes have none
    while True:
        newline = buffer.find(b"\n", start)
        if newline > limit or (newline < 0 and len(buffer) > limit):
            raise KubeError(
                f"the Kubernetes API server at {server} sent a line longer than {limit} bytes "
                f"while asked to {action.target()}",
                hint="raise KubeSettings.max_line_bytes, or narrow the request",
            )
        if newline >= 0:
            line = bytes(buffer[:newline]).rstrip(b"\r")
            del buffer[: newline + 1]
            start = 0
            if line:
                yield line
            continue
        start = len(buffer)
        try:
            async with asyncio.timeout(idle):
                chunk = await content.readany()
        except TRANSPORT_ERRORS as exc:
            raise unavailable_error(exc, server=server, action=action, timeout=idle) from exc
        if not chunk:
            if buffer.strip():
                yield bytes(buffer).rstrip(b"\r")
            return
        buffer += chunk
