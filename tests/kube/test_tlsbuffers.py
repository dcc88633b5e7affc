"""TLS read buffers: lowered once for the daemon's process, and only from Python's default."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import asyncio.sslproto, ssl
from jkctl.kube.tlsbuffers import READ_BUFFER, use_small_tls_read_buffers
use_small_tls_read_buffers()
protocol = asyncio.sslproto.SSLProtocol(
    asyncio.new_event_loop(), asyncio.Protocol(), ssl.create_default_context(), None
)
print(len(protocol._ssl_buffer) == READ_BUFFER)
"""


def test_new_tls_connections_get_the_small_buffer() -> None:
    # In a process of its own: the setting is process-wide by design.
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "True"
