"""Nothing outlives kubesim: not even when kubesim itself is SIGKILLed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
from pathlib import Path

from tests.kubesim.kubelet_fixtures import mounts_under

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from tests.kubesim import resources
    from tests.kubesim.kubelet import Kubelet, KubeletConfig
    from tests.kubesim.kubelet_fixtures import make_store, wait_for, phase_is

    async def main() -> None:
        store = make_store()
        kubelet = Kubelet(store, KubeletConfig(state_dir=Path(sys.argv[1])))
        async with asyncio.TaskGroup() as group:
            group.create_task(kubelet.run())
            command = ["sh", "-c", "sleep 300 & echo up; wait"]
            spec = {"containers": [{"name": "c", "image": "x", "command": command}]}
            pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": spec}
            store.create(resources.PODS, pod)
            await wait_for(store, resources.PODS, "default", "p", phase_is("Running"))
            worker = kubelet._worker("default", "p")
            runner = worker.runners["c"]
            pids = [worker.sandbox.pid, runner.process.shim.pid, runner.process.pid]
            logs = kubelet.log_stream("default", "p", container=None, follow=True, tail_lines=None,
                                      previous=False, timestamps=False)
            async for chunk in logs:  # "up" comes after the background sleep was forked
                break
            await logs.aclose()
            children = Path(f"/proc/{runner.process.pid}/task/{runner.process.pid}/children")
            pids += [int(pid) for pid in children.read_text().split()]
            print(" ".join(map(str, pids)), flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())
    """
)


async def wait_exit(pid: int) -> None:
    """Wait for any process (not only a child) to exit: its pidfd becomes readable."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    exited = asyncio.Event()
    loop.add_reader(fd, exited.set)
    try:
        await exited.wait()
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def test_sigkilled_kubesim_leaves_no_process(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SCRIPT, str(tmp_path), cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = await process.stdout.readline()
        pids = [int(pid) for pid in line.split()]
        assert len(pids) == 4, line
        process.send_signal(signal.SIGKILL)
        await process.wait()
        async with asyncio.timeout(10):
            for pid in pids:
                await wait_exit(pid)
        assert mounts_under(tmp_path) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
