"""TLS read buffers sized for a daemon that holds many quiet connections.

asyncio gives every TLS connection a read buffer of
``asyncio.sslproto.SSLProtocol.max_size`` bytes, allocated and zeroed when
the connection opens: 256 KiB in Python 3.11 to 3.13. The Kubernetes backend
holds one port-forward websocket per ZeroMQ socket, four per kernel, each
its own TLS connection to the API server; that buffer alone was about
1 MiB of the daemon's memory per idle kernel (measured with tracemalloc:
37 of 46.5 MiB grown for 40 kernels).

A TLS record carries at most 16 KiB, so a 32 KiB buffer still takes two
whole records per read. Measured on kubesim with 40 idle kernels: 1.81 MiB
of daemon RSS per kernel before, 0.81 after; a cell streaming 64 MiB
through the tunnel went from ~120 to ~100 MiB/s, far above what an API
server's port-forward carries in a real cluster.

Neither asyncio nor aiohttp has a per-connection setting, so the class
default is lowered once for the whole process (the daemon's). Where Python's
default is not the one measured here, it is left alone.
"""

from __future__ import annotations

import asyncio.sslproto
import logging

logger = logging.getLogger(__name__)

#: Python's default (3.11-3.13), the one the figures above replace.
_PYTHON_DEFAULT = 256 * 1024
READ_BUFFER = 32 * 1024


def use_small_tls_read_buffers() -> None:
    """Make TLS connections opened from now on read through a 32 KiB buffer."""
    protocol = asyncio.sslproto.SSLProtocol
    if getattr(protocol, "max_size", None) == _PYTHON_DEFAULT:
        protocol.max_size = READ_BUFFER
    elif getattr(protocol, "max_size", None) != READ_BUFFER:
        logger.debug("asyncio's TLS read buffer is not the expected default; left as it is")
