"""The benchmark's table and its verdicts on issue 6's targets, from the figures as JSON.

Figures are shown beside the references measured in the same run, as
ratios: to the floor (``jupyter_client`` straight to a kernel) and to Jupyter
Server 2.x with the same wire protocol. :func:`verdicts` checks the targets
and :func:`missing_output` lists every target that lost output (which fails
the run); a missed speed target is reported, not fatal, since this machine
is shared and noisy.
"""

from __future__ import annotations

from typing import Any

FLOOR = "floor (jupyter_client)"
JUPYTER = "jupyter_server"


def _protocol(name: str) -> str:
    return name.rsplit(", ", 1)[1] if ", " in name else ""


def _ratio(value: float, reference: float | None) -> str:
    if not reference or value is None:
        return "-"
    return f"{value / reference:.2f}x"


def print_rtt(rtt: dict[str, dict[str, float]]) -> None:
    floor = rtt.get(FLOOR, {}).get("idle_p50_ms")
    print("\nExecute round trip of `pass` (ms; idle = until status: idle)")
    print(
        f"  {'target':34} {'reply p50':>9} {'p99':>7} {'idle p50':>9} {'p99':>7} "
        f"{'+floor':>7} {'x floor':>8} {'x jupyter_server':>17}"
    )
    for name, row in rtt.items():
        js = rtt.get(f"{JUPYTER}, {_protocol(name)}", {}).get("idle_p50_ms")
        extra = f"{row['idle_p50_ms'] - floor:+7.2f}" if floor else "-"
        print(
            f"  {name:34} {row['reply_p50_ms']:9.2f} {row['reply_p99_ms']:7.2f} "
            f"{row['idle_p50_ms']:9.2f} {row['idle_p99_ms']:7.2f} {extra:>7} "
            f"{_ratio(row['idle_p50_ms'], floor):>8} {_ratio(row['idle_p50_ms'], js):>17}"
        )


def print_output(output: dict[str, dict[str, dict[str, Any]]]) -> None:
    print("\nOutput throughput (MiB/s, best run; delivered = worst run's bytes and messages)")
    print(
        f"  {'target':34} {'cell':8} {'MiB/s':>7} {'of floor':>9} {'of JS':>7} "
        f"{'delivered':>22} {'complete':>9}"
    )
    floor = output.get(FLOOR, {})
    for name, kinds in output.items():
        for kind, row in kinds.items():
            reference = floor.get(kind, {}).get("mib_per_s")
            js = output.get(f"{JUPYTER}, {_protocol(name)}", {}).get(kind, {}).get("mib_per_s")
            of_floor = f"{row['mib_per_s'] / reference:.0%}" if reference else "-"
            of_js = f"{row['mib_per_s'] / js:.0%}" if js else "-"
            delivered = (
                f"{row['delivered_bytes'] / 2**20:.1f}/{row['expected_bytes'] / 2**20:.0f} MiB "
                f"{row['delivered_messages']}/{row['expected_messages']}"
            )
            print(
                f"  {name:34} {kind:8} {row['mib_per_s']:7.1f} {of_floor:>9} {of_js:>7} "
                f"{delivered:>22} {'yes' if row['complete'] else 'NO':>9}"
            )
            if row["notice"]:
                print(f"  {'':34}   it said: {row['notice'].strip().splitlines()[0][:90]}")


def print_starts(start: dict[str, Any]) -> None:
    floor = start.get("floor_boot", {}).get("p50_ms")
    print("\nKernel start: POST /api/kernels -> first kernel_info_reply (ms)")
    print(f"  {'target':34} {'p50':>7} {'p90':>7} {'POST p50':>9} {'x floor':>8} {'x JS':>6}")
    if floor:
        boot = start["floor_boot"]
        print(f"  {'floor (kernel boot, raw zmq)':34} {boot['p50_ms']:7.0f} {boot['p90_ms']:7.0f}")
    js = start.get("sequential", {}).get(JUPYTER, {}).get("p50_ms")
    for name, row in start.get("sequential", {}).items():
        print(
            f"  {name:34} {row['p50_ms']:7.0f} {row['p90_ms']:7.0f} {row['post_p50_ms']:9.0f} "
            f"{_ratio(row['p50_ms'], floor):>8} {_ratio(row['p50_ms'], js):>6}"
        )
    breakdown = start.get("kubesim_breakdown")
    if breakdown:
        print("  kubesim breakdown (ms after the POST):")
        labels = {
            "created": "API create (pod exists)",
            "scheduled": "scheduled",
            "running": "running (container started)",
            "tunnel_open": "tunnel open (kernel's first bytes)",
            "kernel_info": "kernel_info_reply at the client",
            "overhead": "daemon overhead over Running",
        }
        for step, label in labels.items():
            if step in breakdown:
                row = breakdown[step]
                print(f"    {label:36} p50 {row['p50']:6.0f}   p90 {row['p90']:6.0f}")
        print("    (overhead = kernel_info - running - the kernel boot floor)")


def print_concurrency(concurrency: dict[str, Any]) -> None:
    print("\nConcurrent starts: N kernels started at once; the server's RSS (MiB)")
    print(
        f"  {'target':34} {'N':>4} {'all answered':>13} {'failures':>9} "
        f"{'RSS idle':>9} {'RSS up':>8} {'per kernel':>11}"
    )
    for name, row in concurrency.items():
        idle = row.get("idle_rss_mib")
        for level in row["levels"]:
            rss = level.get("rss_mib")
            per = (rss - idle) / level["kernels"] if rss is not None and idle is not None else None
            print(
                f"  {name:34} {level['kernels']:4d} {level['all_answered_s']:12.1f}s "
                f"{level['failures']:9d} {f'{idle:.0f}' if idle is not None else '-':>9} "
                f"{f'{rss:.0f}' if rss is not None else '-':>8} "
                f"{f'{per:.2f}' if per is not None else '-':>11}"
            )
            for error in level.get("errors", []):
                print(f"  {'':34}   {error}")


def print_cli(cli: dict[str, Any]) -> None:
    floor = cli.get("python -c pass (floor)", {}).get("median_ms")
    print("\nCLI latency (ms, wall)")
    print(f"  {'command':52} {'median':>7} {'best':>7} {'x python':>9}")
    for name, row in cli.items():
        print(
            f"  {name:52} {row['median_ms']:7.0f} {row['best_ms']:7.0f} "
            f"{_ratio(row['median_ms'], floor):>9}"
        )


def print_tables(figures: dict[str, Any]) -> None:
    if "rtt" in figures:
        print_rtt(figures["rtt"])
    if "output" in figures:
        print_output(figures["output"])
    if "start" in figures:
        print_starts(figures["start"])
    if "concurrency" in figures:
        print_concurrency(figures["concurrency"])
    if "cli" in figures:
        print_cli(figures["cli"])
    print("\nTargets (issue 6)")
    for verdict in figures["targets"]:
        mark = "met " if verdict["met"] else "MISS"
        print(f"  {mark} {verdict['target']}: {verdict['value']} (target {verdict['limit']})")


def _check(
    found: list[dict[str, Any]],
    target: str,
    value: float,
    limit: float,
    *,
    unit: str,
    most: bool = True,
) -> None:
    met = value <= limit if most else value >= limit
    found.append(
        {
            "target": target,
            "value": f"{value:.2f} {unit}".strip(),
            "limit": f"{'<=' if most else '>='} {limit:.2f} {unit}".strip(),
            "met": met,
        }
    )


def verdicts(figures: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    rtt = figures.get("rtt", {})
    floor = rtt.get(FLOOR, {}).get("idle_p50_ms")
    for name, row in rtt.items():
        if floor and name.startswith("jkctl"):
            margin = 2.0 if "kubesim" in name else 1.0
            _check(found, f"RTT p50, {name}", row["idle_p50_ms"], floor + margin, unit="ms")
    output = figures.get("output", {})
    for name, kinds in output.items():
        for kind, row in kinds.items():
            reference = output.get(FLOOR, {}).get(kind, {}).get("mib_per_s")
            if reference and name.startswith("jkctl local"):
                _check(
                    found,
                    f"{kind} throughput, {name}",
                    row["mib_per_s"] / reference,
                    0.9,
                    unit="of floor",
                    most=False,
                )
    start = figures.get("start", {})
    overhead = start.get("kubesim_breakdown", {}).get("overhead")
    if overhead:
        _check(
            found,
            "kubesim start, daemon overhead over Running p50",
            overhead["p50"],
            150,
            unit="ms",
        )
    for name, row in start.get("sequential", {}).items():
        if "warm pool" in name:
            _check(found, f"start p50, {name}", row["p50_ms"], 300, unit="ms")
    for name, row in figures.get("concurrency", {}).items():
        if not name.startswith("jkctl"):
            continue
        for level in row["levels"]:
            if level["kernels"] >= 100:
                _check(
                    found,
                    f"{level['kernels']} concurrent starts, {name}: failures",
                    level["failures"],
                    0,
                    unit="",
                )
        biggest = max(row["levels"], key=lambda level: level["kernels"])
        if row.get("idle_rss_mib") is not None and biggest.get("rss_mib") is not None:
            growth = (biggest["rss_mib"] - row["idle_rss_mib"]) / biggest["kernels"]
            _check(found, f"RSS growth per idle kernel, {name}", growth, 1.0, unit="MiB")
    cli = figures.get("cli", {})
    for name, row in cli.items():
        if "median_ms" not in row:
            continue
        if name == "jkctl --help":
            _check(found, "jkctl --help", row["median_ms"], 150, unit="ms")
        elif name.startswith(("jkctl kernels list", "jkctl status")):
            _check(found, name, row["median_ms"], 400, unit="ms")
    return found


def missing_output(figures: dict[str, Any]) -> list[str]:
    """Targets that must deliver everything (the floor and jkctl) and did not."""
    missing = []
    for name, kinds in figures.get("output", {}).items():
        if not (name == FLOOR or name.startswith("jkctl")):
            continue
        for kind, row in kinds.items():
            if not row["complete"]:
                missing.append(
                    f"{name} {kind}: {row['delivered_bytes']} of {row['expected_bytes']} bytes, "
                    f"{row['delivered_messages']} of {row['expected_messages']} messages"
                )
    return missing
