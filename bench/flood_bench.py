"""The flood workloads of `make bench`: every server under a flood of malformed requests.

Each server in turn, alone and pinned like the others, gets bench/flood.py (pinned to the
client core): waves of connections that each send one malformed request and then stay silent.
Its row holds the p99 of new clients meanwhile and the server's RSS once the flood is over.

- ``flood``: 4 waves of 200, one second apart, each request 50 bytes: does a refusal hold a
  thread, so that a few kilobytes starve every other client?
- ``flood-big``: 2 waves of 500 with 60 KB heads: what memory the process keeps afterwards.

Ours runs twice: as it is, and with ``MALLOC_ARENA_MAX=2`` in its environment (the setting the
generated image runs with), so that the table shows what the setting buys. run.py calls
``measure`` once per run and prints the rows in its table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from idle import measured_row, tree_cpu_seconds

BENCH = Path(__file__).resolve().parent
ARENA = "ours MALLOC_ARENA_MAX=2"
ARENA_ENV = {"MALLOC_ARENA_MAX": "2"}
SERVERS = ["ours", ARENA, "waitress", "gunicorn", "uvicorn-h11", "uvicorn-httptools"]

# name: flood.py arguments; the quick ones are for a smoke test.
FLOODS = {
    "flood": {"connections": 200, "waves": 4, "interval": 1.0, "pad_bytes": 0},
    "flood-big": {"connections": 500, "waves": 2, "interval": 1.0, "pad_bytes": 60000},
}
QUICK_FLOODS = {
    "flood": {"connections": 200, "waves": 1, "interval": 1.0, "pad_bytes": 0},
    "flood-big": {"connections": 200, "waves": 1, "interval": 1.0, "pad_bytes": 60000},
}


def label(workload: str, shape: dict) -> str:
    head = f"{shape['pad_bytes'] // 1000} KB heads" if shape["pad_bytes"] else "50 B each"
    return f"malformed flood, {shape['waves']} x {shape['connections']}, {head}"


def labels(quick: bool) -> dict[str, str]:
    floods = QUICK_FLOODS if quick else FLOODS
    return {w: label(w, shape) for w, shape in floods.items()}


def run_flood(port: int, pid: int, shape: dict, client_core: str) -> dict:
    cmd = ["taskset", "-c", client_core, sys.executable, str(BENCH / "flood.py"),
           "--port", str(port), "--pid", str(pid), "--json",
           "--connections", str(shape["connections"]), "--waves", str(shape["waves"]),
           "--interval", str(shape["interval"]), "--pad-bytes", str(shape["pad_bytes"])]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"flood.py failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout)


def row_from(result: dict) -> dict:
    """The figures of one flood as a row of the table (report.py)."""
    return {"flood": result, "p99_ms": result["probe_p99_ms"], "p50_ms": result["probe_p50_ms"],
            "rss_mib": result["rss_after_kib"] / 1024,
            "rss_base_mib": result["rss_base_kib"] / 1024,
            "rss_peak_mib": result["rss_peak_kib"] / 1024,
            "errors": result["probe_errors"], "error_count": result["probe_failures"]}


def note(row: dict) -> str:
    """What the notes column says about a flood row, besides the probes' errors."""
    f = row["flood"]
    refused = sum(f["attack_answers"].values())
    text = (f"p50 {row['p50_ms']:.1f} ms, {refused}/{f['attack_connections']} refused in time, "
            f"RSS base {row['rss_base_mib']:.1f} peak {row['rss_peak_mib']:.1f}")
    return text if f["answers_after"] else text + ", NOT answering after"


def measure(run: int, servers: list[str], make_server, *, quick: bool, client_core: str,
            loadavg, log) -> list[dict]:
    """One run of the flood workloads on each of ``servers`` that can take them.

    ``make_server(name, env)`` returns servers.Server, not started; ``env`` is added to the
    server's environment (a None value removes the variable).
    """
    floods = QUICK_FLOODS if quick else FLOODS
    names = [n for s in servers if s in SERVERS for n in ([s, ARENA] if s == "ours" else [s])]
    rows = []
    for workload, shape in floods.items():
        for name in names:
            env = ARENA_ENV if name == ARENA else {"MALLOC_ARENA_MAX": None}
            server = make_server("ours" if name == ARENA else name, env)
            def flood(server=server, shape=shape) -> dict:
                cpu0, t0 = tree_cpu_seconds(server.pid), time.monotonic()
                figures = row_from(run_flood(server.port, server.pid, shape, client_core))
                wall = time.monotonic() - t0
                figures["cpu_pct"] = 100 * (tree_cpu_seconds(server.pid) - cpu0) / wall
                return figures

            row = measured_row(server, {"run": run, "server": name, "workload": workload,
                                        "load_before": loadavg()}, flood)
            rows.append(row)
            if "failed" in row:
                log(f"  {name:23} {workload:9} FAILED: {row['failed'][:120]}")
            else:
                log(f"  {name:23} {workload:9} p99 {row['p99_ms']:.1f} ms, "
                    f"RSS after {row['rss_mib']:.1f} MiB, errors {row['error_count']}; "
                    + note(row))
    return rows
