"""The per-process helper kubesim execs for a pod sandbox or a container: its "runc".

kubesim runs this file as a script (`python -I -S shim.py SPEC.json`), never imports
it, so it uses the standard library only and starts in a few milliseconds. It
does, in the child before the workload runs, what a container runtime does:

- `PR_SET_PDEATHSIG` = SIGKILL first, so nothing outlives kubesim even when kubesim
  itself is SIGKILLed (the kernel delivers it when the spawning thread dies);
- **sandbox** mode (the pause container): new network and UTS namespaces, `lo`
  up, the pod's hostname, then it waits for ever. Containers join these.
- **container** mode: joins the sandbox's network and UTS namespaces, makes a
  private mount namespace and a new PID namespace, and forks. The child is pid 1
  of that namespace (so when it dies the kernel kills everything it left
  behind, as in a real container, and like a real pid 1 it only gets SIGTERM if
  it handles it). It builds a root: an overlay over the host's `/` with its
  upper layer on a private tmpfs (writes stay in the container, the host's
  files never change), the host's other mounts bound in, a fresh `/proc`, then
  each volume bound at its mountPath (resolved inside the new root, so
  symlinks such as /var/run behave), chroot, workingDir, exec.
  The parent stays as the reaper and exits with the child's status (128+N for
  a signal, as runtimes report it).

Status to kubesim goes through the fd named by argv[2]: `pid N` (the container's host pid, for
signalling), `error MESSAGE` if the container could not be started, `ready`
from a sandbox. EOF on it means the exec happened. What it does not do:
cgroups, capabilities, users, seccomp (processes run as root; securityContext
is accepted, not enforced).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import socket
import struct
import sys

TYPE_CHECKING = False  # typing costs start-up time; only the type checker imports it
if TYPE_CHECKING:
    from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    _check(
        libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {source} on {target}",
    )


def _die_with_parent() -> None:
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")


def _setns(path: str, nstype: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(libc.setns(fd, nstype), f"setns {path}")
    finally:
        os.close(fd)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", _ioctl(sock, SIOCGIFFLAGS, ifreq))[1]
        _ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _ioctl(sock: socket.socket, request: int, arg: bytes) -> bytes:
    return fcntl.ioctl(sock.fileno(), request, arg)


STATUS_FD = [3]


def _report(line: str) -> None:
    os.write(STATUS_FD[0], (line.replace("\n", " ") + "\n").encode())


def sandbox(spec: dict[str, Any]) -> None:
    _check(libc.unshare(CLONE_NEWNET | CLONE_NEWUTS), "unshare")
    _loopback_up()
    socket.sethostname(spec["hostname"])
    _report("ready")
    os.close(STATUS_FD[0])
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    while True:
        signal.pause()


def _top_level_mounts() -> list[str]:
    """Mount points whose parent is the root mount, shallowest first."""
    entries = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            entries.append((fields[0], fields[1], _unescape(fields[4])))
    root_ids = {mount_id for mount_id, _, point in entries if point == "/"}
    return [point for _, parent, point in entries if parent in root_ids and point != "/"]


def _unescape(path: str) -> str:
    return path.encode().decode("unicode_escape")


def _build_root(spec: dict[str, Any]) -> str:
    scratch = spec["scratch"]
    _mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
    upper, work, root = (os.path.join(scratch, part) for part in ("upper", "work", "root"))
    for directory in (upper, work, root):
        os.mkdir(directory)
    _mount("overlay", root, "overlay", 0, f"lowerdir=/,upperdir={upper},workdir={work}")
    for point in _top_level_mounts():
        if point in ("/proc", scratch) or point.startswith(scratch + "/"):
            continue
        inside = root + point
        if os.path.islink(inside):
            continue
        if os.path.isdir(point):
            os.makedirs(inside, exist_ok=True)
        elif not os.path.exists(inside):  # a file bind-mounted on the host (resolv.conf, ...)
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            with open(inside, "a"):
                pass
        _mount(point, inside, None, MS_BIND | MS_REC)
    os.makedirs(root + "/proc", exist_ok=True)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    return root


def _bind_volumes(mounts: list[dict[str, Any]]) -> None:
    """Called inside the new root: sources are O_PATH fds opened before chroot."""
    for mount in mounts:
        target = mount["target"]
        source = f"/proc/self/fd/{mount['fd']}"
        if mount["file"]:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.exists(target):
                with open(target, "a"):
                    pass
        else:
            os.makedirs(target, exist_ok=True)
        _mount(source, target, None, MS_BIND | MS_REC)
        if mount["readonly"]:
            _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def _add_image_paths(root: str, links: dict[str, str]) -> None:
    """The image's own contents: symlinks into the host, in the container's upper layer."""
    for path, target in links.items():
        inside = root + path
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        if os.path.lexists(inside):
            os.remove(inside)
        os.symlink(target, inside)


def _exec_container(spec: dict[str, Any]) -> None:
    """In the child: pid 1 of the new PID namespace. Never returns."""
    try:
        _die_with_parent()
        for mount in spec["mounts"]:
            mount["fd"] = os.open(mount["source"], os.O_PATH)
        root = _build_root(spec)
        _add_image_paths(root, spec.get("links") or {})
        os.chroot(root)
        os.chdir("/")
        _bind_volumes(spec["mounts"])
        workdir = spec["cwd"] or "/"
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
        for mount in spec["mounts"]:
            os.close(mount["fd"])
    except OSError as error:
        _report(f"error failed to create containerd task: {error}")
        os._exit(128)
    argv, env = spec["argv"], spec["env"]
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as error:
        reason = (
            f'exec: "{argv[0]}": executable file not found in $PATH'
            if isinstance(error, FileNotFoundError) and "/" not in argv[0]
            else f'exec: "{argv[0]}": {error.strerror}'
        )
        _report(
            "error failed to create containerd task: failed to create shim task: OCI runtime "
            "create failed: runc create failed: unable to start container process: "
            f"{reason}: unknown"
        )
        os._exit(128)


def container(spec: dict[str, Any]) -> None:
    _setns(spec["netns"], CLONE_NEWNET)
    _setns(spec["utsns"], CLONE_NEWUTS)
    _check(libc.unshare(CLONE_NEWNS | CLONE_NEWPID), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    os.set_inheritable(STATUS_FD[0], False)
    pid = os.fork()
    if pid == 0:
        _exec_container(spec)
    _report(f"pid {pid}")
    os.close(STATUS_FD[0])
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # kubesim signals the container itself
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            status = 0
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status))


def main() -> None:
    _die_with_parent()
    STATUS_FD[0] = int(sys.argv[2])
    with open(sys.argv[1]) as file:
        spec = json.load(file)
    if os.getppid() != spec["parent"]:
        os._exit(1)  # kubesim died before prctl took effect
    try:
        if spec["mode"] == "sandbox":
            sandbox(spec)
        else:
            container(spec)
    except OSError as error:
        _report(f"error failed to create containerd task: {error}")
        os._exit(128)


if __name__ == "__main__":
    main()
