"""What `make bench` measures: the settings every server shares and the list of workloads.

servers.py starts the servers these name, measure.py runs them and report.py prints them, all
from the one list below.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
APPS = BENCH / "apps"
WORK = BENCH / ".work"
VENV_BIN = BENCH / ".venv" / "bin"
TEMPLATE_DIR = ROOT / "{{cookiecutter.project}}"
OURS_INIT = TEMPLATE_DIR / "http_server" / "__init__.py"

THREADS = 16  # worker threads for every threaded server (ours' default)
KEEP_ALIVE = 30  # seconds, every server: long enough to hold the idle connections
CONNECTIONS = 50
POST_BYTES = 4096
STATIC_BYTES = 1024 * 1024
IDLE_CONNECTIONS = 5000
SERVER_CORE = "0"
CLIENT_CORE = "1"

HELLO = b"hello world !"
PYTHON_SERVERS = ("ours", "ours+log", "waitress", "gunicorn", "uvicorn-h11", "uvicorn-httptools")
STATIC_SERVERS = ("ours", "ours+log", "nginx")


# A browser's navigation request, as Chrome sends it (with a session cookie), after Host.
BROWSER_FIELDS = (
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.0.0 Safari/537.36",
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "*/*;q=0.8",
    "Accept-Language: en-US,en;q=0.9",
    "Accept-Encoding: gzip, deflate, br",
    "Connection: keep-alive",
    "Cookie: session=0123456789abcdef; theme=dark",
    "Upgrade-Insecure-Requests: 1",
    "Sec-Fetch-Dest: document",
    "Sec-Fetch-Mode: navigate",
    "Sec-Fetch-Site: none",
)


def post_body(size: int = POST_BYTES) -> bytes:
    """The body report.lua sends for `post SIZE` (and the instruction counter sends too)."""
    pattern = b"0123456789abcdef"
    return pattern * (size // len(pattern)) + b"x" * (size % len(pattern))


@dataclass(frozen=True)
class Workload:
    """One wrk workload: the request, how many connections, which servers take it."""

    name: str
    label: str
    path: str
    servers: tuple[str, ...] = PYTHON_SERVERS
    wrk_args: tuple[str, ...] = ()
    lua_args: tuple[str, ...] = ()  # report.lua's: `post SIZE` sends a body
    connections: int = CONNECTIONS
    expected: bytes | None = None  # the body every server must answer (None: ours' is the model)
    instructions: bool = False  # also counted in instructions per request (instructions.py)
    # False: only counted, with `connections` connections sending at once (instructions.py)
    wrk: bool = True
    headers: tuple[str, ...] = ()  # field lines sent after Host (counted workloads only)
    # Rounds of this workload per server, as a multiple of the run's (measure.py): more for
    # one whose rounds vary most, so that its figure is as steady as the others'.
    rounds_scale: int = 1

    @property
    def method(self) -> str:
        return "POST" if self.lua_args[:1] == ("post",) else "GET"

    @property
    def body(self) -> bytes:
        return post_body(int(self.lua_args[1])) if self.method == "POST" else b""


WORKLOADS = [
    Workload("hello-keepalive", "hello, keep-alive", "/", expected=HELLO, instructions=True),
    Workload("hello-close", "hello, Connection: close", "/", wrk_args=("-H", "Connection: close"),
             expected=HELLO),
    # As wrk's 50 connections do, which one connection, a request at a time, does not show.
    Workload("batch50-hello", "hello, 50 connections at once", "/", expected=HELLO,
             instructions=True, wrk=False),
    # What a browser sends with every request: reading its header fields is much of the cost.
    Workload("browser-hello", "hello, a browser's 11 header fields", "/", expected=HELLO,
             instructions=True, wrk=False, connections=1, headers=BROWSER_FIELDS),
    Workload("json-router", "JSON /users/<id> + middleware", "/users/42", instructions=True),
    Workload("post-echo-4k", "POST 4 KiB echo", "/echo", lua_args=("post", str(POST_BYTES)),
             expected=post_body(POST_BYTES), instructions=True),
    # The expected bytes are the file's, read once it is written (measure.expected_bodies).
    # Bound by wrk reading its 1 MiB answers: its 1 s rounds vary the most.
    Workload("static-1mib", "static 1 MiB file", "/static/1mib.bin", servers=STATIC_SERVERS,
             instructions=True, rounds_scale=3),
    # Fewer connections than the 16 threads: every request can wait at once.
    Workload("blocking-50ms", "view waiting 50 ms, 15 conns", "/wait", connections=15,
             expected=b"waited"),
]
BY_NAME = {w.name: w for w in WORKLOADS}
INSTRUCTION_WORKLOADS = [w for w in WORKLOADS if w.instructions]

# The rows that are not wrk workloads, in the order the table prints them after the wrk ones.
# Floods and uploads are described in their own modules (flood_bench.py, uploads.py).
LABELS = {
    **{w.name: w.label for w in WORKLOADS},
    "idle": "idle keep-alive connections held",
    "workers": "hello, keep-alive, not pinned",
    "workers-close": "hello, Connection: close, not pinned",
}


def for_server(name: str) -> list[Workload]:
    return [w for w in WORKLOADS if name in w.servers and w.wrk]
