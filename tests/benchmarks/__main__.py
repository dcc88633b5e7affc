"""jkctl's benchmark suite, one command: ``python -m tests.benchmarks``.

Measures, for jkctl on the local backend, jkctl on kubesim, and in the same
run the references (the floor: ``jupyter_client`` straight to a kernel; and
Jupyter Server 2.x serving a local kernel):

- ``rtt``: execute round trip of ``pass`` (to ``execute_reply`` and to
  ``status: idle``), p50/p99, both websocket protocols;
- ``output``: MiB/s for a cell printing 64 MiB in 64 KiB chunks and for one
  16 MiB ``display_data``, every byte and message counted (the run fails
  when jkctl or the floor miss any);
- ``start``: POST -> first ``kernel_info_reply``, p50/p90, with the kubesim
  breakdown and a warm-pool hit;
- ``concurrency``: 10, 25 and 100 kernels started at once (time until all
  answer, failures) and the server's RSS idle and with them up;
- ``cli``: ``jkctl --help`` and ``jkctl kernels list`` wall time.

Prints a table per section with ratios to the references, the verdicts on
issue 6's targets, then every figure as JSON (also written to ``--json``).
``--only`` picks sections, ``--targets`` servers, ``--quick`` shrinks every
count to run in about a minute. The machine is shared: targets are
interleaved round by round and best-of-N or medians are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pstats
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from jkctl.kube.client import KubeClient
from jkctl.kube.login import kubeconfig_login
from tests.benchmarks import cli, measure, report, servers, starts
from tests.benchmarks.servers import Server
from tests.benchmarks.sessions import FloorSession, GatewaySession, Session

SECTIONS = ("rtt", "output", "start", "concurrency", "cli")
TARGETS = ("jupyter_server", "local", "kubesim")
MIB = 2**20


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections, comma-separated")
    parser.add_argument("--targets", default=",".join(TARGETS), help="servers, comma-separated")
    parser.add_argument("--quick", action="store_true", help="small counts: about a minute")
    parser.add_argument("--rounds", type=int, help="round trips per target (500)")
    parser.add_argument("--stream-mib", type=int, help="printed output per cell (64)")
    parser.add_argument("--display-mib", type=int, help="one display_data (16)")
    parser.add_argument("--repeats", type=int, help="output runs per target (5)")
    parser.add_argument("--starts", type=int, help="kernel starts per target (10)")
    parser.add_argument("--concurrency", help="kernels started at once (10,25,100)")
    parser.add_argument("--cli-runs", type=int, help="runs per command (10)")
    parser.add_argument("--pool-size", type=int, default=2, help="warm pool of the pool daemon")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--profile", action="store_true", help="run jkctl daemons in cProfile")
    args = parser.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds or (100 if quick else 500)
    args.stream_mib = args.stream_mib if args.stream_mib is not None else (16 if quick else 64)
    args.display_mib = args.display_mib if args.display_mib is not None else (4 if quick else 16)
    # The display cell is one message: one burst of load elsewhere spoils a run, so best of 5.
    args.repeats = args.repeats or (2 if quick else 5)
    args.starts = args.starts or (3 if quick else 10)
    args.concurrency = [
        int(n) for n in (args.concurrency or ("10" if quick else "10,25,100")).split(",")
    ]
    args.cli_runs = args.cli_runs or (5 if quick else 10)
    args.only = [s for s in args.only.split(",") if s]
    args.targets = [t for t in args.targets.split(",") if t]
    for section in args.only:
        if section not in SECTIONS:
            parser.error(f"unknown section {section!r}; choose from {', '.join(SECTIONS)}")
    for target in args.targets:
        if target not in TARGETS:
            parser.error(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    return args


class Run:
    """The servers of one benchmark run, started as the sections need them."""

    def __init__(self, args: argparse.Namespace, root: Path, stack: contextlib.ExitStack) -> None:
        self.args = args
        self.root = root
        self.stack = stack
        self.profiles: dict[str, Path] = {}
        self._kubesim: Any = None
        self._servers: dict[str, Server] = {}

    def _launcher(self, name: str) -> list[str] | None:
        if not self.args.profile:
            return None
        path = self.root / f"{name}.prof"
        self.profiles[name] = path
        return [sys.executable, "-m", "cProfile", "-o", str(path), "-m", "jkctl"]

    def kubesim(self) -> Any:
        if self._kubesim is None:
            self._kubesim = self.stack.enter_context(servers.kubesim_cluster(self.root))
        return self._kubesim

    def server(self, key: str) -> Server:
        if key not in self._servers:
            root = self.root / key.replace(" ", "-")
            if key == "jupyter_server":
                found = servers.jupyter_server(root)
            elif key == "jupyter_server defaults":
                found = servers.jupyter_server(root, defaults=True)
            elif key == "local":
                found = servers.jkctl_local(root, launcher=self._launcher("jkctl-local"))
            elif key == "kubesim":
                found = servers.jkctl_kubesim(
                    root, self.kubesim(), launcher=self._launcher("jkctl-kubesim")
                )
            elif key == "kubesim pool":
                found = servers.jkctl_kubesim(
                    root,
                    self.kubesim(),
                    "--warm-pool",
                    f"{servers.BENCH_SPEC}={self.args.pool_size}",
                    name="jkctl kubesim, warm pool hit",
                    prefix="pool",
                )
            else:
                raise KeyError(key)
            self.stack.callback(found.stop)
            self._servers[key] = found
        return self._servers[key]

    def servers(self) -> list[Server]:
        return [self.server(target) for target in self.args.targets]


async def sessions_for(run: Run, http: aiohttp.ClientSession) -> list[Session]:
    found: list[Session] = []
    floor = FloorSession()
    await floor.open()
    found.append(floor)
    for server in run.servers():
        for protocol in ("legacy", "v1"):
            session = GatewaySession(server, http, protocol=protocol)
            await session.open()
            found.append(session)
    return found


async def relay_sections(run: Run, http: aiohttp.ClientSession, figures: dict[str, Any]) -> None:
    args = run.args
    sessions = await sessions_for(run, http)
    try:
        if "rtt" in args.only:
            found = await measure.round_trips(sessions, args.rounds)
            figures["rtt"] = {name: rt.summary() for name, rt in found.items()}
        if "output" in args.only:
            output = await measure.outputs(
                sessions,
                stream_bytes=args.stream_mib * MIB,
                display_bytes=args.display_mib * MIB,
                repeats=args.repeats,
            )
            figures["output"] = {
                name: {kind: o.summary() for kind, o in kinds.items()}
                for name, kinds in output.items()
            }
    finally:
        for session in sessions:
            await session.close()
    if "output" in args.only and "jupyter_server" in args.targets:
        # Jupyter Server as it ships: how much of the output reaches the client.
        defaults = GatewaySession(run.server("jupyter_server defaults"), http, protocol="legacy")
        await defaults.open()
        try:
            found_defaults = await measure.outputs(
                [defaults], stream_bytes=args.stream_mib * MIB, display_bytes=0, repeats=1
            )
        finally:
            await defaults.close()
        figures["output"].update(
            {
                name: {kind: o.summary() for kind, o in kinds.items()}
                for name, kinds in found_defaults.items()
            }
        )


async def start_section(run: Run, http: aiohttp.ClientSession, figures: dict[str, Any]) -> None:
    args = run.args
    measured = run.servers()
    pooled: set[str] = set()
    if "kubesim" in args.targets:
        pool = run.server("kubesim pool")
        measured.append(pool)
        pooled.add(pool.name)
    boot = await starts.kernel_boot(args.starts, run.root)
    watcher = starts.PodTimes()
    async with contextlib.AsyncExitStack() as stack:
        if "kubesim" in args.targets:
            kube_server = run.server("kubesim")
            kube = await stack.enter_async_context(
                KubeClient(kubeconfig_login(kubeconfig=run.kubesim().kubeconfig))
            )
            group = await stack.enter_async_context(asyncio.TaskGroup())
            follow = group.create_task(watcher.follow(kube, kube_server.namespace))
            stack.callback(follow.cancel)
        found = await starts.sequential_starts(measured, http, args.starts, pooled=pooled)
    section: dict[str, Any] = {
        "floor_boot": {
            "p50_ms": measure.percentile(boot, 50),
            "p90_ms": measure.percentile(boot, 90),
            "samples": len(boot),
        },
        "sequential": {name: s.summary() for name, s in found.items()},
    }
    if "kubesim" in args.targets:
        kube_server = run.server("kubesim")
        section["kubesim_breakdown"] = starts.kube_breakdown(
            found[kube_server.name],
            seen=watcher.seen,
            timelines=starts.daemon_timelines(kube_server),
            boot_p50=section["floor_boot"]["p50_ms"],
        )
    figures["start"] = section


async def concurrency_section(
    run: Run, http: aiohttp.ClientSession, figures: dict[str, Any]
) -> None:
    levels = run.args.concurrency
    section: dict[str, Any] = {
        report.FLOOR: {
            "levels": [await starts.concurrent_boots(run.root, n) for n in levels],
        }
    }
    for server in run.servers():
        # One kernel first, so that what the server imports on first use is in "idle".
        warm = GatewaySession(server, http)
        await warm.open()
        await warm.close()
        idle = starts.rss_mib(server.pid)
        section[server.name] = {
            "idle_rss_mib": idle,
            "levels": [await starts.concurrent_starts(server, http, n) for n in levels],
        }
    figures["concurrency"] = section


async def bench(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "settings": {
            key: getattr(args, key)
            for key in (
                "only",
                "targets",
                "rounds",
                "stream_mib",
                "display_mib",
                "repeats",
                "starts",
                "concurrency",
                "cli_runs",
                "pool_size",
            )
        },
    }
    with contextlib.ExitStack() as stack:
        run = Run(args, root, stack)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            if {"rtt", "output"} & set(args.only):
                await relay_sections(run, http, figures)
            if "start" in args.only:
                await start_section(run, http, figures)
            if "concurrency" in args.only:
                await concurrency_section(run, http, figures)
        if "cli" in args.only:
            figures["cli"] = cli.measure_cli(run.servers(), args.cli_runs)
    # The daemons have stopped: their profiles are written.
    for name, path in run.profiles.items():
        if path.exists():
            print(f"\n{name}: where the daemon spent its time (cProfile, by own time)")
            pstats.Stats(str(path)).sort_stats("tottime").print_stats(25)
    return figures


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    with tempfile.TemporaryDirectory(prefix="jkctl-bench-") as tmp:
        figures = asyncio.run(bench(args, Path(tmp)))
    figures["targets"] = report.verdicts(figures)
    figures["missing_output"] = report.missing_output(figures)
    report.print_tables(figures)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    for missing in figures["missing_output"]:
        print(f"FAIL: output missing: {missing}", file=sys.stderr)
    return 1 if figures["missing_output"] else 0


if __name__ == "__main__":
    sys.exit(main())
