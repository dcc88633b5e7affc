"""The detached daemon's entry point: ``python -m jkctl.daemon --settings JSON --ready-fd N``.

``jkctl connect`` resolves the settings, starts this process in its own
session with stdout and stderr going to the log file, and waits on the pipe
``N``: this process writes one JSON line to it, ``{"ready": {...}}`` once it
answers requests or ``{"error": {...}}`` (an error payload) if it cannot
start, then closes it. If the process dies first, the pipe closes empty and
``jkctl connect`` reports that with the log's last lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys

from jkctl.daemon.server import run_daemon
from jkctl.daemon.settings import DaemonSettings
from jkctl.daemon.state import DaemonRecord
from jkctl.errors import JkctlError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jkctl.daemon")
    parser.add_argument("--settings", required=True, help="resolved settings as JSON")
    parser.add_argument("--ready-fd", type=int, default=None)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    settings = DaemonSettings.from_json(args.settings)

    def report(message: dict[str, object]) -> None:
        if args.ready_fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(args.ready_fd, (json.dumps(message) + "\n").encode())
            os.close(args.ready_fd)
        args.ready_fd = None

    def ready(record: DaemonRecord, _token: str) -> None:
        report({"ready": dataclasses.asdict(record)})

    try:
        asyncio.run(run_daemon(settings, on_ready=ready))
    except JkctlError as error:
        logging.getLogger("jkctl.daemon").error("%s", error)
        report({"error": dict(error.to_payload())})
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
