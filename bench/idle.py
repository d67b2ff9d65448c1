#!/usr/bin/env python3
"""Hold many idle keep-alive connections open on an HTTP/1.1 server, and measure meanwhile.

    python bench/idle.py --port 8000 [--pid PID] [--connections 5000] [--hold 3] [--probes 400]

Each of the ``--connections`` connections sends one ``GET`` (keep-alive), reads the whole
answer, then stays open and silent. While they are held, the tool measures

- the memory of the server: the RSS (``VmRSS`` from ``/proc``) of ``--pid`` and all its
  descendants, before opening, once all are open, and after the probes;
- the latency of a new client: ``--probes`` requests one after the other, each on a new
  connection (connect, send, read the whole answer, close);
- how many of the held connections the server closed before the end (``closed_by_server``).

Standard library only; raises its own RLIMIT_NOFILE as far as the hard limit allows.
Prints a summary, or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import time


def raise_nofile(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (at most the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def _stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (field 3 first), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    return stat[stat.rfind(b")") + 2 :].split()


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are alive now."""
    children = _children_map()
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, ()))
    return tree


def rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(pid: int) -> int:
    """The summed VmRSS of ``pid`` and its descendants, in KiB."""
    return sum(rss_kib(p) for p in process_tree(pid))


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by ``pid`` and its live descendants, in seconds."""
    ticks = 0
    for p in process_tree(pid):
        fields = _stat_fields(p)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def context_switches(pid: int) -> int:
    """Voluntary and involuntary context switches so far, over every thread of the tree."""
    total = 0
    for process in process_tree(pid):
        try:
            threads = os.listdir(f"/proc/{process}/task")
        except OSError:
            continue
        for thread in threads:
            try:
                status = open(f"/proc/{process}/task/{thread}/status").read()  # noqa: SIM115
            except OSError:
                continue
            total += sum(map(int, re.findall(r"ctxt_switches:\s+(\d+)", status)))
    return total


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response with a Content-Length body (all our servers send one)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


def request_bytes(host: str, port: int, path: str, close: bool = False) -> bytes:
    connection = "close" if close else "keep-alive"
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: bench-idle\r\n"
        f"Connection: {connection}\r\n\r\n"
    ).encode()


class Held:
    """One idle keep-alive connection: one request answered, then silence."""

    def __init__(self) -> None:
        self.writer: asyncio.StreamWriter | None = None
        self.watch: asyncio.Task | None = None
        self.error: str | None = None

    async def open(self, host: str, port: int, path: str, timeout: float) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            self.writer = writer
            writer.write(request_bytes(host, port, path))
            await writer.drain()
            status, _, _ = await asyncio.wait_for(read_response(reader), timeout)
            if status != 200:
                self.error = f"status {status}"
                return
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            self.error = type(exc).__name__
            return
        # Completes only if the server closes the connection (or sends something unasked).
        self.watch = asyncio.ensure_future(reader.read(1))

    @property
    def open_now(self) -> bool:
        return self.error is None and self.watch is not None and not self.watch.done()

    def close(self) -> None:
        if self.watch is not None and not self.watch.done():
            self.watch.cancel()
        if self.writer is not None:
            self.writer.transport.abort()


async def probe(host: str, port: int, path: str, timeout: float) -> float | None:
    """One new client: connect, one request, whole answer, close. Seconds, or None on failure."""
    start = time.perf_counter()
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.write(request_bytes(host, port, path, close=True))
        await writer.drain()
        status, _, _ = await asyncio.wait_for(read_response(reader), timeout)
        if status != 200:
            return None
        return time.perf_counter() - start
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
        return None
    finally:
        if writer is not None:
            writer.transport.abort()


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def measure(args: argparse.Namespace) -> dict:
    host, port, path = args.host, args.port, args.path
    result: dict = {"connections_wanted": args.connections}
    if args.pid:
        result["rss_base_kib"] = tree_rss_kib(args.pid)

    held = [Held() for _ in range(args.connections)]
    gate = asyncio.Semaphore(args.concurrency)

    async def open_one(h: Held) -> None:
        async with gate:
            await h.open(host, port, path, args.timeout)

    start = time.perf_counter()
    try:
        await asyncio.wait_for(
            asyncio.gather(*(open_one(h) for h in held)), args.open_deadline
        )
    except asyncio.TimeoutError:
        result["open_deadline_hit"] = True
    result["open_seconds"] = round(time.perf_counter() - start, 3)
    result["opened"] = sum(1 for h in held if h.watch is not None)
    errors: dict[str, int] = {}
    for h in held:
        if h.watch is None:
            key = h.error or "not opened in time"
            errors[key] = errors.get(key, 0) + 1
    result["open_errors"] = errors

    await asyncio.sleep(args.settle)
    if args.pid:
        result["rss_held_kib"] = tree_rss_kib(args.pid)

    latencies = []
    failures = 0
    deadline = time.perf_counter() + args.hold
    count = 0
    while count < args.probes or time.perf_counter() < deadline:
        if count >= args.probes * 10:  # bounded whatever the server does
            break
        latency = await probe(host, port, path, args.timeout)
        count += 1
        if latency is None:
            failures += 1
        else:
            latencies.append(latency)
        if count >= args.probes and time.perf_counter() >= deadline:
            break
    latencies.sort()
    result["probes"] = count
    result["probe_failures"] = failures
    for name, q in (("p50", 50), ("p99", 99)):
        value = percentile(latencies, q)
        result[f"probe_{name}_ms"] = None if value is None else round(value * 1000, 3)
    result["probe_max_ms"] = round(latencies[-1] * 1000, 3) if latencies else None

    if args.pid:
        result["rss_after_kib"] = tree_rss_kib(args.pid)
    result["still_open"] = sum(1 for h in held if h.open_now)
    result["closed_by_server"] = sum(
        1 for h in held if h.watch is not None and h.watch.done() and not h.watch.cancelled()
    )
    for h in held:
        h.close()
    await asyncio.sleep(0)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--pid", type=int, help="server process whose RSS (with children) is read")
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100, help="connections opening at once")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds to go on probing")
    parser.add_argument("--probes", type=int, default=400, help="new-client requests, at least")
    parser.add_argument("--settle", type=float, default=0.5, help="seconds before reading RSS")
    parser.add_argument("--timeout", type=float, default=10.0, help="per connection step")
    parser.add_argument("--open-deadline", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    limit = raise_nofile(args.connections + 100)
    if limit < args.connections + 20:
        print(f"idle.py: RLIMIT_NOFILE is {limit}, too low for {args.connections}", file=sys.stderr)
        return 2
    print_result(asyncio.run(measure(args)), args.json)
    return 0


def measured_row(server, row: dict, measure) -> dict:
    """Start ``server``, add ``measure()``'s figures to ``row``, stop it; a failure is kept
    in the row as ``failed`` (one line), so that one server's trouble ends no run."""
    row = dict(row)
    try:
        server.start("/")
        row.update(measure())
    except (RuntimeError, OSError, subprocess.TimeoutExpired, KeyError, ValueError) as exc:
        row["failed"] = str(exc)[:300]
    finally:
        server.stop()
    return row


def print_result(result: dict, as_json: bool) -> None:
    """One JSON object, or a ``key: value`` line each (sizes in MiB), on stdout."""
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        if key.endswith("_kib"):
            print(f"{key[:-4]}_mib: {value / 1024:.1f}")
        else:
            print(f"{key}: {value}")


if __name__ == "__main__":
    sys.exit(main())
