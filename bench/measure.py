"""Measuring the servers of a run: their answers checked against ours, then wrk in rounds
that take turns between the servers, and the idle connections.

Every figure of a row comes from here: requests/s and latency from wrk (report.lua prints
them as one JSON line, with its latency histogram), CPU time and RSS of the server's process
tree from /proc.

The servers of a run are all started at once, pinned to the server core, and wrk drives one
of them at a time, in rounds of ``ROUND_SECONDS``, the order rotating from round to round
(``round_orders``). On a shared machine the CPU a server gets can change widely within
minutes; measured one after the other, two servers would each get another machine,
and their ratio would carry that. In turns, each gets its share of every minute of the run.
A workload's rounds make one row: requests and CPU time summed, latency percentiles from the
merged histograms (``merge_rounds``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from idle import context_switches, tree_cpu_seconds, tree_rss_kib
from servers import Server, http_get
from workloads import (
    BENCH,
    BY_NAME,
    CLIENT_CORE,
    CONNECTIONS,
    STATIC_BYTES,
    VENV_BIN,
    WORKLOADS,
    Workload,
    for_server,
)

ROUND_SECONDS = 1  # one wrk run of a round: what wrk allows at the least

HEADERS_SEEN: dict[str, dict] = {}  # server -> workload -> response headers, for results.json


def expected_bodies(static_file: Path) -> dict[str, bytes]:
    """The body each workload must answer, whatever the server (static: the file's bytes)."""
    expected = {w.name: w.expected for w in BY_NAME.values() if w.expected is not None}
    expected["static-1mib"] = static_file.read_bytes()
    return expected


def static_folder(work: Path) -> Path:
    """The folder served under /static/, with its 1 MiB file of random bytes."""
    static_dir = work / "static"
    static_dir.mkdir(parents=True, exist_ok=True)
    static_file = static_dir / "1mib.bin"
    if not static_file.exists() or static_file.stat().st_size != STATIC_BYTES:
        static_file.write_bytes(os.urandom(STATIC_BYTES))
    return static_dir


def answers(server: Server, workloads: list[Workload]) -> dict[str, dict]:
    """What the server answers for each workload, to check that all servers send the same."""
    out = {}
    for w in workloads:
        status, headers, body = http_get(server.port, w.path, method=w.method, body=w.body)
        out[w.name] = {"status": status, "content_type": headers.get("content-type"),
                       "body": body, "x_pid": headers.get("x-pid"), "headers": headers}
    return out


def check_same(name: str, got: dict[str, dict], reference: dict[str, dict],
               expected: dict[str, bytes]) -> list[str]:
    problems = []
    for w, answer in got.items():
        if answer["status"] != 200:
            problems.append(f"{name} {w}: status {answer['status']}")
        want = expected.get(w)
        if want is not None and answer["body"] != want:
            problems.append(f"{name} {w}: body differs ({len(answer['body'])} bytes: "
                            f"{answer['body'][:60]!r})")
        ref = reference.get(w)
        if ref is not None:
            if ref["body"] != answer["body"] and want is None:
                problems.append(f"{name} {w}: body {answer['body'][:60]!r} != ours "
                                f"{ref['body'][:60]!r}")
            if ref["content_type"] != answer["content_type"]:
                problems.append(f"{name} {w}: Content-Type {answer['content_type']!r} != "
                                f"ours {ref['content_type']!r}")
        if w != "static-1mib" and not answer["x_pid"]:
            problems.append(f"{name} {w}: no X-Pid header (middleware did not run)")
    return problems


def run_wrk(url: str, duration: float, *, wrk_args: list[str], lua: str = "report.lua",
            lua_args: list[str] = (), pin: bool = True, threads: int = 1,
            connections: int = CONNECTIONS) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s", "--timeout", "5s",
           "--latency", "-s", str(BENCH / "wrk" / lua), *wrk_args, url]
    if lua_args:
        cmd += ["--", *lua_args]
    if pin:
        cmd = ["taskset", "-c", CLIENT_CORE, *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30)
    for line in done.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            data = json.loads(line[len("BENCHJSON "):])
            seconds = data["duration_us"] / 1e6
            data["rps"] = data["requests"] / seconds if seconds else 0.0
            data["p99_ms"] = data["p99_us"] / 1000
            data["p50_ms"] = data["p50_us"] / 1000
            data["error_count"] = sum(data["errors"].values())
            data["latency"] = {value: count for value, count in data["latency"]}
            return data
    raise RuntimeError(f"wrk printed no figures (exit {done.returncode}): "
                       f"{done.stderr.strip() or done.stdout.strip()}")


def round_orders(names: list[str], rounds: int) -> list[list[str]]:
    """The order of the servers in each round: rotated by one each round, so that every server
    comes first, second... as often as the others (two servers: flipped every round)."""
    if not names:
        return []
    return [names[r % len(names):] + names[:r % len(names)] for r in range(rounds)]


def measure_round(server: Server, workload: Workload, seconds: float = ROUND_SECONDS,
                  **wrk) -> dict:
    """One wrk run of ``workload`` against ``server`` (``wrk``: more of run_wrk's options):
    wrk's figures, and the server's CPU seconds, context switches and the wall-clock
    seconds it took."""
    pid = server.pid
    cpu, switches, started = tree_cpu_seconds(pid), context_switches(pid), time.monotonic()
    result = run_wrk(server.url + workload.path, seconds, wrk_args=list(workload.wrk_args),
                     lua_args=list(workload.lua_args), connections=workload.connections, **wrk)
    result["wall"] = time.monotonic() - started
    result["cpu"] = tree_cpu_seconds(pid) - cpu
    result["switches"] = context_switches(pid) - switches
    return result


def take_turns(servers: dict[str, Server], workload: Workload, rounds: int, **wrk
               ) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """``rounds`` rounds of ``workload`` on each server, in turns (``round_orders``;
    ``wrk``: more of run_wrk's options): each server's rounds, and why a server's turns
    ended early (a round that failed: the others go on without it)."""
    results: dict[str, list[dict]] = {name: [] for name in servers}
    failed: dict[str, str] = {}
    for order in round_orders(list(servers), rounds):
        for name in order:
            if name in failed:
                continue
            try:
                results[name].append(measure_round(servers[name], workload, **wrk))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failed[name] = str(exc)[:300]
    return results, failed


def percentile(latency: dict[int, int], p: float) -> int:
    """The value at percentile ``p`` of a histogram (value -> count), as wrk reports it: the
    smallest value that more than ``p`` percent of the counts do not exceed (the largest for
    ``p`` = 100)."""
    total = sum(latency.values())
    rank = min(int(p / 100 * total) + 1, total)
    seen = 0
    for value in sorted(latency):
        seen += latency[value]
        if seen >= rank:
            return value
    return 0


def merge_rounds(rounds: list[dict]) -> dict:
    """A workload's rounds on one server as one run: counts summed, histograms merged."""
    latency: dict[int, int] = {}
    errors: dict[str, int] = {}
    pids: dict[str, int] = {}  # pids.lua's answers per process
    for result in rounds:
        for value, count in result["latency"].items():
            latency[value] = latency.get(value, 0) + count
        for kind, count in result["errors"].items():
            errors[kind] = errors.get(kind, 0) + count
        for pid, count in result.get("pids", {}).items():
            pids[pid] = pids.get(pid, 0) + count
    total = {key: sum(r[key] for r in rounds)
             for key in ("requests", "duration_us", "cpu", "wall", "switches")}
    seconds = total["duration_us"] / 1e6
    if pids:
        total["pids"] = pids
    return {**total, "errors": errors, "error_count": sum(errors.values()),
            "rps": total["requests"] / seconds if seconds else 0.0,
            "p50_ms": percentile(latency, 50) / 1000, "p99_ms": percentile(latency, 99) / 1000,
            "rounds": len(rounds)}


def rounds_row(row: dict, server: Server, rounds: list[dict], failed: str | None = None) -> dict:
    """``row`` with the figures of a workload's rounds on ``server``, or why they failed."""
    if failed is not None:
        row["failed"] = failed
        return row
    merged = merge_rounds(rounds)
    cpu, wall = merged["cpu"], merged["wall"]
    row.update(rps=merged["rps"], p99_ms=merged["p99_ms"], p50_ms=merged["p50_ms"],
               requests=merged["requests"], errors=merged["errors"],
               error_count=merged["error_count"], rounds=merged["rounds"],
               rss_mib=tree_rss_kib(server.pid) / 1024,
               cpu_pct=100 * cpu / wall if wall else None,
               req_per_cpu_s=merged["requests"] / cpu if cpu else None)
    if "pids" in merged:
        row["pids"] = merged["pids"]
    return row


def run_idle(server: Server, connections: int, hold: float) -> dict:
    cmd = ["taskset", "-c", CLIENT_CORE, str(VENV_BIN / "python"), str(BENCH / "idle.py"),
           "--port", str(server.port), "--pid", str(server.pid),
           "--connections", str(connections), "--hold", str(hold), "--json",
           "--open-deadline", "60"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"idle.py failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout)


def idle_row(row: dict, server: Server, opts: argparse.Namespace) -> dict:
    try:
        res = run_idle(server, opts.idle_connections, opts.idle_hold)
        row.update(idle=res, p99_ms=res["probe_p99_ms"], p50_ms=res["probe_p50_ms"],
                   rss_mib=res["rss_held_kib"] / 1024,
                   rss_base_mib=res["rss_base_kib"] / 1024,
                   error_count=res["probe_failures"] + sum(res["open_errors"].values()))
    except (RuntimeError, subprocess.TimeoutExpired, KeyError, ValueError) as exc:
        row["failed"] = str(exc)[:300]
    return row


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def new_row(run: int, server: str, workload: str) -> dict:
    return {"run": run, "server": server, "workload": workload, "load_before": loadavg()}


def start_checked(name: str, static_dir: Path, reference: dict, expected: dict, log,
                  warmup: float) -> tuple[Server, list[str]]:
    """``name`` started and warmed up, and what differs in its answers from ours."""
    workloads = for_server(name)
    server = Server(name, static_dir)
    try:
        server.start(workloads[0].path)
        got = answers(server, workloads)
        HEADERS_SEEN[name] = {w: a["headers"] for w, a in got.items()}
        if name == "ours" and not reference:
            reference.update(got)
        problems = check_same(name, got, reference, expected)
        for p in problems:
            log(f"  ! {p}")
        run_wrk(server.url + workloads[0].path, warmup, wrk_args=[])  # not recorded
    except BaseException:
        server.stop()
        raise
    return server, problems


def measure_servers(names: list[str], static_dir: Path, opts: argparse.Namespace, run: int,
                    reference: dict, expected: dict, log) -> list[dict]:
    """Every wrk workload on every server of ``names``, all started at once and driven in
    turns (see the module's docstring), then each one's idle connections."""
    rows: list[dict] = []
    servers: dict[str, tuple[Server, list[str]]] = {}
    rounds = max(1, round(opts.duration / ROUND_SECONDS))
    try:
        for name in names:
            try:
                servers[name] = start_checked(name, static_dir, reference, expected, log,
                                              opts.warmup)
            except (RuntimeError, OSError) as exc:
                log(f"  ! {name}: {exc}")
                rows += [{"run": run, "server": name, "workload": w.name,
                          "failed": str(exc)[:300]} for w in for_server(name)]
        for workload in WORKLOADS:
            taking = {name: servers[name][0] for name in servers
                      if workload in for_server(name)}
            started = {name: new_row(run, name, workload.name) for name in taking}
            results, failed = take_turns(taking, workload, rounds * workload.rounds_scale)
            for name, server in taking.items():
                row = rounds_row(started[name], server, results[name], failed.get(name))
                row["mismatch"] = [p for p in servers[name][1] if f" {workload.name}:" in p]
                rows.append(row)
                log(f"  {name:18} {workload.name:16} " + brief(row))
        for name, (server, _) in servers.items():
            if name != "nginx" and opts.idle_connections:
                rows.append(idle_row(new_row(run, name, "idle"), server, opts))
                log(f"  {name:18} {'idle':16} " + brief(rows[-1]))
    finally:
        for server, _ in servers.values():
            server.stop()
    return rows


def measure_workers(static_dir: Path, opts: argparse.Namespace, log) -> list[dict]:
    """ours with workers=1 and workers=2, not pinned, wrk -t2: which PIDs answer (X-Pid).

    Keep-alive (50 connections opened at once, then reused) and Connection: close (a new
    connection per request), since the two spread differently over processes sharing a
    socket. Both servers run at once and take turns, as in measure_servers.
    """
    rows = []
    shapes = {"workers": BY_NAME["hello-keepalive"], "workers-close": BY_NAME["hello-close"]}
    servers = {f"ours workers={n}": Server("ours", static_dir, pin=False, workers=n)
               for n in (1, 2)}
    rounds = max(1, round(opts.duration / ROUND_SECONDS))
    try:
        for server in servers.values():
            server.start("/")
        for shape, workload in shapes.items():
            started = {label: new_row(1, label, shape) for label in servers}
            results, failed = take_turns(servers, workload, rounds, lua="pids.lua", pin=False,
                                         threads=2)
            for label, server in servers.items():
                row = rounds_row(started[label], server, results[label], failed.get(label))
                rows.append(row)
                log(f"  {label:18} {shape:16} " + brief(row))
    except (RuntimeError, OSError) as exc:  # a server that did not start
        log(f"  ! workers: {exc}")
        rows = [{"run": 1, "server": label, "workload": shape, "failed": str(exc)[:300]}
                for shape in shapes for label in servers]
    finally:
        for server in servers.values():
            server.stop()
    return rows


def brief(row: dict) -> str:
    """A row on one line, as the run goes."""
    if "failed" in row:
        return f"FAILED: {row['failed'][:120]}"
    parts = []
    if row.get("rps") is not None:
        parts.append(f"{row['rps']:9.0f} req/s")
    parts.append(f"p99 {row['p99_ms']:.2f} ms" if row.get("p99_ms") is not None else "p99 -")
    if row.get("rss_mib") is not None:
        parts.append(f"RSS {row['rss_mib']:.1f} MiB")
    if row.get("error_count"):
        parts.append(f"errors {row['error_count']}")
    if row.get("pids"):
        parts.append(f"PIDs {len(row['pids'])}")
    if row.get("idle"):
        i = row["idle"]
        parts.append(f"held {i['still_open']}/{i['connections_wanted']}")
    return ", ".join(parts)
