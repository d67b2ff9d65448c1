"""The servers `make bench` measures: how each one starts, pinned to its core, and stops.

Every server serves the same app (apps/), on 127.0.0.1, in its own process group so that it
can be stopped whole (gunicorn's master and worker together). A group, not a session: Linux
shares the CPU fairly between sessions (autogroups) before threads, and a server in a session
of its own would get half the cores at most while wrk, in the harness's, is busy, which
skews every server that is not pinned (the workers=2 rows).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from workloads import APPS, KEEP_ALIVE, SERVER_CORE, THREADS, VENV_BIN, WORK


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


def server_command(name: str, port: int, static_dir: Path, workers: int = 1,
                   apps: Path = APPS) -> list[str]:
    """``apps``: the folder of ours.py (another build's, for bench/ab.py)."""
    py = str(VENV_BIN / "python")
    if name in ("ours", "ours+log"):
        cmd = [py, str(apps / "ours.py"), "--port", str(port), "--threads", str(THREADS),
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
    """One server process, started in its own process group so that it can be stopped whole."""

    def __init__(self, name: str, static_dir: Path, *, pin: bool = True, workers: int = 1,
                 env: dict[str, str | None] | None = None, wrapper: list[str] = (),
                 tag: str = "", extra_args: list[str] = (), apps: Path = APPS):
        self.name = name
        self.env = env or {}  # added to the environment; None removes the variable
        self.port = free_port()
        # wrapper: what the server runs under (valgrind for the instruction counts).
        # extra_args: appended to the server's own command line.
        self.cmd = [*wrapper, *server_command(name, self.port, static_dir, workers, apps),
                    *extra_args]
        if pin:
            self.cmd = ["taskset", "-c", SERVER_CORE, *self.cmd]
        log_dir = WORK / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        suffix = ("" if workers == 1 else f"-w{workers}") + (f"-{tag}" if tag else "")
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
            process_group=0, stdin=subprocess.DEVNULL,
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

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the whole session, SIGKILL after ``timeout`` seconds."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
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
