#!/usr/bin/env python3
"""`make bench`: our http_server against its peers, side by side, in one run.

    bench/.venv/bin/python bench/run.py [--quick] [--runs N] [--duration S]
                                        [--servers ours,waitress,...] [--out DIR]
                                        [--flood-only | --no-flood]

Each server serves the same tiny app (bench/apps/tiny.py), pinned to core 0 (taskset -c 0),
with wrk pinned to core 1, on 127.0.0.1. Workloads, each bounded in time:

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

Then `workers=2`: ours with workers=1 and workers=2, neither pinned, counting the distinct
PIDs that answered (X-Pid header, wrk Lua script).

Prints one table (each figure also as a ratio to ours in the same run) and writes
table.md, results.json and chart.png to --out (bench/results/ by default; bench/.work/results/
with --quick, so a smoke test leaves the committed table alone); a full run also puts the
table into bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
APPS = BENCH / "apps"
WORK = BENCH / ".work"
VENV_BIN = BENCH / ".venv" / "bin"
TEMPLATE_DIR = ROOT / "{{cookiecutter.project}}"
OURS_INIT = TEMPLATE_DIR / "http_server" / "__init__.py"
README = BENCH / "README.md"
TABLE_START = "<!-- bench-table:start -->"
TABLE_END = "<!-- bench-table:end -->"

sys.path.insert(0, str(BENCH))
import flood_bench  # noqa: E402
from idle import raise_nofile, tree_cpu_seconds, tree_rss_kib  # noqa: E402

THREADS = 16  # worker threads for every threaded server (ours' default)
KEEP_ALIVE = 30  # seconds, every server: long enough to hold the idle connections
CONNECTIONS = 50
POST_BYTES = 4096
STATIC_BYTES = 1024 * 1024
IDLE_CONNECTIONS = 5000
HEADERS_SEEN: dict[str, dict] = {}  # server -> workload -> response headers, for results.json
SERVER_CORE = "0"
CLIENT_CORE = "1"

WORKLOADS = {
    # name: (path, wrk arguments, Lua script arguments)
    "hello-keepalive": ("/", [], []),
    "hello-close": ("/", ["-H", "Connection: close"], []),
    "json-router": ("/users/42", [], []),
    "post-echo-4k": ("/echo", [], ["post", str(POST_BYTES)]),
    "static-1mib": ("/static/1mib.bin", [], []),
    "blocking-50ms": ("/wait", [], []),
}
# Fewer connections than the 16 threads: every request can wait at once.
WORKLOAD_CONNECTIONS = {"blocking-50ms": 15}
WORKLOAD_LABELS = {
    "hello-keepalive": "hello, keep-alive",
    "hello-close": "hello, Connection: close",
    "json-router": "JSON /users/<id> + middleware",
    "post-echo-4k": "POST 4 KiB echo",
    "static-1mib": "static 1 MiB file",
    "blocking-50ms": "view waiting 50 ms, 15 conns",
    "idle": "idle keep-alive connections held",
    "workers": "hello, keep-alive, not pinned",
    "workers-close": "hello, Connection: close, not pinned",
}
PYTHON_WORKLOADS = ["hello-keepalive", "hello-close", "json-router", "post-echo-4k",
                    "blocking-50ms"]


# ----------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def write_nginx_conf(port: int, static_dir: Path) -> tuple[Path, Path]:
    prefix = WORK / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""# written by bench/run.py: one process, no access log, sendfile, like ours
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 10000; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout {KEEP_ALIVE}s;
    keepalive_requests 100000000;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ application/octet-stream bin; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location /static/ {{ alias {static_dir}/; }}
    }}
}}
"""
    )
    return prefix, conf


def server_command(name: str, port: int, static_dir: Path, workers: int = 1) -> list[str]:
    py = str(VENV_BIN / "python")
    if name in ("ours", "ours+log"):
        cmd = [py, str(APPS / "ours.py"), "--port", str(port), "--threads", str(THREADS),
               "--workers", str(workers), "--static", str(static_dir),
               "--keep-alive-timeout", str(KEEP_ALIVE), "--max-connections", "10000"]
        return cmd + (["--access-log"] if name == "ours+log" else [])
    if name == "waitress":
        return [str(VENV_BIN / "waitress-serve"), f"--listen=127.0.0.1:{port}",
                f"--threads={THREADS}", "--connection-limit=10000",
                f"--channel-timeout={KEEP_ALIVE}", "--backlog=4096",
                "--asyncore-use-poll", "wsgi_app:app"]
    if name == "gunicorn":
        return [str(VENV_BIN / "gunicorn"), "--worker-class", "gthread", "--workers", "1",
                "--threads", str(THREADS), "--keep-alive", str(KEEP_ALIVE),
                "--worker-connections", "10000", "--backlog", "4096",
                "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi_app:app"]
    if name in ("uvicorn-h11", "uvicorn-httptools"):
        http, loop = ("h11", "asyncio") if name == "uvicorn-h11" else ("httptools", "uvloop")
        return [str(VENV_BIN / "uvicorn"), "asgi_app:app", "--host", "127.0.0.1",
                "--port", str(port), "--http", http, "--loop", loop, "--no-access-log",
                "--log-level", "warning", "--timeout-keep-alive", str(KEEP_ALIVE),
                "--backlog", "4096", "--lifespan", "off"]
    if name == "nginx":
        prefix, conf = write_nginx_conf(port, static_dir)
        return [nginx_binary(), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    raise ValueError(name)


SERVER_NOTES = {
    "ours": f"http_server, threads={THREADS}, access_log=False",
    "ours+log": f"http_server, threads={THREADS}, access_log=True (to a file)",
    "waitress": f"waitress, threads={THREADS}, asyncore poll",
    "gunicorn": f"gunicorn, gthread worker x1, threads={THREADS}",
    "uvicorn-h11": "uvicorn, h11 + asyncio loop",
    "uvicorn-httptools": "uvicorn, httptools + uvloop",
    "nginx": "nginx (Debian), 1 process, sendfile",
}
ALL_SERVERS = list(SERVER_NOTES)


class Server:
    """One server process, started in its own session so that it can be stopped whole."""

    def __init__(self, name: str, static_dir: Path, *, pin: bool = True, workers: int = 1,
                 env: dict[str, str | None] | None = None):
        self.name = name
        self.env = env or {}  # added to the environment; None removes the variable
        self.port = free_port()
        self.cmd = server_command(name, self.port, static_dir, workers)
        if pin:
            self.cmd = ["taskset", "-c", SERVER_CORE, *self.cmd]
        log_dir = WORK / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        suffix = "" if workers == 1 else f"-w{workers}"
        self.log_path = log_dir / f"{name}{suffix}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str, timeout: float = 20.0) -> None:
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONUNBUFFERED", None)  # the same buffering for every Python server
        env.update(self.env)
        env = {k: v for k, v in env.items() if v is not None}
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd, cwd=APPS, stdout=self.log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.tail_log()}")
            try:
                if http_get(self.port, ready_path, timeout=1.0)[0] > 0:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} not answering on {self.url} after {timeout}s: "
                           f"{self.tail_log()}")

    def tail_log(self, n: int = 2000) -> str:
        """The last line of the server's output (a traceback's last line says the most)."""
        try:
            text = self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return lines[-1] if lines else "(no output)"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        self.log.close()


def http_get(port: int, path: str, timeout: float = 5.0, method: str = "GET",
             body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection (Connection: close); status, headers, body."""
    request = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
               f"Content-Length: {len(body)}\r\n"
               + ("Content-Type: application/octet-stream\r\n" if body else "")
               + "\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or len(lines[0].split()) < 2:
        return 0, {}, b""
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    length = headers.get("content-length")
    return int(lines[0].split()[1]), headers, rest[: int(length)] if length else rest


# ----------------------------------------------------------------------------- measuring


def post_body(size: int) -> bytes:
    """The body report.lua sends for `post SIZE`."""
    pattern = b"0123456789abcdef"
    return pattern * (size // len(pattern)) + b"x" * (size % len(pattern))


def answers(server: Server, workloads: list[str]) -> dict[str, dict]:
    """What the server answers for each workload, to check that all servers send the same."""
    out = {}
    for w in workloads:
        path = WORKLOADS[w][0]
        if w == "post-echo-4k":
            status, headers, body = http_get(server.port, path, method="POST",
                                             body=post_body(POST_BYTES))
        else:
            status, headers, body = http_get(server.port, path)
        out[w] = {"status": status, "content_type": headers.get("content-type"),
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
            return data
    raise RuntimeError(f"wrk printed no figures (exit {done.returncode}): "
                       f"{done.stderr.strip() or done.stdout.strip()}")


def run_idle(server: Server, connections: int, hold: float) -> dict:
    cmd = ["taskset", "-c", CLIENT_CORE, str(VENV_BIN / "python"), str(BENCH / "idle.py"),
           "--port", str(server.port), "--pid", str(server.pid),
           "--connections", str(connections), "--hold", str(hold), "--json",
           "--open-deadline", "60"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"idle.py failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout)


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def measure_server(name: str, static_dir: Path, opts: argparse.Namespace, run: int,
                   reference: dict, expected: dict, log) -> list[dict]:
    rows: list[dict] = []
    workloads = ["static-1mib"] if name == "nginx" else list(PYTHON_WORKLOADS)
    if name in ("ours", "ours+log"):
        workloads.append("static-1mib")
    server = Server(name, static_dir)
    try:
        server.start(WORKLOADS[workloads[0]][0])
        got = answers(server, workloads)
        HEADERS_SEEN[name] = {w: a["headers"] for w, a in got.items()}
        if name == "ours" and not reference:
            reference.update(got)
        problems = check_same(name, got, reference, expected)
        for p in problems:
            log(f"  ! {p}")
        # Warm-up, not recorded.
        run_wrk(server.url + WORKLOADS[workloads[0]][0], opts.warmup, wrk_args=[])
        for w in workloads:
            path, wrk_args, lua_args = WORKLOADS[w]
            row = {"run": run, "server": name, "workload": w, "load_before": loadavg()}
            try:
                cpu0, t0 = tree_cpu_seconds(server.pid), time.monotonic()
                res = run_wrk(server.url + path, opts.duration, wrk_args=wrk_args,
                              lua_args=lua_args,
                              connections=WORKLOAD_CONNECTIONS.get(w, CONNECTIONS))
                cpu = tree_cpu_seconds(server.pid) - cpu0
                wall = time.monotonic() - t0
                row.update(rps=res["rps"], p99_ms=res["p99_ms"], p50_ms=res["p50_ms"],
                           requests=res["requests"], errors=res["errors"],
                           error_count=res["error_count"],
                           rss_mib=tree_rss_kib(server.pid) / 1024,
                           cpu_pct=100 * cpu / wall if wall else None,
                           req_per_cpu_s=res["requests"] / cpu if cpu else None)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                row["failed"] = str(exc)[:300]
            row["mismatch"] = [p for p in problems if f" {w}:" in p]
            rows.append(row)
            log(f"  {name:18} {w:16} " + fmt_row_brief(row))
        if name != "nginx" and opts.idle_connections:
            w = "idle"
            row = {"run": run, "server": name, "workload": w, "load_before": loadavg()}
            try:
                res = run_idle(server, opts.idle_connections, opts.idle_hold)
                row.update(idle=res, p99_ms=res["probe_p99_ms"], p50_ms=res["probe_p50_ms"],
                           rss_mib=res["rss_held_kib"] / 1024,
                           rss_base_mib=res["rss_base_kib"] / 1024,
                           error_count=res["probe_failures"] + sum(res["open_errors"].values()))
            except (RuntimeError, subprocess.TimeoutExpired, KeyError, ValueError) as exc:
                row["failed"] = str(exc)[:300]
            rows.append(row)
            log(f"  {name:18} {w:16} " + fmt_row_brief(row))
    except (RuntimeError, OSError) as exc:
        log(f"  ! {name}: {exc}")
        for w in workloads:
            rows.append({"run": run, "server": name, "workload": w, "failed": str(exc)[:300]})
    finally:
        server.stop()
    return rows


def measure_workers(static_dir: Path, opts: argparse.Namespace, log) -> list[dict]:
    """ours with workers=1 and workers=2, not pinned, wrk -t2: which PIDs answer (X-Pid).

    Keep-alive (50 connections opened at once, then reused) and Connection: close (a new
    connection per request), since the two spread differently over processes sharing a socket.
    """
    rows = []
    for workers in (1, 2):
        server = Server("ours", static_dir, pin=False, workers=workers)
        try:
            server.start("/")
            for w in ("workers", "workers-close"):
                row = {"run": 1, "server": f"ours workers={workers}", "workload": w,
                       "load_before": loadavg()}
                try:
                    cpu0, t0 = tree_cpu_seconds(server.pid), time.monotonic()
                    res = run_wrk(server.url + "/", opts.duration, wrk_args=WORKLOADS[
                        "hello-close" if w == "workers-close" else "hello-keepalive"][1],
                        lua="pids.lua", pin=False, threads=2)
                    cpu = tree_cpu_seconds(server.pid) - cpu0
                    wall = time.monotonic() - t0
                    row.update(rps=res["rps"], p99_ms=res["p99_ms"], p50_ms=res["p50_ms"],
                               requests=res["requests"], errors=res["errors"],
                               error_count=res["error_count"], pids=res["pids"],
                               rss_mib=tree_rss_kib(server.pid) / 1024,
                               cpu_pct=100 * cpu / wall if wall else None,
                               req_per_cpu_s=res["requests"] / cpu if cpu else None)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    row["failed"] = str(exc)[:300]
                rows.append(row)
                log(f"  {row['server']:18} {w:16} " + fmt_row_brief(row))
        except (RuntimeError, OSError) as exc:
            log(f"  ! ours workers={workers}: {exc}")
            for w in ("workers", "workers-close"):
                rows.append({"run": 1, "server": f"ours workers={workers}", "workload": w,
                             "failed": str(exc)[:300]})
        finally:
            server.stop()
    return rows


# ----------------------------------------------------------------------------- reporting


def fmt_row_brief(row: dict) -> str:
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


def ratio(value, ref) -> str:
    if value is None or not ref:
        return ""
    return f" ({value / ref:.2f})"


def cell(row: dict | None, key: str, ref_row: dict | None, fmt: str) -> str:
    if row is None:
        return ""
    if "failed" in row:
        return "failed"
    value = row.get(key)
    if value is None:
        return "-"
    ref = ref_row.get(key) if ref_row and "failed" not in ref_row else None
    return format(value, fmt) + ratio(value, ref)


def notes(rows: list[dict]) -> str:
    out = []
    for row in rows:
        if row is None:
            continue
        tag = f"#{row['run']}: " if len(rows) > 1 else ""
        if "failed" in row:
            out.append(tag + " ".join(row["failed"].split())[:100])
            continue
        bits = []
        if row.get("error_count"):
            errs = row.get("errors") or {}
            detail = ",".join(f"{k} {v}" for k, v in errs.items() if v)
            bits.append(f"{row['error_count']} errors" + (f" ({detail})" if detail else ""))
        if row.get("idle"):
            i = row["idle"]
            bits.append(f"held {i['still_open']}/{i['connections_wanted']}, "
                        f"base RSS {row['rss_base_mib']:.1f}")
        if row.get("flood"):
            bits.append(flood_bench.note(row))
        if row.get("pids"):
            bits.append(f"{len(row['pids'])} PIDs answered: "
                        + "/".join(str(n) for n in sorted(row["pids"].values(), reverse=True)))
        if row.get("mismatch"):
            bits.append("answer differs from ours")
        if bits:
            out.append(tag + "; ".join(bits))
    return " | ".join(out)


def table_rows(rows: list[dict], runs: int) -> tuple[list[str], list[list[str]]]:
    header = ["workload", "server"]
    for metric in ("req/s", "req/CPU-s", "p99 ms", "RSS MiB"):
        for r in range(1, runs + 1):
            header.append(f"{metric} #{r}" if runs > 1 else metric)
    run_tags = "/".join(f"#{r}" for r in range(1, runs + 1))
    header.append("CPU %" if runs == 1 else f"CPU % {run_tags}")
    header.append("notes")
    index = {(r["workload"], r["server"], r["run"]): r for r in rows}
    order_w = [*WORKLOADS, "idle", *flood_bench.FLOODS, "workers", "workers-close"]
    order_s = [ALL_SERVERS[0], flood_bench.ARENA, *ALL_SERVERS[1:], "ours workers=1",
               "ours workers=2"]
    body = []
    for w in order_w:
        for s in order_s:
            these = [index.get((w, s, r)) for r in range(1, runs + 1)]
            if not any(these):
                continue
            ref_name = "ours workers=1" if w.startswith("workers") else "ours"
            refs = [index.get((w, ref_name, r)) for r in range(1, runs + 1)]
            line = [WORKLOAD_LABELS.get(w, w), s]
            for key, fmt in (("rps", ",.0f"), ("req_per_cpu_s", ",.0f"), ("p99_ms", ".2f"),
                             ("rss_mib", ".1f")):
                for row, ref in zip(these, refs, strict=True):
                    line.append(cell(row, key, ref, fmt))
            line.append("/".join(
                f"{row['cpu_pct']:.0f}" if row and row.get("cpu_pct") is not None else "-"
                for row in these))
            line.append(notes(these))
            body.append(line)
    return header, body


def render_text(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h)
              for i, h in enumerate(header)]
    widths[-1] = len(header[-1])  # notes: no padding
    def line(cells):
        return "  ".join(c.ljust(w) if i < len(cells) - 1 else c
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    out = [line(header), line(["-" * w for w in widths[:-1]] + ["-----"])]
    out += [line(r) for r in body]
    return "\n".join(out)


def render_markdown(header: list[str], body: list[list[str]]) -> str:
    def esc(c: str) -> str:
        return c.replace("|", "\\|")
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i < 2 or i == len(header) - 1 else "---:"
                          for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in body]
    return "\n".join(out)


def chart(rows: list[dict], runs: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(w, "rps", "requests/s") for w in WORKLOADS]
    panels += [("idle", "rss_mib", "RSS MiB, idle connections held"),
               ("idle", "p99_ms", "new client p99 ms, idle held"),
               ("flood", "p99_ms", "new client p99 ms"), ("flood-big", "rss_mib", "RSS MiB after")]
    panels = [p for p in panels if any(r["workload"] == p[0] for r in rows)]
    cols = 2
    nrows = (len(panels) + cols) // cols  # and a place for the workers panel
    fig, axes = plt.subplots(nrows, cols, figsize=(12, 2.6 * nrows), squeeze=False)
    colors = ["#4c72b0", "#dd8452", "#55a868"]
    for ax, (w, key, title) in zip(axes.flat, panels, strict=False):
        servers = [s for s in [ALL_SERVERS[0], flood_bench.ARENA, *ALL_SERVERS[1:]]
                   if any(r["workload"] == w and r["server"] == s for r in rows)]
        height = 0.8 / runs
        for run in range(1, runs + 1):
            values = []
            for s in servers:
                row = next((r for r in rows if r["workload"] == w and r["server"] == s
                            and r["run"] == run), None)
                values.append(row.get(key) or 0 if row and "failed" not in row else 0)
            ys = [i + (run - 1) * height for i in range(len(servers))]
            ax.barh(ys, values, height=height, label=f"run {run}",
                    color=colors[(run - 1) % len(colors)])
        ax.set_yticks([i + height * (runs - 1) / 2 for i in range(len(servers))])
        ax.set_yticklabels(servers, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{WORKLOAD_LABELS.get(w, w)}: {title}", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    spare = list(axes.flat)[len(panels):]
    workers_rows = [r for r in rows if r["workload"].startswith("workers") and "failed" not in r]
    if spare and workers_rows:
        ax = spare.pop(0)
        labels = [f"{r['server'].replace('ours ', '')}, "
                  f"{'close' if r['workload'].endswith('close') else 'keep-alive'}, "
                  f"{len(r.get('pids') or {})} PID(s)" for r in workers_rows]
        ax.barh(range(len(labels)), [r["rps"] for r in workers_rows], color=colors[2])
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title("ours workers=1 vs 2, not pinned, wrk -t2: requests/s", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in spare:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="upper right")
    fig.suptitle("make bench: server on core 0, wrk on core 1, 127.0.0.1 (higher req/s is "
                 "better; lower RSS and p99 are better)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def versions() -> dict:
    out = {"python": platform.python_version()}
    try:
        from importlib.metadata import version

        for pkg in ("waitress", "gunicorn", "uvicorn", "h11", "httptools", "uvloop"):
            out[pkg] = version(pkg)
    except Exception as exc:  # noqa: BLE001 - informative only
        out["error"] = str(exc)
    for cmd, key in (([nginx_binary(), "-v"], "nginx"), (["wrk", "--version"], "wrk")):
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            out[key] = (done.stderr + done.stdout).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            out[key] = None
    framework = str(TEMPLATE_DIR / "http_server")
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h %cI", "--", framework],
            capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", framework],
            capture_output=True, text=True, timeout=5).stdout.strip()
        # "+changes": the framework's files differ from that commit (work in progress).
        out["ours_commit"] = commit.replace(" ", "+changes ", 1) if dirty else commit
    except OSError:
        out["ours_commit"] = None
    return out


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                         "")
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release()}


def update_readme(markdown: str, meta: str) -> None:
    if not README.exists():
        return
    text = README.read_text()
    if TABLE_START not in text or TABLE_END not in text:
        return
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    README.write_text(f"{head}{TABLE_START}\n{meta}\n\n{markdown}\n{TABLE_END}{tail}")


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
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
    opts = parser.parse_args(argv)
    opts.runs = opts.runs or (1 if opts.quick else 2)
    opts.duration = opts.duration or (1 if opts.quick else 4)
    opts.warmup = 1
    opts.idle_connections = 1000 if opts.quick else IDLE_CONNECTIONS
    opts.idle_hold = 0.5 if opts.quick else 2.0
    WORKLOAD_LABELS["idle"] = f"{opts.idle_connections:,} idle keep-alive held"
    WORKLOAD_LABELS.update(flood_bench.labels(opts.quick))
    out_dir = opts.out or (WORK / "results" if opts.quick else BENCH / "results")
    if opts.flood_only and not opts.out:
        out_dir = out_dir / "flood"  # beside the whole table, not over it
    servers = opts.servers.split(",") if opts.servers else list(ALL_SERVERS)
    unknown = set(servers) - set(ALL_SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    if any(s.startswith("ours") for s in servers) and not OURS_INIT.exists():
        print(f"bench: {OURS_INIT.relative_to(ROOT)} does not exist yet: nothing to measure as "
              "'ours' (use --servers to measure the peers alone)", file=sys.stderr)
        return 2
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            print(f"bench: {tool} not found; run bench/install.sh", file=sys.stderr)
            return 2
    if (os.cpu_count() or 1) < 2:
        print("bench: needs 2 cores (server on core 0, wrk on core 1)", file=sys.stderr)
        return 2
    nofile = raise_nofile(20000)  # inherited by the servers: room for the idle connections
    if nofile < opts.idle_connections + 200:
        print(f"bench: RLIMIT_NOFILE {nofile} is too low for {opts.idle_connections} idle "
              "connections", file=sys.stderr)
        return 2

    started = dt.datetime.now(dt.timezone.utc)
    out_dir.mkdir(parents=True, exist_ok=True)
    static_dir = WORK / "static"
    static_dir.mkdir(parents=True, exist_ok=True)
    static_file = static_dir / "1mib.bin"
    if not static_file.exists() or static_file.stat().st_size != STATIC_BYTES:
        static_file.write_bytes(os.urandom(STATIC_BYTES))
    expected = {"hello-keepalive": b"hello world !", "hello-close": b"hello world !",
                "post-echo-4k": post_body(POST_BYTES), "static-1mib": static_file.read_bytes(),
                "blocking-50ms": b"waited"}

    def log(msg: str) -> None:
        print(msg, flush=True)

    log(f"bench: {len(servers)} servers x {opts.runs} runs, {opts.duration:g} s per workload, "
        f"{opts.idle_connections} idle connections; server on core {SERVER_CORE}, "
        f"wrk on core {CLIENT_CORE}; load average now {loadavg():.2f}")
    rows: list[dict] = []
    runs_meta = []
    reference: dict = {}
    for run in range(1, opts.runs + 1):
        # Every other run goes backwards, so that no server is always measured first.
        order = servers if run % 2 else list(reversed(servers))
        if "ours" in order:  # ours answers first: its bytes are the reference
            order = ["ours", *[s for s in order if s != "ours"]]
        before = loadavg()
        t0 = time.monotonic()
        log(f"run {run}/{opts.runs} (load average {before:.2f})")
        for name in [] if opts.flood_only else order:
            rows += measure_server(name, static_dir, opts, run, reference, expected, log)
        if not opts.no_flood:
            rows += flood_bench.measure(
                run, order, lambda name, env: Server(name, static_dir, env=env),
                quick=opts.quick, client_core=CLIENT_CORE, loadavg=loadavg, log=log)
        runs_meta.append({"run": run, "load_before": before, "load_after": loadavg(),
                          "seconds": round(time.monotonic() - t0, 1)})
    if "ours" in servers and not (opts.no_workers or opts.flood_only):
        log("workers: ours with workers=1 and workers=2, not pinned, wrk -t2")
        rows += measure_workers(static_dir, opts, log)

    header, body = table_rows(rows, opts.runs)
    text = render_text(header, body)
    markdown = render_markdown(header, body)
    finished = dt.datetime.now(dt.timezone.utc)
    mach = machine()
    vers = versions()
    loads = ", ".join(f"run {m['run']}: {m['load_before']:.2f} -> {m['load_after']:.2f}"
                      for m in runs_meta)
    meta = (f"Measured {finished:%Y-%m-%d %H:%M} UTC on {mach['cpu']} ({mach['cores']} cores), "
            f"kernel {mach['kernel']}, Python {vers['python']}; http_server at "
            f"{(vers.get('ours_commit') or '?').split()[0]}; {opts.duration:g} s per workload, "
            f"{CONNECTIONS} connections, {opts.runs} run(s); load average {loads} "
            f"(the benchmark adds about 2). "
            f"Each cell: value (ratio to ours in the same run).")
    print()
    print(text)
    print()
    print(meta)

    (out_dir / "table.txt").write_text(text + "\n\n" + meta + "\n")
    (out_dir / "table.md").write_text(meta + "\n\n" + markdown + "\n")
    for row in rows:
        row.pop("answers", None)
    (out_dir / "results.json").write_text(json.dumps({
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "machine": mach, "versions": vers,
        "settings": {"runs": opts.runs, "duration_s": opts.duration, "connections": CONNECTIONS,
                     "threads": THREADS, "keep_alive_s": KEEP_ALIVE, "post_bytes": POST_BYTES,
                     "static_bytes": STATIC_BYTES, "idle_connections": opts.idle_connections,
                     "server_core": SERVER_CORE, "client_core": CLIENT_CORE,
                     "floods": flood_bench.QUICK_FLOODS if opts.quick else flood_bench.FLOODS,
                     "servers": {s: SERVER_NOTES[s] for s in servers}},
        "runs": runs_meta, "rows": rows, "response_headers": HEADERS_SEEN,
    }, indent=1) + "\n")
    try:
        chart(rows, opts.runs, out_dir / "chart.png")
    except ImportError as exc:
        log(f"bench: no chart ({exc})")
    if out_dir == BENCH / "results":
        update_readme(markdown, meta)
    log(f"bench: wrote {out_dir.relative_to(ROOT) if out_dir.is_relative_to(ROOT) else out_dir}"
        f"/{{table.txt,table.md,results.json,chart.png}} in "
        f"{(finished - started).total_seconds():.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
