#!/usr/bin/env python3
"""`make bench`: our http_server against its peers, side by side, in one run.

    bench/.venv/bin/python bench/run.py [--quick] [--runs N] [--duration S]
                                        [--servers ours,waitress,...] [--out DIR]
                                        [--flood-only | --no-flood] [--uploads-only |
                                        --no-uploads] [--instructions-only | --no-instructions]
                                        [--workloads hello,json,post] [--batches S,L]

Each server serves the same tiny app (bench/apps/tiny.py), pinned to core 0 (taskset -c 0),
with wrk pinned to core 1, on 127.0.0.1. The servers of a run are alive at once, and wrk
drives one at a time, in rounds of 1 s, the order rotating every round (measure.py): each
workload's figures for one server are the sum of its rounds, so that a change in the
machine's load falls on every server alike. Workloads, each bounded in time:

  hello-keepalive   GET /            50 keep-alive connections
  hello-close       GET /            50 connections, `Connection: close` (one request each)
  json-router       GET /users/42    a regex route with a path parameter, through one middleware
  post-echo-4k      POST /echo       4 KiB body echoed back (wrk Lua script)
  static-1mib       GET /static/...  a 1 MiB file: ours against nginx
  blocking-50ms     GET /wait        a view that waits 50 ms (a database, another service),
                                     15 connections: at most 300 requests/s, p99 at best 50 ms
  idle-5000         5,000 idle keep-alive connections held open (bench/idle.py): RSS of the
                    server and latency of a new client meanwhile
  flood, flood-big  waves of malformed requests that then stay silent (bench/flood_bench.py):
                    latency of new clients meanwhile, RSS after; ours also with MALLOC_ARENA_MAX=2
  upload-raw, -form 10 x 9 MB uploads at once, 3 rounds (bench/uploads.py): uploads/s, RSS
                    before, at peak and after

Then `workers=2`: ours with workers=1 and workers=2, neither pinned, counting the distinct
PIDs that answered (X-Pid header, wrk Lua script). Then, once, the instructions per request
of each Python server under callgrind (bench/instructions.py) for hello, JSON and POST echo.

Prints one table (each figure also as a ratio to ours in the same run) and writes
table.md, results.json and chart.png to --out (bench/results/ by default; bench/.work/results/
with --quick, so a smoke test leaves the committed table alone); a full run also puts the
table into bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flood_bench  # noqa: E402
import instructions  # noqa: E402
import measure  # noqa: E402
import report  # noqa: E402
import uploads  # noqa: E402
from idle import raise_nofile  # noqa: E402
from servers import ALL_SERVERS, Server  # noqa: E402
from workloads import (  # noqa: E402
    BENCH,
    CLIENT_CORE,
    IDLE_CONNECTIONS,
    INSTRUCTION_WORKLOADS,
    OURS_INIT,
    ROOT,
    SERVER_CORE,
    WORK,
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The options, with the defaults that depend on --quick; exits with one line on a bad one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one run, 1 s per workload, 1,000 idle connections")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--duration", type=int, help="seconds per wrk workload (whole)")
    parser.add_argument("--servers", help="comma-separated subset of " + ",".join(ALL_SERVERS))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-workers", action="store_true", help="skip the workers=2 run")
    parser.add_argument("--no-flood", action="store_true", help="skip the malformed floods")
    parser.add_argument("--flood-only", action="store_true",
                        help="only the malformed floods (written to bench/results/flood/)")
    parser.add_argument("--no-uploads", action="store_true",
                        help="skip the 10 x 9 MB uploads (bench/uploads.py)")
    parser.add_argument("--uploads-only", action="store_true",
                        help="only the uploads (written to bench/results/uploads/)")
    parser.add_argument("--no-instructions", action="store_true",
                        help="skip the instructions per request (callgrind)")
    parser.add_argument("--instructions-only", action="store_true",
                        help="only the instructions per request (printed; written to "
                             "bench/.work/instructions/)")
    parser.add_argument("--workloads", help="instruction counts: comma-separated subset of "
                        + ",".join(w.name for w in INSTRUCTION_WORKLOADS) + " (or prefixes)")
    alone, in_bench = instructions.ALONE, instructions.IN_BENCH
    parser.add_argument("--batches", default=None, metavar="SMALL,LARGE",
                        help="instruction counts: requests in the two batches of a pair "
                             f"(default {alone[0]},{alone[1]} alone, {in_bench[0]},"
                             f"{in_bench[1]} in a whole run)")
    parser.add_argument("--repeats", type=int, help="instruction counts: pairs of batches, "
                        f"the median reported (default {alone[2]} alone, {in_bench[2]} in a "
                        "whole run)")
    opts = parser.parse_args(argv)
    opts.runs = opts.runs or (1 if opts.quick else 2)
    opts.duration = opts.duration or (1 if opts.quick else 4)
    opts.warmup = 1
    opts.idle_connections = 1000 if opts.quick else IDLE_CONNECTIONS
    opts.idle_hold = 0.5 if opts.quick else 2.0
    opts.out_dir = opts.out or (WORK / "results" if opts.quick else BENCH / "results")
    if opts.flood_only and not opts.out:
        opts.out_dir = opts.out_dir / "flood"  # beside the whole table, not over it
    if opts.uploads_only and not opts.out:
        opts.out_dir = opts.out_dir / "uploads"
    opts.alone = opts.flood_only or opts.uploads_only  # no wrk, no workers, no instructions
    if opts.instructions_only and not opts.out:
        opts.out_dir = WORK / "instructions"  # a quick check of the hot path: nothing committed
    opts.instruction_workloads = pick_workloads(parser, opts.workloads)
    shape = (instructions.QUICK if opts.quick else instructions.ALONE
             if opts.instructions_only else instructions.IN_BENCH)
    opts.small, opts.large = batches(parser, opts.batches) if opts.batches else shape[:2]
    opts.repeats = opts.repeats or shape[2]
    if opts.repeats < 1:
        parser.error("--repeats must be at least 1")
    opts.server_list = opts.servers.split(",") if opts.servers else list(ALL_SERVERS)
    unknown = set(opts.server_list) - set(ALL_SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    return opts


def pick_workloads(parser: argparse.ArgumentParser, wanted: str | None) -> list:
    """The counted workloads that --workloads names (a name or the start of one)."""
    if not wanted:
        return list(INSTRUCTION_WORKLOADS)
    picked = []
    for item in wanted.split(","):
        found = [w for w in INSTRUCTION_WORKLOADS if w.name.startswith(item)]
        if len(found) != 1:
            names = ", ".join(w.name for w in INSTRUCTION_WORKLOADS)
            parser.error(f"--workloads {item!r} names {len(found)} of {names}")
        picked += found
    return picked


def batches(parser: argparse.ArgumentParser, given: str) -> tuple[int, int]:
    try:
        small, large = (int(n) for n in given.split(","))
    except ValueError:
        parser.error(f"--batches {given!r}: two whole numbers, SMALL,LARGE")
    if not 0 < small < large:
        parser.error(f"--batches {given!r}: 0 < SMALL < LARGE")
    return small, large


def cannot_run(opts: argparse.Namespace) -> str | None:
    """Why this machine cannot run the benchmark, in one line, or None."""
    if any(s.startswith("ours") for s in opts.server_list) and not OURS_INIT.exists():
        return (f"{OURS_INIT.relative_to(ROOT)} does not exist yet: nothing to measure as "
                "'ours' (use --servers to measure the peers alone)")
    for tool in ("taskset",) if opts.instructions_only else ("wrk", "taskset"):
        if not shutil.which(tool):
            return f"{tool} not found; run bench/install.sh"
    if (os.cpu_count() or 1) < 2:
        return "needs 2 cores (server on core 0, wrk on core 1)"
    if opts.instructions_only and instructions.missing_tools():
        return f"{', '.join(instructions.missing_tools())} not found; run bench/install.sh"
    nofile = raise_nofile(20000)  # inherited by the servers: room for the idle connections
    if nofile < opts.idle_connections + 200:
        return f"RLIMIT_NOFILE {nofile} is too low for {opts.idle_connections} idle connections"
    return None


def log(msg: str) -> None:
    print(msg, flush=True)


def one_run(run: int, opts: argparse.Namespace, static_dir: Path, reference: dict,
            expected: dict) -> tuple[list[dict], dict]:
    """Every server at once, driven in turns, then the floods and the uploads: the rows of one
    run, and its load averages."""
    # Every other run goes backwards, so that no server always follows the same one.
    order = opts.server_list if run % 2 else list(reversed(opts.server_list))
    if "ours" in order:  # ours answers first: its bytes are the reference
        order = ["ours", *[s for s in order if s != "ours"]]
    before, t0 = measure.loadavg(), time.monotonic()
    log(f"run {run}/{opts.runs} (load average {before:.2f})")
    rows = [] if opts.alone else measure.measure_servers(order, static_dir, opts, run,
                                                         reference, expected, log)
    if not (opts.no_flood or opts.uploads_only):
        rows += flood_bench.measure(
            run, order, lambda name, env: Server(name, static_dir, env=env),
            quick=opts.quick, client_core=CLIENT_CORE, loadavg=measure.loadavg, log=log)
    if not (opts.no_uploads or opts.flood_only):
        rows += uploads.measure_servers(
            run, order, lambda name, env: Server(name, static_dir, env=env),
            quick=opts.quick, client_core=CLIENT_CORE, loadavg=measure.loadavg, log=log)
    return rows, {"run": run, "load_before": before, "load_after": measure.loadavg(),
                  "seconds": round(time.monotonic() - t0, 1)}


def count_instructions(opts: argparse.Namespace, static_dir: Path) -> list[dict]:
    """Instructions per request of each server under callgrind (once: the counts do not drift)."""
    if opts.no_instructions or opts.alone:
        return []
    if instructions.missing_tools():
        log(f"instructions: skipped, {', '.join(instructions.missing_tools())} not found")
        return []
    names = ", ".join(w.name for w in opts.instruction_workloads)
    log(f"instructions per request under callgrind: {names}; {opts.repeats} pair(s) of "
        f"batches of {opts.small} and {opts.large} requests (load average "
        f"{measure.loadavg():.2f})")
    t0 = time.monotonic()
    rows = instructions.measure(opts.server_list, opts.instruction_workloads, static_dir,
                                small=opts.small, large=opts.large, repeats=opts.repeats,
                                log=log)
    log(f"instructions: {time.monotonic() - t0:.0f} s")
    return rows


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    problem = cannot_run(opts)
    if problem:
        print(f"bench: {problem}", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.timezone.utc)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    static_dir = measure.static_folder(WORK)
    expected = measure.expected_bodies(static_dir / "1mib.bin")
    if opts.instructions_only:
        report.write_instructions(count_instructions(opts, static_dir), opts, started, log)
        return 0
    log(f"bench: {len(opts.server_list)} servers x {opts.runs} runs, {opts.duration:g} s per "
        f"workload, {opts.idle_connections} idle connections; server on core {SERVER_CORE}, "
        f"wrk on core {CLIENT_CORE}; load average now {measure.loadavg():.2f}")
    rows: list[dict] = []
    runs_meta = []
    reference: dict = {}
    for run in range(1, opts.runs + 1):
        run_rows, meta = one_run(run, opts, static_dir, reference, expected)
        rows += run_rows
        runs_meta.append(meta)
    if "ours" in opts.server_list and not (opts.no_workers or opts.alone):
        log("workers: ours with workers=1 and workers=2, not pinned, wrk -t2")
        rows += measure.measure_workers(static_dir, opts, log)
    report.add_instructions(rows, count_instructions(opts, static_dir))
    report.write(rows, runs_meta, opts, opts.server_list, started, opts.out_dir,
                 measure.HEADERS_SEEN, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
