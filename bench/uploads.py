#!/usr/bin/env python3
"""Concurrent large uploads to an HTTP/1.1 server, and its memory meanwhile.

    python bench/uploads.py --port 8000 --pid PID [--clients 10] [--megabytes 9] [--rounds 3]
                            [--form] [--json]

Each round, ``--clients`` connections each send one ``POST /upload`` of ``--megabytes`` MB
(10**6 bytes) at once (``--form``: ``POST /upload-form``, the same bytes as the one file of a
``multipart/form-data`` body), and read the answer: the size and sha256 of what the view read,
checked against what was sent. The rounds follow one another.

The server's memory: the RSS (``VmRSS`` from ``/proc``) of ``--pid`` and its descendants before
the first round, its peak during the rounds (sampled every 50 ms), and ``--settle`` seconds after
the last answer: what the process keeps once the uploads are over.

Standard library only. Prints a summary, or one JSON object with ``--json``. `make bench` runs
it on every server through ``measure`` (the rows of its table).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from flood_bench import ARENA, ARENA_ENV
from idle import measured_row, percentile, tree_cpu_seconds, tree_rss_kib

BENCH = Path(__file__).resolve().parent
RSS_EVERY = 0.05  # seconds between two readings of the server's RSS
BOUNDARY = "bench-upload-boundary-7d1f0c2e9a4b"
SERVERS = ["ours", "waitress", "gunicorn", "uvicorn-h11", "uvicorn-httptools"]
# name: (path, multipart); every upload workload sends the same file's bytes.
UPLOADS = {"upload-raw": ("/upload", False), "upload-form": ("/upload-form", True)}
SHAPE = {"clients": 10, "megabytes": 9, "rounds": 3}
QUICK_SHAPE = {"clients": 10, "megabytes": 9, "rounds": 1}


def labels(quick: bool) -> dict[str, str]:
    shape = QUICK_SHAPE if quick else SHAPE
    size = f"{shape['clients']} x {shape['megabytes']} MB at once, {shape['rounds']} round(s)"
    return {"upload-raw": f"upload {size}, raw body",
            "upload-form": f"upload {size}, multipart"}


def request_bytes(port: int, data: bytes, form: bool) -> bytes:
    """The whole request that uploads ``data``: raw, or as the one file of a form."""
    if form:
        body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"upload.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
        content_type = f"multipart/form-data; boundary={BOUNDARY}"
    else:
        body, content_type = data, "application/octet-stream"
    path = UPLOADS["upload-form" if form else "upload-raw"][0]
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def upload(port: int, request: bytes, timeout: float) -> tuple[int, bytes]:
    """One upload on its own connection: the status and the body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), body


class PeakRss:
    """Reads the RSS of a process tree every RSS_EVERY seconds until stopped; keeps the peak."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_kib = tree_rss_kib(pid)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.done.wait(RSS_EVERY):
            self.peak_kib = max(self.peak_kib, tree_rss_kib(self.pid))

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return max(self.peak_kib, tree_rss_kib(self.pid))


def one_round(port: int, request: bytes, clients: int, want: dict, timeout: float
              ) -> tuple[list[float], list[str]]:
    """``clients`` uploads at once: their times and what went wrong."""
    times: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(clients)

    def client() -> None:
        start.wait()
        t0 = time.monotonic()
        try:
            status, body = upload(port, request, timeout)
        except OSError as exc:
            errors.append(type(exc).__name__)
            return
        if status != 200:
            errors.append(f"status {status}")
        elif json.loads(body or b"{}") != want:
            errors.append("wrong size or sha256")
        else:
            times.append(time.monotonic() - t0)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, errors


def measure(args: argparse.Namespace) -> dict:
    data = os.urandom(args.megabytes * 1_000_000)
    want = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    request = request_bytes(args.port, data, args.form)
    rss_base = tree_rss_kib(args.pid)
    cpu0, t0 = tree_cpu_seconds(args.pid), time.monotonic()
    peak = PeakRss(args.pid)
    times, errors = [], []
    for _ in range(args.rounds):
        round_times, round_errors = one_round(args.port, request, args.clients, want,
                                              args.timeout)
        times += round_times
        errors += round_errors
    wall = time.monotonic() - t0
    cpu = tree_cpu_seconds(args.pid) - cpu0
    rss_peak = peak.stop()
    time.sleep(args.settle)  # the memory the process keeps, once it had a moment to give back
    times.sort()
    return {"uploads": args.clients * args.rounds, "answered": len(times), "errors": errors,
            "bytes_each": len(data), "seconds": wall, "uploads_per_s": len(times) / wall,
            "cpu_seconds": cpu, "p50_ms": (percentile(times, 0.5) or 0) * 1000,
            "p99_ms": (percentile(times, 0.99) or 0) * 1000,
            "rss_base_kib": rss_base, "rss_peak_kib": rss_peak,
            "rss_after_kib": tree_rss_kib(args.pid)}


# ----------------------------------------------------------------------------- make bench


def run_uploads(port: int, pid: int, shape: dict, form: bool, client_core: str) -> dict:
    cmd = ["taskset", "-c", client_core, sys.executable, str(BENCH / "uploads.py"),
           "--port", str(port), "--pid", str(pid), "--json",
           "--clients", str(shape["clients"]), "--megabytes", str(shape["megabytes"]),
           "--rounds", str(shape["rounds"]), *(["--form"] if form else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"uploads.py failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout)


def row_from(result: dict) -> dict:
    """The figures of one upload workload as a row of the table (report.py)."""
    return {"upload": result, "rps": result["uploads_per_s"],
            "req_per_cpu_s": result["answered"] / result["cpu_seconds"]
            if result["cpu_seconds"] else None,
            "p99_ms": result["p99_ms"], "p50_ms": result["p50_ms"],
            "rss_mib": result["rss_peak_kib"] / 1024,
            "cpu_pct": 100 * result["cpu_seconds"] / result["seconds"],
            "error_count": len(result["errors"]),
            "errors": {e: result["errors"].count(e) for e in set(result["errors"])}}


def note(row: dict) -> str:
    """What the notes column says about an upload row: the RSS before, at peak and after."""
    u = row["upload"]
    base, peak, after = (u[k] / 1024 for k in ("rss_base_kib", "rss_peak_kib", "rss_after_kib"))
    return (f"{u['answered']}/{u['uploads']} right; RSS base {base:.1f}, peak +{peak - base:.1f}, "
            f"after +{after - base:.1f}")


def measure_servers(run: int, servers: list[str], make_server, *, quick: bool,
                    client_core: str, loadavg, log) -> list[dict]:
    """One run of the upload workloads on each of ``servers`` that can take them, each on a
    fresh server process (its RSS before is that of a server that has served nothing).
    Ours runs twice, like in the floods: as it is, and with ``MALLOC_ARENA_MAX=2`` as the
    generated image runs it. ``make_server(name, env)`` as in flood_bench.measure."""
    shape = QUICK_SHAPE if quick else SHAPE
    names = [n for s in servers if s in SERVERS for n in ([s, ARENA] if s == "ours" else [s])]
    rows = []
    for workload, (_, form) in UPLOADS.items():
        for name in names:
            env = ARENA_ENV if name == ARENA else {"MALLOC_ARENA_MAX": None}
            server = make_server("ours" if name == ARENA else name, env)
            row = measured_row(
                server, {"run": run, "server": name, "workload": workload,
                         "load_before": loadavg()},
                lambda server=server, form=form: row_from(
                    run_uploads(server.port, server.pid, shape, form, client_core)))
            rows.append(row)
            if "failed" in row:
                log(f"  {name:18} {workload:12} FAILED: {row['failed'][:120]}")
            else:
                log(f"  {name:18} {workload:12} {row['rps']:.1f} uploads/s, p99 "
                    f"{row['p99_ms']:.0f} ms; " + note(row))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True, help="the server's process")
    parser.add_argument("--clients", type=int, default=SHAPE["clients"])
    parser.add_argument("--megabytes", type=int, default=SHAPE["megabytes"])
    parser.add_argument("--rounds", type=int, default=SHAPE["rounds"])
    parser.add_argument("--form", action="store_true", help="multipart/form-data to /upload-form")
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    for option in ("clients", "megabytes", "rounds"):
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1")
    result = measure(args)
    if args.json:
        print(json.dumps(result))
    else:
        mib = {k: result[k] / 1024 for k in ("rss_base_kib", "rss_peak_kib", "rss_after_kib")}
        print(f"{result['answered']}/{result['uploads']} uploads answered right, "
              f"{result['uploads_per_s']:.2f}/s, p99 {result['p99_ms']:.0f} ms; RSS MiB base "
              f"{mib['rss_base_kib']:.1f}, peak {mib['rss_peak_kib']:.1f}, after "
              f"{mib['rss_after_kib']:.1f}; errors {result['errors'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
