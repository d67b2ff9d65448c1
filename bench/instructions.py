"""Instructions per request: a cost figure that moves far less with the machine's load.

Each server runs under callgrind (``valgrind --tool=callgrind``), which counts the user-space
instructions its process executes: every thread, the interpreter and every C extension
(httptools' and uvloop's too), none of the kernel's. For each workload, one keep-alive
connection sends a warm-up, then pairs of a small batch and a large batch of the same
request; ``callgrind_control`` zeroes the counters first and dumps them after each batch, so
each dump holds one batch. Each pair gives

    (instructions of the large batch - those of the small one) / (large - small)

which cancels what a batch costs whatever its size (the dump itself, the client's pauses),
and the figure is the median of the pairs'. The pairs agree within 2.5%. Ours runs with its
one time-driven threshold (``--blocked-after``) scaled by the slowdown under callgrind (see
``start``): unscaled, every request would count as a blocked view, and the figure would be
that of the extra threads woken for it, up to 25% more, moving with the machine's load.
The dumps are kept in ``bench/.work/callgrind/SERVER/``, one file per batch.
A workload counted only (not run by wrk, ``batch50-hello``) sends on 50 connections at
once, a request on each then every answer (``Rounds``): the server then answers them in
batches, as under wrk, and holds answers back (pool.py), a path one connection never takes.
One counted on one connection (``browser-hello``) is sent like the wrk workloads.
For gunicorn the counted process is the worker (the one that answers: its X-Pid header);
its master, waiting meanwhile, is not counted.

Under callgrind a server runs 50-100 times slower, so requests/s mean nothing there; the
requests go one after the other from a small client of its own, not wrk.
"""

from __future__ import annotations

import re
import shutil
import socket
import statistics
import subprocess
import time
from pathlib import Path

from servers import Server
from workloads import WORK, Workload

# (small, large, repeats): alone (run.py --instructions-only), the figure to judge a change by;
# within make bench, where every server is counted, fewer; --quick, a smoke test.
ALONE = (100, 600, 3)
IN_BENCH = (100, 400, 2)
QUICK = (50, 250, 1)
CALLGRIND_SLOWDOWN = 50  # about how much slower a server runs under callgrind (req/s ratio)
WARMUP = 50  # requests before counting: the first ones fill caches and import lazily
START_TIMEOUT = 180.0  # seconds: Python starts 50-100 times slower under callgrind
SUMMARY = re.compile(rb"^summary:\s+(\d+)", re.MULTILINE)


def missing_tools() -> list[str]:
    return [t for t in ("valgrind", "callgrind_control") if not shutil.which(t)]


def valgrind_prefix(out_dir: Path) -> list[str]:
    # %p: one file per process (gunicorn's master and worker apart); every thread of a process
    # goes into its file (--separate-threads=no, the default). --trace-children=yes also gives a
    # forked child (gunicorn's worker) the gdbserver that callgrind_control talks to.
    return ["valgrind", "--tool=callgrind", "--trace-children=yes", "--collect-atstart=yes",
            "--dump-instr=no", "--compress-strings=no",
            f"--callgrind-out-file={out_dir}/callgrind.%p"]


class KeepAlive:
    """One keep-alive connection sending a request and reading its whole answer, in turn."""

    def __init__(self, port: int, timeout: float = 60.0):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def request(self, workload: Workload) -> dict[str, str]:
        self.send_request(workload)
        return self.read_answer(workload)

    def send_request(self, workload: Workload) -> None:
        body = workload.body
        head = (f"{workload.method} {workload.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                + "".join(f"{line}\r\n" for line in workload.headers)
                + (f"Content-Length: {len(body)}\r\nContent-Type: application/octet-stream\r\n"
                   if body else "") + "\r\n")
        self.sock.sendall(head.encode() + body)

    def read_answer(self, workload: Workload) -> dict[str, str]:
        while b"\r\n\r\n" not in self.buffer:
            self.receive()
        raw_head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:])}
        if lines[0].split()[1:2] != ["200"]:
            raise RuntimeError(f"{workload.method} {workload.path}: {lines[0]!r}")
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self.receive()
        self.buffer = self.buffer[length:]
        return headers

    def receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        self.buffer += chunk

    def send(self, workload: Workload, count: int) -> None:
        for _ in range(count):
            self.request(workload)

    def close(self) -> None:
        self.sock.close()


class Rounds:
    """``connections`` keep-alive connections: in each round a request goes out on every one,
    then every answer is read, as wrk's connections do at once. The server finds them ready
    together and answers them as one batch (held answers, pool.py)."""

    def __init__(self, port: int, connections: int):
        self.clients = [KeepAlive(port) for _ in range(connections)]

    def send(self, workload: Workload, count: int) -> None:
        """``count`` requests in all: full rounds, then one on the first connections."""
        while count > 0:
            these = self.clients[:count]
            for client in these:
                client.send_request(workload)
            for client in these:
                client.read_answer(workload)
            count -= len(these)

    def close(self) -> None:
        for client in self.clients:
            client.close()


class Counter:
    """The callgrind counters of one process: zeroed, and dumped into numbered files."""

    def __init__(self, pid: int, out_dir: Path):
        self.pid = pid
        self.out_dir = out_dir

    def control(self, option: str) -> None:
        done = subprocess.run(["callgrind_control", option, str(self.pid)], capture_output=True,
                              text=True, timeout=60)
        if done.returncode != 0 or "OK" not in done.stdout:
            raise RuntimeError(f"callgrind_control {option} {self.pid}: "
                               f"{(done.stdout + done.stderr).strip()[-200:]}")

    def parts(self) -> set[Path]:
        return set(self.out_dir.glob(f"callgrind.{self.pid}.*"))

    def zero(self) -> None:
        self.control("--zero")

    def dump(self) -> int:
        """The instructions counted since the last zero or dump (which this one resets)."""
        before = self.parts()
        self.control("--dump")
        new = self.parts() - before
        if not new:
            raise RuntimeError(f"callgrind wrote no dump for process {self.pid}")
        return sum(summary(part) for part in new)


def summary(path: Path) -> int:
    """The total instructions of one callgrind file (its ``summary:`` line)."""
    match = SUMMARY.search(path.read_bytes())
    if not match:
        raise RuntimeError(f"{path}: no summary line")
    return int(match.group(1))


def per_request(small: dict, large: dict) -> float:
    """Instructions per request from two batches: what the larger one cost in addition."""
    extra = large["requests"] - small["requests"]
    if extra <= 0:
        raise ValueError("the large batch must have more requests than the small one")
    return (large["instructions"] - small["instructions"]) / extra


def count(counter: Counter, client: KeepAlive, workload: Workload, small: int, large: int,
          repeats: int) -> dict:
    """One workload's figures on a running server under callgrind: ``repeats`` pairs of
    batches, and the median of their figures."""
    t0 = time.monotonic()
    client.send(workload, WARMUP)
    counter.zero()
    pairs = []
    for _ in range(repeats):
        pair = {}
        for key, n in (("small", small), ("large", large)):
            client.send(workload, n)
            pair[key] = {"requests": n, "instructions": counter.dump()}
        pair["per_request"] = per_request(pair["small"], pair["large"])
        pairs.append(pair)
    seconds = time.monotonic() - t0
    figures = sorted(p["per_request"] for p in pairs)
    return {"pairs": pairs, "per_request": statistics.median(figures),
            "min": figures[0], "max": figures[-1], "seconds": round(seconds, 1),
            "requests_per_s_under_callgrind":
                round((WARMUP + repeats * (small + large)) / seconds, 1)}


def start(name: str, static_dir: Path, out_dir: Path,
          probe: Workload) -> tuple[Server, KeepAlive, int]:
    """``name`` started under callgrind, a connection to it, and the PID that answers on it
    (its X-Pid header; a server without the tiny app, nginx, is one process)."""
    # Ours times its threads' events to tell a blocked view (BLOCKED_AFTER, 2 ms) from a
    # busy one; under callgrind every request lasts CALLGRIND_SLOWDOWN times longer, and
    # would count as blocked. The threshold is scaled alike, so that the server does
    # under callgrind what it does at full speed.
    extra = (["--blocked-after", str(0.002 * CALLGRIND_SLOWDOWN)] if name.startswith("ours")
             else [])
    server = Server(name, static_dir, wrapper=valgrind_prefix(out_dir), tag="callgrind",
                    extra_args=extra)
    server.start(probe.path, timeout=START_TIMEOUT)
    client = KeepAlive(server.port)
    answer = client.request(probe)
    return server, client, int(answer["x-pid"]) if "x-pid" in answer else server.pid


def measure_server(name: str, workloads: list[Workload], static_dir: Path, *, small: int,
                   large: int, repeats: int, log) -> list[dict]:
    """Every workload in ``workloads`` on ``name`` under callgrind: one row each."""
    out_dir = WORK / "callgrind" / name
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("callgrind.*"):
        old.unlink()
    rows = []
    t0 = time.monotonic()
    try:
        server, client, pid = start(name, static_dir, out_dir, workloads[0])
    except (RuntimeError, OSError, KeyError, ValueError) as exc:
        log(f"  ! {name} under callgrind: {exc}")
        return [{"server": name, "workload": w.name, "failed": str(exc)[:300]}
                for w in workloads]
    started = round(time.monotonic() - t0, 1)
    counter = Counter(pid, out_dir)
    try:
        for w in workloads:
            row = {"server": name, "workload": w.name, "start_s": started}
            try:
                if w.wrk or w.connections == 1:  # one connection, a request at a time
                    row["instructions"] = count(counter, client, w, small, large, repeats)
                else:  # counted only: as many connections as the workload says, in rounds
                    rounds = Rounds(server.port, w.connections)
                    try:
                        row["instructions"] = count(counter, rounds, w, small, large, repeats)
                    finally:
                        rounds.close()
            except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as exc:
                row["failed"] = str(exc)[:300]
            rows.append(row)
            log(f"  {name:18} {w.name:16} " + brief(row))
    finally:
        client.close()
        server.stop(timeout=START_TIMEOUT)
    return rows


def measure(servers: list[str], workloads: list[Workload], static_dir: Path, *,
            small: int = ALONE[0], large: int = ALONE[1], repeats: int = ALONE[2],
            log=print) -> list[dict]:
    """Instructions per request of each workload on each server that takes it."""
    rows = []
    for name in servers:
        these = [w for w in workloads if name in w.servers]
        if these:
            rows += measure_server(name, these, static_dir, small=small, large=large,
                                   repeats=repeats, log=log)
    return rows


def brief(row: dict) -> str:
    if "failed" in row:
        return f"FAILED: {row['failed'][:120]}"
    i = row["instructions"]
    return (f"{i['per_request']:10,.0f} instructions/request (pairs {i['min']:,.0f} to "
            f"{i['max']:,.0f}; {i['seconds']:.0f} s, "
            f"{i['requests_per_s_under_callgrind']:.0f} req/s under callgrind)")
