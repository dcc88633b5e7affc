"""Local TCP listeners joined to the official client's port-forward, as `kubectl port-forward` does.

`kubernetes.stream.portforward` opens one websocket for several pod ports
and hands out one socket per port (the protocol carries one connection
per port per websocket). A client such as `jupyter_client` wants TCP
addresses instead, so `Bridge` listens on an ephemeral 127.0.0.1 port for
each forwarded port, accepts one connection there, and copies bytes both
ways between it and the port's socket until either side ends.

Threads: one accepting per port, then two copying per accepted
connection; `close()` shuts every socket down (which wakes a blocked
accept or recv), joins every thread and closes the sockets it made. The
port-forward's own sockets belong to the port-forward.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable
from typing import Any


class Bridge:
    def __init__(self, forward: Any, ports: Iterable[int]) -> None:
        self._forward = forward
        self._listeners = {port: socket.create_server(("127.0.0.1", 0)) for port in ports}
        self.local = {port: sock.getsockname()[1] for port, sock in self._listeners.items()}
        self._made: list[socket.socket] = list(self._listeners.values())
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closing = False
        for port, listener in self._listeners.items():
            self._start(self._accept, port, listener)

    def _start(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"bridge-{target.__name__}")
        self._threads.append(thread)
        thread.start()

    def _accept(self, port: int, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:  # shut down by close()
            return
        remote = self._forward.socket(port)
        with self._lock:
            self._made.append(conn)
            if self._closing:
                conn.shutdown(socket.SHUT_RDWR)
                return
            self._start(self._copy, conn, remote)
            self._start(self._copy, remote, conn)

    @staticmethod
    def _copy(source: Any, target: Any) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with self._lock:
            self._closing = True
            for sock in self._made:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            for port in self._listeners:
                with contextlib.suppress(OSError):
                    self._forward.socket(port).shutdown(socket.SHUT_RDWR)
        for thread in self._threads:  # complete: no copier starts once closing is set
            thread.join(10)
            assert not thread.is_alive(), f"{thread.name} did not end"
        for sock in self._made:
            sock.close()

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
