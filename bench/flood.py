#!/usr/bin/env python3
"""Flood an HTTP/1.1 server with malformed requests that then stay silent, and measure meanwhile.

    python bench/flood.py --port 8000 [--pid PID] [--connections 200] [--waves 4]
                          [--interval 1] [--pad-bytes 0] [--probe-every 0.02] [--json]

Each wave opens ``--connections`` connections at once, ``--interval`` seconds apart. Each
sends one malformed request (a header name with a space in it, which every server refuses
with 400; ``--pad-bytes`` puts a long valid header before it, so that the server buffers a
large head first), reads whatever the server answers, and then stays silent without closing
until the last wave has been held for ``--interval`` seconds. Then all are closed.

Meanwhile new clients probe the server: every ``--probe-every`` seconds one starts (connect,
``GET /``, whole answer, close), on schedule whether or not the previous one was answered, so
a stalled server shows in the latencies instead of slowing the probes down. A probe that
fails or times out counts as an error and ranks among the slowest, with the time it waited.

The server's memory: the RSS (``VmRSS`` from ``/proc``) of ``--pid`` and its descendants
before the flood, its peak during it (sampled), and ``--settle`` seconds after the attack
connections were closed: what the process keeps once the attack is over.

Bounded: at most ``--connections`` x ``--waves`` attack connections and ``--probes`` probes,
over about ``--waves`` x ``--interval`` + ``--timeout`` + ``--settle`` seconds.
Standard library only. Prints a summary, or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import re
import socket
import sys
import time
from collections import Counter

from idle import (
    percentile,
    print_result,
    raise_nofile,
    read_response,
    request_bytes,
    tree_rss_kib,
)

MALFORMED = b"GET / HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\n\r\n"
RSS_EVERY = 0.2  # seconds between two readings of the server's RSS during the flood
STATUS_LINE = re.compile(rb"HTTP/[0-9]\.[0-9] ([0-9]{3})(?: [^\r\n]*)?\r\n")


def malformed_request(pad_bytes: int = 0) -> bytes:
    """The refused request, with ``pad_bytes`` of a valid header before the bad one."""
    if pad_bytes <= 0:
        return MALFORMED
    pad = b"X-Pad: " + b"a" * pad_bytes + b"\r\n"
    return MALFORMED.replace(b"Bad Header", pad + b"Bad Header", 1)


def status_of(answer: bytes) -> int | None:
    """The status code of the first line of ``answer``, once a whole status line is in it."""
    match = STATUS_LINE.match(answer)
    return int(match.group(1)) if match else None


class Attacker:
    """One attack connection: the malformed request, then silence until told to close."""

    def __init__(self) -> None:
        self.writer: asyncio.StreamWriter | None = None
        self.status: int | None = None
        self.error: str | None = None
        self.closed_by_server = False
        self.stopped = False

    async def run(self, host: str, port: int, request: bytes, timeout: float,
                  gate: asyncio.Semaphore) -> None:
        try:
            async with gate:  # bounds the connections being opened, not those held
                if self.stopped:
                    return
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                        timeout)
                self.writer = writer
                writer.write(request)
                await writer.drain()
            answer = b""
            # Read until the server closes; the client itself never sends more nor closes.
            while len(answer) < 65536:
                chunk = await reader.read(65536)
                if not chunk:
                    self.closed_by_server = not self.stopped
                    break
                answer += chunk
                if self.status is None:
                    self.status = status_of(answer)
        except (OSError, asyncio.TimeoutError) as exc:
            if not self.stopped:
                self.error = type(exc).__name__

    def close(self) -> None:
        self.stopped = True
        if self.writer is not None:
            self.writer.transport.abort()


async def probe(host: str, port: int, path: str, timeout: float) -> tuple[float, str | None]:
    """One new client: seconds it took (or waited before failing) and its error, if any."""
    start = time.perf_counter()
    writer = None

    async def ask() -> int:
        nonlocal writer
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request_bytes(host, port, path, close=True))
        await writer.drain()
        return (await read_response(reader))[0]

    try:
        status = await asyncio.wait_for(ask(), timeout)
        return time.perf_counter() - start, None if status == 200 else f"status {status}"
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        return time.perf_counter() - start, type(exc).__name__
    finally:
        if writer is not None:
            writer.transport.abort()


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine: the only place a flood may be sent."""
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


async def measure(args: argparse.Namespace) -> dict:
    host, port = args.host, args.port
    window = args.waves * args.interval
    request = malformed_request(args.pad_bytes)
    result: dict = {"connections_per_wave": args.connections, "waves": args.waves,
                    "interval_s": args.interval, "request_bytes": len(request),
                    "flood_bytes": len(request) * args.connections * args.waves}
    if args.pid:
        result["rss_base_kib"] = tree_rss_kib(args.pid)
    peak = [result.get("rss_base_kib", 0)]
    gate = asyncio.Semaphore(args.concurrency)
    attackers: list[Attacker] = []
    attacks: list[asyncio.Task] = []

    async def flood() -> None:
        for wave in range(args.waves):
            for _ in range(args.connections):
                a = Attacker()
                attackers.append(a)
                attacks.append(asyncio.ensure_future(
                    a.run(host, port, request, args.timeout, gate)))
            await asyncio.sleep(max(0.0, start + (wave + 1) * args.interval - loop.time()))

    async def probes() -> list[tuple[float, str | None]]:
        tasks = []
        for n in range(min(args.probes, max(1, int(window / args.probe_every)))):
            await asyncio.sleep(max(0.0, start + n * args.probe_every - loop.time()))
            tasks.append(asyncio.ensure_future(probe(host, port, args.path, args.timeout)))
        return await asyncio.gather(*tasks)

    async def watch_rss() -> None:
        while True:
            peak[0] = max(peak[0], tree_rss_kib(args.pid))
            await asyncio.sleep(RSS_EVERY)

    loop = asyncio.get_running_loop()
    start = loop.time()
    watcher = asyncio.ensure_future(watch_rss()) if args.pid else None
    probing = asyncio.ensure_future(probes())
    await flood()
    for a in attackers:
        a.close()
    await asyncio.gather(*attacks, return_exceptions=True)
    timed = await probing  # the last probes may still wait on what the flood left queued
    result["flood_seconds"] = round(loop.time() - start, 3)
    if watcher is not None:
        watcher.cancel()

    latencies = sorted(seconds for seconds, _ in timed)
    result["probes"] = len(timed)
    result["probe_errors"] = dict(Counter(error for _, error in timed if error))
    result["probe_failures"] = sum(result["probe_errors"].values())
    for name, q in (("p50", 50), ("p99", 99)):
        value = percentile(latencies, q)
        result[f"probe_{name}_ms"] = None if value is None else round(value * 1000, 3)
    result["probe_max_ms"] = round(latencies[-1] * 1000, 3) if latencies else None
    result["attack_connections"] = sum(1 for a in attackers if a.writer is not None)
    result["attack_answers"] = dict(Counter(str(a.status) for a in attackers if a.status))
    result["attack_errors"] = dict(Counter(a.error for a in attackers if a.error))
    result["attack_closed_by_server"] = sum(1 for a in attackers if a.closed_by_server)

    await asyncio.sleep(args.settle)
    if args.pid:
        result["rss_peak_kib"] = max(peak[0], tree_rss_kib(args.pid))
        result["rss_after_kib"] = tree_rss_kib(args.pid)
    _, error = await probe(host, port, args.path, args.timeout)
    result["answers_after"] = error is None
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address only")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/", help="what the probes ask for")
    parser.add_argument("--pid", type=int, help="server process whose RSS (with children) is read")
    parser.add_argument("--connections", type=int, default=200, help="attack connections a wave")
    parser.add_argument("--waves", type=int, default=4)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between waves")
    parser.add_argument("--pad-bytes", type=int, default=0,
                        help="a valid header this long before the bad one")
    parser.add_argument("--concurrency", type=int, default=500,
                        help="attack connections opening at once")
    parser.add_argument("--probe-every", type=float, default=0.02, help="seconds between probes")
    parser.add_argument("--probes", type=int, default=400, help="new-client probes, at most")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds after the flood before reading RSS")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds a probe may take, from connect to whole answer")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        parser.error(f"--host {args.host} is not a loopback address: floods stay on this machine")
    for name in ("connections", "waves", "probes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.interval <= 0 or args.probe_every <= 0:
        parser.error("--interval and --probe-every must be above 0")
    wanted = args.connections * args.waves + args.probes + 100
    limit = raise_nofile(wanted)
    if limit < wanted:
        print(f"flood.py: RLIMIT_NOFILE is {limit}, too low for {wanted} connections",
              file=sys.stderr)
        return 2
    print_result(asyncio.run(measure(args)), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
