"""Tunnel latency and throughput against the fake API server (not a test).

    python -m tests.benchmarks.bench_tunnel [--messages 2000] [--mebibytes 256]

The fake API server (pods/portforward over v4.channel.k8s.io, dialing a TCP
echo server) runs in a child process, as the API server and kubelet would be
elsewhere; the tunnel and the client run here. Reported:

- round-trip latency of small messages (p50/p99), over the tunnel and, for
  scale, straight to the echo server over TCP;
- echo throughput in MiB/s (bytes pushed through the tunnel and back).

Swap the fake for kubesim once it lands (`--kubeconfig`).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from jkctl.kube.client import KubeClient
from jkctl.kube.login import Credentials
from jkctl.kube.tunnel import Tunnel
from tests.kube.fakeapi import CountingLogin, EchoServer, FakeApi

POD_PORT = 5555


def serve(pipe: Connection) -> None:
    """Child process: fake API server + echo 'kernel port'; reports URL and echo port."""

    async def main() -> None:
        async with FakeApi() as api, EchoServer() as echo:
            api.pod_ports[POD_PORT] = echo.port
            pipe.send((api.url, echo.port))
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    asyncio.run(main())


async def latencies(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int, size: int
) -> list[float]:
    payload = b"x" * size
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        writer.write(payload)
        await writer.drain()
        await reader.readexactly(size)
        samples.append(time.perf_counter() - started)
    return samples


async def throughput(path: Path, mebibytes: int) -> float:
    reader, writer = await asyncio.open_unix_connection(path, limit=1 << 20)
    chunk = b"\0" * (256 * 1024)
    total = mebibytes * 1024 * 1024

    async def send() -> None:
        for _ in range(total // len(chunk)):
            writer.write(chunk)
            await writer.drain()

    async def receive() -> None:
        left = total
        while left:
            left -= len(await reader.read(1 << 20))

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        group.create_task(send())
        group.create_task(receive())
    elapsed = time.perf_counter() - started
    writer.close()
    return mebibytes / elapsed


def percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100)
    return f"p50 {cuts[49] * 1e6:7.0f} µs   p99 {cuts[98] * 1e6:7.0f} µs"


async def bench(url: str, echo_port: int, messages: int, mebibytes: int) -> None:
    credentials = Credentials(
        server=url, context="bench", cluster="bench", user="bench", namespace="bench"
    )
    async with KubeClient(CountingLogin(lambda _: credentials)) as kube:
        with tempfile.TemporaryDirectory() as folder:
            directory = Path(folder) / "t"
            async with Tunnel(kube, pod="bench", ports=[POD_PORT], directory=directory) as tunnel:
                for size in (64, 4096):
                    reader, writer = await asyncio.open_connection("127.0.0.1", echo_port)
                    await latencies(reader, writer, 100, size)
                    direct = await latencies(reader, writer, messages, size)
                    writer.close()
                    reader, writer = await asyncio.open_unix_connection(tunnel.path(POD_PORT))
                    await latencies(reader, writer, 100, size)  # warm up
                    tunnelled = await latencies(reader, writer, messages, size)
                    writer.close()
                    print(f"round trip {size:5d} B  direct TCP  {percentiles(direct)}")
                    print(f"round trip {size:5d} B  tunnel      {percentiles(tunnelled)}")
                rate = await throughput(tunnel.path(POD_PORT), mebibytes)
                print(f"echo throughput through the tunnel: {rate:.0f} MiB/s each way")
                await tunnel.wait_idle()
                print(f"tunnel stats: {tunnel.stats}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--mebibytes", type=int, default=256)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=serve, args=(theirs,))
    child.start()
    try:
        url, echo_port = ours.recv()
        asyncio.run(bench(url, echo_port, args.messages, args.mebibytes))
    finally:
        ours.send("stop")
        child.join(timeout=10)
        if child.is_alive():
            child.terminate()


if __name__ == "__main__":
    main()
