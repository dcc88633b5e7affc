"""The local backend: processes, lifecycle facts, interrupts, restarts, clean-up."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from jkctl.backends.base import Died, LaunchSpec, Running
from jkctl.backends.local import LocalBackend, _ephemeral_range
from jkctl.errors import KernelStartError
from jkctl.kube.podconfig import parse_pod_config


def spec(tmp_path: Path, *argv: str, **jkctl: object) -> LaunchSpec:
    pod = parse_pod_config(jkctl, source="test")
    return LaunchSpec(name="test", argv=tuple(argv), resource_dir=tmp_path, pod=pod)


async def test_a_crashing_kernel_reports_died_with_its_last_output(tmp_path: Path) -> None:
    backend = LocalBackend(runtime_dir=tmp_path / "runtime")
    code = "import sys; print('first'); print('ImportError: no module named x'); sys.exit(4)"
    kernel = await backend.launch(spec(tmp_path, "python", "-c", code), kernel_id="k1", env={})
    events = kernel.events()
    assert await anext(events) == Running(incarnation=0)
    died = await anext(events)
    assert isinstance(died, Died)
    assert died.incarnation == 0
    assert died.reason == (
        "The kernel process exited with code 4; its last output was: "
        "ImportError: no module named x."
    )
    await kernel.terminate()
    assert not list((tmp_path / "runtime").iterdir())
    await backend.aclose()


async def test_a_missing_program_cannot_launch(tmp_path: Path) -> None:
    backend = LocalBackend(runtime_dir=tmp_path / "runtime")
    with pytest.raises(KernelStartError, match="could not run 'no-such-program-here'"):
        await backend.launch(spec(tmp_path, "no-such-program-here"), kernel_id="k2", env={})
    assert not list((tmp_path / "runtime").iterdir())


async def test_connection_file_env_and_working_dir(tmp_path: Path) -> None:
    backend = LocalBackend(runtime_dir=tmp_path / "runtime")
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    out = tmp_path / "seen.json"
    code = (
        "import json, os, sys; cf = json.load(open(sys.argv[1])); "
        "seen = {'cwd': os.getcwd(), 'env': dict(os.environ), 'cf': cf}; "
        f"json.dump(seen, open({str(out)!r}, 'w'))"
    )
    kernel = await backend.launch(
        spec(tmp_path, "python", "-c", code, "{connection_file}", env={"FROM_SPEC": "yes"}),
        kernel_id="k3",
        env={"KERNEL_WORKING_DIR": str(workdir), "KERNEL_USERNAME": "ada"},
    )
    events = kernel.events()
    assert isinstance(await anext(events), Running)
    assert isinstance(await anext(events), Died)
    seen = json.loads(out.read_text())
    assert seen["cwd"] == str(workdir)
    assert seen["env"]["FROM_SPEC"] == "yes"
    assert seen["env"]["KERNEL_USERNAME"] == "ada"
    assert seen["env"]["KERNEL_ID"] == "k3"
    assert seen["env"]["JPY_PARENT_PID"] == str(os.getpid())
    assert seen["cf"]["key"] == kernel.connection.key.decode()
    assert seen["cf"]["ip"] == "127.0.0.1"
    assert kernel.connection.shell == f"tcp://127.0.0.1:{seen['cf']['shell_port']}"
    await kernel.terminate()


async def test_restart_starts_a_new_incarnation_and_terminate_stops_it(tmp_path: Path) -> None:
    backend = LocalBackend(runtime_dir=tmp_path / "runtime")
    sleeper = spec(tmp_path, sys.executable, "-c", "import time; time.sleep(60)")
    kernel = await backend.launch(sleeper, kernel_id="k4", env={})
    events = kernel.events()
    assert await anext(events) == Running(incarnation=0)
    first = kernel.pid
    await kernel.restart()
    assert kernel.incarnation == 1
    # The old process's exit was asked for: no Died, straight to the new Running.
    assert await anext(events) == Running(incarnation=1)
    assert kernel.pid != first
    assert first is not None
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)
    second = kernel.pid
    await backend.aclose()
    assert second is not None
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)
    assert [event async for event in events] == []


async def test_concurrent_kernels_never_share_a_port(tmp_path: Path) -> None:
    backend = LocalBackend(runtime_dir=tmp_path / "runtime")
    sleeper = spec(tmp_path, sys.executable, "-c", "import time; time.sleep(60)")
    kernels = [await backend.launch(sleeper, kernel_id=f"p{n}", env={}) for n in range(10)]
    endpoints = [
        getattr(kernel.connection, channel)
        for kernel in kernels
        for channel in ("shell", "iopub", "stdin", "control", "hb")
    ]
    assert len(set(endpoints)) == 50
    # Below the ephemeral range, where outgoing connections cannot take them.
    low, _ = _ephemeral_range()
    assert all(int(endpoint.rsplit(":", 1)[1]) < low for endpoint in endpoints)
    await backend.aclose()
