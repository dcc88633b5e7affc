"""Round trips and output throughput over a set of sessions, interleaved against noise.

This machine is shared and noisy, so every figure is taken for all targets in
the same run, round by round: round trips alternate between the sessions
(rotating who goes first), output runs go target after target, and the best
of the repeats counts (the run least disturbed by others). Both the
benchmark command and the quick regression guard in the suite use these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.benchmarks.sessions import CHUNK, Delivery, Session

MIB = 2**20


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
    return ordered[index]


@dataclass
class RoundTrips:
    reply_ms: list[float] = field(default_factory=list)
    idle_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        return {
            "reply_p50_ms": percentile(self.reply_ms, 50),
            "reply_p99_ms": percentile(self.reply_ms, 99),
            "idle_p50_ms": percentile(self.idle_ms, 50),
            "idle_p99_ms": percentile(self.idle_ms, 99),
            "rounds": len(self.idle_ms),
        }


async def round_trips(
    sessions: list[Session], rounds: int, *, warmup: int = 20
) -> dict[str, RoundTrips]:
    """``rounds`` round trips per session, interleaved, after ``warmup`` untimed ones."""
    found = {session.name: RoundTrips() for session in sessions}
    for index in range(rounds + warmup):
        shift = index % len(sessions)
        for session in sessions[shift:] + sessions[:shift]:
            reply_ms, idle_ms = await session.round_trip()
            if index >= warmup:
                found[session.name].reply_ms.append(reply_ms)
                found[session.name].idle_ms.append(idle_ms)
    return found


@dataclass
class Output:
    """One kind of output cell, repeated: best time, worst delivery."""

    expected_bytes: int
    expected_messages: int
    runs: list[Delivery] = field(default_factory=list)

    @property
    def best_seconds(self) -> float:
        return min(run.seconds for run in self.runs)

    @property
    def mib_per_s(self) -> float:
        return self.expected_bytes / MIB / self.best_seconds

    @property
    def complete(self) -> bool:
        """Whether every run delivered every byte and message."""
        return all(
            run.nbytes == self.expected_bytes and run.messages == self.expected_messages
            for run in self.runs
        )

    def summary(self) -> dict[str, Any]:
        worst = min(self.runs, key=lambda run: (run.nbytes, run.messages))
        return {
            "mib_per_s": self.mib_per_s,
            "best_seconds": self.best_seconds,
            "expected_bytes": self.expected_bytes,
            "expected_messages": self.expected_messages,
            "delivered_bytes": worst.nbytes,
            "delivered_messages": worst.messages,
            "notices": max(run.notices for run in self.runs),
            "notice": next((run.notice_text for run in self.runs if run.notice_text), ""),
            "complete": self.complete,
            "repeats": len(self.runs),
        }


async def outputs(
    sessions: list[Session], *, stream_bytes: int, display_bytes: int, repeats: int
) -> dict[str, dict[str, Output]]:
    """Per session: ``stream`` (64 KiB chunks) and ``display`` (one display_data) runs."""
    kinds = {"stream": (stream_bytes, stream_bytes // CHUNK), "display": (display_bytes, 1)}
    found = {
        session.name: {
            kind: Output(nbytes, messages) for kind, (nbytes, messages) in kinds.items() if nbytes
        }
        for session in sessions
    }
    for _ in range(repeats):
        for session in sessions:
            for kind, figures in found[session.name].items():
                run = session.stream_output if kind == "stream" else session.display_output
                figures.runs.append(await run(figures.expected_bytes))
    return found
