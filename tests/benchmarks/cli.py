"""CLI latency: wall time of ``jkctl --help`` and ``jkctl kernels list``, beside references.

Each command runs ``runs`` times, the commands interleaved run by run; the
median and the best are reported. The references, run the same way: the
interpreter doing nothing (``python -c pass``, the floor any Python CLI
pays) and Jupyter's own listing command (``jupyter kernelspec list``).

``jkctl kernels list`` and ``jkctl status`` run against each jkctl daemon of
the run (with that daemon's environment, so they find it).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.benchmarks.servers import Server


@dataclass(frozen=True)
class Command:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed next to {sys.executable}")
    return found


def commands(servers: list[Server]) -> list[Command]:
    """The commands to time."""
    jkctl = _tool("jkctl")
    found = [
        Command("python -c pass (floor)", [sys.executable, "-c", "pass"]),
        Command("jupyter kernelspec list (reference)", [_tool("jupyter"), "kernelspec", "list"]),
        Command("jkctl --help", [jkctl, "--help"]),
    ]
    for server in servers:
        if server.is_jkctl:
            found.append(
                Command(f"jkctl status ({server.name})", [jkctl, "status"], env=server.env)
            )
            found.append(
                Command(
                    f"jkctl kernels list ({server.name})",
                    [jkctl, "kernels", "list"],
                    env=server.env,
                )
            )
    return found


def measure_cli(servers: list[Server], runs: int) -> dict[str, Any]:
    to_run = commands(servers)
    samples: dict[str, list[float]] = {command.name: [] for command in to_run}
    for command in to_run:  # one untimed run each: caches, .pyc files
        subprocess.run(command.argv, capture_output=True, env=command.env, check=False)
    for _ in range(runs):
        for command in to_run:
            started = time.perf_counter()
            result = subprocess.run(
                command.argv, capture_output=True, env=command.env, check=False, timeout=60
            )
            elapsed = (time.perf_counter() - started) * 1000
            if result.returncode != 0:
                raise RuntimeError(
                    f"{command.name} failed ({result.returncode}): {result.stderr[-500:]!r}"
                )
            samples[command.name].append(elapsed)
    figures: dict[str, Any] = {
        name: {"median_ms": statistics.median(values), "best_ms": min(values), "runs": len(values)}
        for name, values in samples.items()
    }
    return figures
