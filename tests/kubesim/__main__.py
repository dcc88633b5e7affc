"""`python -m tests.kubesim --kubeconfig PATH`: run a kubesim cluster in the foreground.

Writes the admin kubeconfig once the API server listens, prints one ready
line on stdout (`kubesim ready server=... kubeconfig=... control=...`),
logs to stderr, and runs until SIGINT or SIGTERM, then stops every pod
process and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import tempfile
from pathlib import Path

from tests.kubesim.cluster import Cluster, ClusterConfig
from tests.kubesim.control import ControlServer


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.kubesim", description=__doc__)
    parser.add_argument(
        "--kubeconfig", type=Path, required=True, help="where to write the admin kubeconfig"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="API port on 127.0.0.1 (default: any free)"
    )
    parser.add_argument(
        "--pull-delay", type=float, default=0.0, help="seconds each image pull takes"
    )
    parser.add_argument(
        "--fail-image",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME",
        help="images whose pulls fail (the flag may repeat)",
    )
    parser.add_argument(
        "--backoff-base",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="first back-off of crash loops and image pulls, doubling up to 300 s "
        "(default: 10, the kubelet's)",
    )
    parser.add_argument("--control-socket", type=Path, help="Unix socket for fault commands")
    parser.add_argument(
        "--state-dir", type=Path, help="where pods' files go (default: a temporary directory)"
    )
    parser.add_argument("--bookmark-interval", type=float, default=60.0, help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace, state_dir: Path) -> None:
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, main.cancel)
    config = ClusterConfig(
        kubeconfig=args.kubeconfig.resolve(),
        state_dir=state_dir,
        port=args.port,
        pull_delay=args.pull_delay,
        failing_images=frozenset(args.fail_image),
        backoff_base=args.backoff_base,
        bookmark_interval=args.bookmark_interval,
    )
    cluster = Cluster(config)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(cluster.running())
        control = ""
        if args.control_socket is not None:
            socket_path = args.control_socket.resolve()
            await stack.enter_async_context(ControlServer(cluster, socket_path).serving())
            control = f" control={socket_path}"
        print(
            f"kubesim ready server={cluster.server} kubeconfig={config.kubeconfig}{control}",
            flush=True,
        )
        await asyncio.Event().wait()  # until SIGINT/SIGTERM cancels this task


def main(argv: list[str] | None = None) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    with contextlib.ExitStack() as stack:
        state_dir = args.state_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="kubesim-"))
        )
        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(_serve(args, state_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
