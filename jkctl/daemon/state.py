"""The daemon's files in the state folder, and how the CLI finds a running daemon.

All under ``jkctl.paths.state_dir()`` (created 0700):

- ``daemon.pid`` — the daemon's pid. The daemon holds an exclusive ``flock``
  on it for its whole life: that lock, not the pid, says whether a daemon is
  running (no stale-pid guessing), and waiting for it to be released is how
  ``jkctl disconnect`` waits for the daemon to exit.
- ``daemon.json`` — what a client needs: url, pid, port, backend, context,
  namespace, start time, version, log file (:class:`DaemonRecord`).
- ``token`` — the API token, 0600. Kept across daemon restarts so a
  configured JupyterLab keeps working.
- ``daemon-id`` — a random id, made once: the Kubernetes backend labels its
  pods with it, so a restarted daemon finds its own kernels (and no one
  else's).
- ``port`` — the port the last daemon listened on. A daemon asked for any
  free port takes this one again when it is free, so a JupyterLab (or a
  Jupyter Server with ``--gateway-url``) keeps finding its gateway after
  the daemon restarts, even after a ``kill -9``.
- ``daemon.log`` — the detached daemon's log.
- ``runtime/`` — kernels' connection files (0700).

This module uses only the standard library, so the CLI can read state quickly.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jkctl.errors import DaemonError


@dataclass(frozen=True, kw_only=True)
class StateFiles:
    dir: Path

    @property
    def pid_file(self) -> Path:
        return self.dir / "daemon.pid"

    @property
    def record_file(self) -> Path:
        return self.dir / "daemon.json"

    @property
    def token_file(self) -> Path:
        return self.dir / "token"

    @property
    def daemon_id_file(self) -> Path:
        return self.dir / "daemon-id"

    @property
    def port_file(self) -> Path:
        return self.dir / "port"

    @property
    def log_file(self) -> Path:
        return self.dir / "daemon.log"

    @property
    def runtime_dir(self) -> Path:
        return self.dir / "runtime"

    def ensure(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)


@dataclass(frozen=True, kw_only=True)
class DaemonRecord:
    """The contents of ``daemon.json``."""

    url: str
    pid: int
    port: int
    backend: str
    context: str | None
    namespace: str | None
    started_at: str
    version: str
    log_file: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> DaemonRecord:
        data: dict[str, Any] = json.loads(text)
        return cls(
            url=str(data["url"]),
            pid=int(data["pid"]),
            port=int(data["port"]),
            backend=str(data["backend"]),
            context=data.get("context"),
            namespace=data.get("namespace"),
            started_at=str(data["started_at"]),
            version=str(data.get("version", "")),
            log_file=str(data.get("log_file", "")),
        )


class DaemonLock:
    """The running daemon's exclusive lock on ``daemon.pid``."""

    def __init__(self, files: StateFiles) -> None:
        self._files = files
        self._fd: int | None = None

    def acquire(self) -> None:
        self._files.ensure()
        fd = os.open(self._files.pid_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            record = read_record(self._files)
            where = f" at {record.url} (pid {record.pid})" if record else ""
            raise DaemonError(
                f"Another jkctl daemon is already running{where}.",
                hint="Run `jkctl disconnect` first, or use another JKCTL_STATE_DIR.",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            self._files.record_file.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_running(files: StateFiles) -> bool:
    """Whether a daemon holds the lock on this state folder."""
    try:
        fd = os.open(files.pid_file, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def read_record(files: StateFiles) -> DaemonRecord | None:
    try:
        return DaemonRecord.from_json(files.record_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None


def running_daemon(files: StateFiles) -> DaemonRecord | None:
    """The record of the daemon running on this state folder, if one is."""
    if not is_running(files):
        return None
    return read_record(files)


def write_record(files: StateFiles, record: DaemonRecord) -> None:
    _write_private(files.record_file, record.to_json() + "\n")


def load_or_create_token(files: StateFiles) -> str:
    """The API token: the one on file (0600, ours) or a fresh one."""
    files.ensure()
    with contextlib.suppress(OSError):
        info = files.token_file.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o077 == 0:
            token = files.token_file.read_text(encoding="ascii").strip()
            if len(token) >= 32:
                return token
    token = secrets.token_urlsafe(32)
    _write_private(files.token_file, token + "\n")
    return token


def load_or_create_daemon_id(files: StateFiles) -> str:
    """This state folder's daemon id (16 hex digits), made on first use."""
    files.ensure()
    with contextlib.suppress(OSError):
        found = files.daemon_id_file.read_text(encoding="ascii").strip()
        if len(found) == 16 and all(c in "0123456789abcdef" for c in found):
            return found
    daemon_id = secrets.token_hex(8)
    _write_private(files.daemon_id_file, daemon_id + "\n")
    return daemon_id


def read_daemon_id(files: StateFiles) -> str | None:
    """This state folder's daemon id, if a daemon ever made one (None: no kernels yet)."""
    try:
        found = files.daemon_id_file.read_text(encoding="ascii").strip()
    except OSError:
        return None
    return found if len(found) == 16 and all(c in "0123456789abcdef" for c in found) else None


def read_last_port(files: StateFiles) -> int:
    """The port the last daemon of this state folder listened on; 0 if none is known."""
    try:
        port = int(files.port_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return 0
    return port if 0 < port < 65536 else 0


def write_last_port(files: StateFiles, port: int) -> None:
    _write_private(files.port_file, f"{port}\n")


def read_token(files: StateFiles) -> str:
    try:
        return files.token_file.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise DaemonError(
            f"Cannot read the daemon's token at {files.token_file}: {exc.strerror}.",
            hint="Run `jkctl disconnect` and `jkctl connect` to start afresh.",
        ) from exc


def wait_until_stopped(files: StateFiles, *, timeout: float) -> bool:
    """Block until no daemon holds the lock (True), or ``timeout`` passes (False)."""
    try:
        fd = os.open(files.pid_file, os.O_RDONLY)
    except FileNotFoundError:
        return True
    released = threading.Event()

    def wait_for_lock() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            released.set()
        except OSError:
            pass

    waiter = threading.Thread(target=wait_for_lock, name="jkctl-wait-daemon", daemon=True)
    waiter.start()
    try:
        return released.wait(timeout)
    finally:
        if released.is_set():
            os.close(fd)
        # Otherwise the waiter still blocks on fd; it ends with the process.


def _write_private(path: Path, text: str) -> None:
    """Write a 0600 file atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
