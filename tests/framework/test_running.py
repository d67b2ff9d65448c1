"""Running the server for real: signals, graceful shutdown, worker processes, many idle
clients, threads, bad settings and the logs. Each server is a separate Python process
(see support/processes.py), so signals and exit codes are the real ones. (The connection
limit's 503 is in test_protocol.py.)
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from http_server import Path, WebServer
from http_server.config import ConfigError, settings_from_env
from http_server.testing import LiveServer
from support.paths import TEMPLATE_DIR
from support.processes import ServerProcess, wait_for_file, write_script
from support.rawhttp import raw_request, read_response

TIMEOUT = 5
STOP_SIGNALS = [
    pytest.param(signal.SIGTERM, id="SIGTERM"),
    pytest.param(signal.SIGINT, id="SIGINT"),
]


def get_in_thread(url: str, results: list) -> threading.Thread:
    """GET ``url`` in a background thread; the response (or the exception) lands in results."""

    def run():
        try:
            results.append(requests.get(url, timeout=15))
        except Exception as error:  # noqa: BLE001 - the test inspects it
            results.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# ======================================================================= signals


@pytest.mark.parametrize("number", STOP_SIGNALS)
def test_idle_server_exits_0_promptly_on_signal(tmp_path, number):
    with ServerProcess(tmp_path) as server, socket.create_connection(
            ("127.0.0.1", server.port), timeout=TIMEOUT) as keep_alive:
        keep_alive.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(keep_alive).endswith(b"hello")  # an idle keep-alive client stays
        started = time.monotonic()
        server.signal(number)
        code = server.wait(10)
        elapsed = time.monotonic() - started
        assert keep_alive.recv(100) == b""  # closed by the server, not left hanging
    assert code == 0, server.stderr
    assert elapsed < 1.0, f"took {elapsed:.2f}s to stop"
    assert "Traceback" not in server.stderr


@pytest.mark.parametrize("number", STOP_SIGNALS)
def test_in_flight_request_finishes_before_exit(tmp_path, number):
    with ServerProcess(tmp_path) as server:
        results: list = []
        mark = tmp_path / "view-started"
        thread = get_in_thread(f"{server.url}/slow?seconds=1&mark={mark}", results)
        wait_for_file(mark)  # the view is now sleeping
        signalled = time.monotonic()
        server.signal(number)
        code = server.wait(10)
        exited = time.monotonic() - signalled
        thread.join(10)
    assert isinstance(results[0], requests.Response), results
    assert results[0].status_code == 200
    assert results[0].text == "slow done"
    assert code == 0, server.stderr
    assert 0.5 < exited < 3.0, f"exited {exited:.2f}s after the signal"


@pytest.mark.parametrize("workers", [1, 2])
def test_new_connections_are_refused_while_draining(tmp_path, workers):
    with ServerProcess(tmp_path, workers=workers, threads=2) as server:
        results: list = []
        mark = tmp_path / "view-started"
        thread = get_in_thread(f"{server.url}/slow?seconds=1&mark={mark}", results)
        wait_for_file(mark)
        server.signal(signal.SIGTERM)
        time.sleep(0.2)
        # Refused outright: not accepted into a queue that nobody serves any more.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
        assert server.wait(10) == 0
        thread.join(10)
    assert results[0].status_code == 200


def test_half_sent_request_head_does_not_delay_shutdown(tmp_path):
    with ServerProcess(tmp_path, graceful_timeout=1.5) as server, socket.create_connection(
            ("127.0.0.1", server.port), timeout=TIMEOUT) as slow_client:
        slow_client.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        time.sleep(0.2)
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        code = server.wait(10)
        elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed < 1.0, f"took {elapsed:.2f}s to stop (graceful_timeout=1.5)"


def test_request_past_graceful_timeout_does_not_keep_process_alive(tmp_path):
    with ServerProcess(tmp_path, graceful_timeout=0.5) as server:
        results: list = []
        mark = tmp_path / "view-started"
        get_in_thread(f"{server.url}/slow?seconds=10&mark={mark}", results)
        wait_for_file(mark)
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        code = server.wait(15)
        exited = time.monotonic() - signalled
    assert exited < 2.0, f"exited {exited:.2f}s after the signal (graceful_timeout=0.5)"
    assert code == 0, server.stderr


# ======================================================================= worker processes


def test_two_workers_share_the_port_and_stop_together(tmp_path):
    with ServerProcess(tmp_path, workers=2, threads=2) as server:
        pids: set[int] = set()

        def fetch(_):
            resp = requests.get(server.url + "/pid", headers={"Connection": "close"},
                                timeout=TIMEOUT)
            assert resp.status_code == 200
            return int(resp.text)

        with ThreadPoolExecutor(8) as pool:
            for _ in range(10):  # at most 400 requests; usually the first batch suffices
                pids.update(pool.map(fetch, range(40)))
                if len(pids) >= 2:
                    break
        assert len(pids) == 2, pids
        assert server.process.pid not in pids  # the parent only supervises
        for pid in pids:
            os.kill(pid, 0)  # alive

        server.signal(signal.SIGTERM)
        assert server.wait(10) == 0, server.stderr
        deadline = time.monotonic() + 3
        alive = set(pids)
        while alive and time.monotonic() < deadline:
            for pid in list(alive):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    alive.discard(pid)
            time.sleep(0.02)
        assert not alive, f"worker processes {alive} outlived the parent"
    assert "Traceback" not in server.stderr


def test_in_flight_request_in_a_worker_process_finishes_on_sigterm(tmp_path):
    with ServerProcess(tmp_path, workers=2, threads=2) as server:
        results: list = []
        mark = tmp_path / "view-started"
        thread = get_in_thread(f"{server.url}/slow?seconds=1&mark={mark}", results)
        wait_for_file(mark)
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        code = server.wait(10)
        exited = time.monotonic() - signalled
        thread.join(10)
    assert isinstance(results[0], requests.Response), results
    assert results[0].status_code == 200
    assert code == 0, server.stderr
    assert exited < 3.0, f"exited {exited:.2f}s after the signal"


def test_a_worker_process_that_dies_is_replaced(tmp_path):
    with ServerProcess(tmp_path, workers=2, threads=2) as server:
        def pids_seen(rounds: int = 200) -> set[int]:
            seen: set[int] = set()
            with ThreadPoolExecutor(8) as pool:
                for _ in range(rounds // 40):
                    seen.update(pool.map(lambda _: int(requests.get(
                        server.url + "/pid", headers={"Connection": "close"},
                        timeout=TIMEOUT).text), range(40)))
                    if len(seen) >= 2:
                        break
            return seen

        before = pids_seen()
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 5
        after: set[int] = set()
        while time.monotonic() < deadline:
            after = pids_seen(80)
            if len(after) == 2 and victim not in after:
                break
            time.sleep(0.1)
        assert victim not in after
        assert len(after) == 2, after
        stop(server)


@pytest.fixture
def restore_framework_logger():
    """run() configures the framework's logger for this process: undo it afterwards."""
    logger = logging.getLogger("http_server")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    yield
    logger.setLevel(saved[0])
    logger.propagate = saved[1]
    logger.handlers[:] = saved[2]


def test_stop_from_another_thread_returns_from_run(restore_framework_logger):
    server = WebServer(port=0, route=[], access_log=False, log_level="warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while server.socket is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    started = time.monotonic()
    server.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 1.0


# ======================================================================= slow and idle clients


@pytest.fixture
def many_files():
    """Enough file descriptors for ~1100 client sockets here and in the server process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if wanted < 2300:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low for 1050 connections")
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield max(soft, wanted)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_idle_and_half_sent_clients_do_not_hold_worker_threads(tmp_path, many_files):
    idle: list[socket.socket] = []
    partial: list[socket.socket] = []
    with ServerProcess(tmp_path, threads=4, max_connections=4096,
                       keep_alive_timeout=60, header_timeout=60, access_log=False) as server:
        soft_limit = requests.get(server.url + "/rlimit", timeout=TIMEOUT).json()[0]
        assert soft_limit >= 2300, "the server process did not inherit the raised limit"
        try:
            request = b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n"
            for _ in range(10):  # 1000 keep-alive connections, each after one request
                batch = [socket.create_connection(("127.0.0.1", server.port), timeout=10)
                         for _ in range(100)]
                for sock in batch:
                    sock.sendall(request)
                for sock in batch:
                    assert read_response(sock).endswith(b"\r\n\r\nhello")
                idle.extend(batch)
            for _ in range(50):  # requests whose head never ends
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                sock.sendall(b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Slow: ")
                partial.append(sock)
            time.sleep(0.2)

            started = time.monotonic()
            resp = requests.get(server.url + "/hello", timeout=TIMEOUT)
            elapsed = time.monotonic() - started
            assert resp.status_code == 200
            assert elapsed < 1.0, f"a new client waited {elapsed:.2f}s"

            # the idle connections are still open and still served
            for sock in (idle[0], idle[500], idle[-1]):
                sock.sendall(request)
                assert read_response(sock).endswith(b"\r\n\r\nhello")

            # a refused request on a descriptor past 1023 (select() cannot watch those)
            bad = b"GET /hello HTTP/1.1\r\nHost: test\r\nBad : x\r\n\r\n"
            answer = raw_request(server.port, bad)
            assert answer.startswith(b"HTTP/1.1 400 ")
        finally:
            for sock in idle + partial:
                sock.close()
    assert "Traceback" not in server.stderr, server.stderr


def test_threads_serve_slow_views_concurrently():
    # Each view waits until all four run at once: served one at a time, the first would
    # wait alone until its barrier broke, and the answers would be 500s.
    together = threading.Barrier(4, timeout=TIMEOUT)

    def slow(request, response):
        together.wait()
        response.send("done", 200, "text/plain")

    server = WebServer(route=[Path(r"^/slow$", slow)], threads=4, access_log=False)
    with LiveServer(server) as live, ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(
            lambda _: requests.get(live.url + "/slow", timeout=2 * TIMEOUT).text, range(4)))
    assert answers == ["done"] * 4


# ======================================================================= bad settings


def test_webserver_bad_port_raises_config_error_naming_port():
    with pytest.raises(ConfigError) as caught:
        WebServer(port="abc")
    message = str(caught.value)
    assert "PORT" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("environ", "setting"),
    [
        ({"PORT": "abc"}, "PORT"),
        ({"PORT": "+80"}, "PORT"),
        ({"PORT": "\u0668\u0660"}, "PORT"),  # Arabic-Indic digits: int() would take them
        ({"PORT": "65536"}, "PORT"),
        ({"WORKERS": "0"}, "WORKERS"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"KEEP_ALIVE_TIMEOUT": "-1"}, "KEEP_ALIVE_TIMEOUT"),
        ({"PORT": "0x50"}, "PORT"),
        ({"PORT": "8_0"}, "PORT"),
        ({"PORT": "80\nWORKERS=9"}, "PORT"),  # the message stays one line
        ({"THREADS": "1e3"}, "THREADS"),
        ({"GRACEFUL_TIMEOUT": "nan"}, "GRACEFUL_TIMEOUT"),
        ({"ACCESS_LOG": "maybe"}, "ACCESS_LOG"),
        ({"BLOCKED_AFTER": "0"}, "BLOCKED_AFTER"),
    ],
    ids=["port-abc", "port-plus", "port-arabic-digits", "port-too-big", "workers-0",
         "log-format-xml", "keep-alive-negative", "port-hex", "port-underscore",
         "port-newline", "threads-exponent", "graceful-nan", "access-log-maybe",
         "blocked-after-0"],
)
def test_settings_from_env_rejects_bad_values(environ, setting):
    with pytest.raises(ConfigError) as caught:
        settings_from_env(environ)
    message = str(caught.value)
    assert setting in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("options", "setting"),
    [({"port": True}, "PORT"), ({"port": -1}, "PORT"), ({"threads": 0}, "THREADS"),
     ({"log_format": "xml"}, "LOG_FORMAT"), ({"no_such_setting": 1}, "no_such_setting")],
    ids=["port-bool", "port-negative", "threads-0", "log-format-xml", "unknown-keyword"],
)
def test_webserver_bad_keyword_raises_config_error(options, setting):
    with pytest.raises(ConfigError, match=setting):
        WebServer(**options)


def test_settings_from_env_reads_good_values():
    settings = settings_from_env({"PORT": "8081", "WORKERS": "2", "LOG_FORMAT": "JSON",
                                  "KEEP_ALIVE_TIMEOUT": "2.5"})
    assert settings["port"] == 8081
    assert settings["workers"] == 2
    assert settings["log_format"] == "json"
    assert settings["keep_alive_timeout"] == 2.5
    assert settings_from_env({})["port"] == 8080


def test_port_in_use_exits_nonzero_with_one_line_and_no_traceback(tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    script = write_script(tmp_path, (
        "import sys\n"
        f"sys.path.insert(0, {str(TEMPLATE_DIR)!r})\n"
        "from http_server import WebServer\n"
        f"WebServer(port={port}, route=[]).run()\n"
    ), name="busy.py")
    try:
        result = subprocess.run([sys.executable, str(script)], capture_output=True,
                                text=True, timeout=15)
    finally:
        holder.close()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(port) in lines[0]


# ======================================================================= logs

TEXT_LINE = re.compile(
    r'^127\.0\.0\.1 - - \[[^\]]+\] "(?P<method>[A-Z]+) (?P<target>\S+) HTTP/1\.[01]" '
    r'(?P<status>\d{3}) (?P<bytes>\d+) "(?P<agent>[^"\\]*(?:\\.[^"\\]*)*)" [0-9.]+ms$'
)


def stop(server: ServerProcess) -> None:
    server.signal(signal.SIGTERM)
    assert server.wait(10) == 0, server.stderr


def test_access_log_text_one_line_per_request(tmp_path):
    with ServerProcess(tmp_path) as server:
        session = requests.Session()
        assert session.get(server.url + "/hello", timeout=TIMEOUT).status_code == 200
        assert session.get(server.url + "/missing?x=1", timeout=TIMEOUT).status_code == 404
        assert session.post(server.url + "/hello", data=b"abc", timeout=TIMEOUT).ok
        stop(server)
    lines = server.stdout.splitlines()
    assert len(lines) == 3, server.stdout
    parsed = [TEXT_LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [(m["method"], m["target"], m["status"]) for m in parsed] == [
        ("GET", "/hello", "200"), ("GET", "/missing?x=1", "404"), ("POST", "/hello", "200")]
    assert parsed[0]["bytes"] == "5"
    assert parsed[0]["agent"].startswith("python-requests/")
    assert "GET /hello" not in server.stderr  # access lines go to stdout only


def test_access_log_json_one_object_per_line(tmp_path):
    with ServerProcess(tmp_path, log_format="json") as server:
        session = requests.Session()  # one connection: the lines come in request order
        session.get(server.url + "/hello?a=b", headers={"User-Agent": "agent/1.0"},
                    timeout=TIMEOUT)
        session.get(server.url + "/missing", timeout=TIMEOUT)
        stop(server)
    records = [json.loads(line) for line in server.stdout.splitlines()]
    assert len(records) == 2, server.stdout
    first, second = records
    assert first["method"] == "GET"
    assert first["target"] == "/hello?a=b"
    assert first["status"] == 200
    assert first["bytes"] == 5
    assert first["user_agent"] == "agent/1.0"
    assert first["remote"] == "127.0.0.1"
    assert isinstance(first["duration_ms"], (int, float))
    assert "time" in first
    assert (second["target"], second["status"]) == ("/missing", 404)
    for line in server.stderr.splitlines():  # the server's own messages are JSON too
        json.loads(line)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_access_log_escapes_client_supplied_bytes(tmp_path, log_format):
    with ServerProcess(tmp_path, log_format=log_format) as server:
        # obs-text, a quote and a backslash are legal in a header value and reach the view;
        # a backslash is legal in a query (a quote is not: RFC 3986, refused with 400)
        answer = raw_request(server.port, (
            b'GET /hello?q=x\\ HTTP/1.1\r\nHost: t\r\n'
            b'User-Agent: odd\xff\xfe "quoted" back\\slash\r\nConnection: close\r\n\r\n'
        ))
        assert answer.startswith(b"HTTP/1.1 200 ")
        # a terminal escape sequence in a header value must never be printed raw
        raw_request(server.port, (
            b"GET /hello HTTP/1.1\r\nHost: t\r\nUser-Agent: evil\x1b[2J\x1b]0;pwned\x07\r\n"
            b"Connection: close\r\n\r\n"
        ))
        stop(server)
    out = server.stdout_bytes
    assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f-\xff]", out), out
    lines = [line for line in out.decode("ascii").splitlines() if "/hello?q=" in line]
    assert len(lines) == 1, out
    if log_format == "text":
        match = TEXT_LINE.match(lines[0])
        assert match, lines[0]
        assert match["target"] == '/hello?q=x\\\\'
        assert match["agent"] == 'odd\\xff\\xfe \\"quoted\\" back\\\\slash'
    else:
        record = json.loads(lines[0])
        assert record["target"] == '/hello?q=x\\'
        assert record["user_agent"] == 'odd\xff\xfe "quoted" back\\slash'


def test_malformed_request_is_answered_with_400(tmp_path):
    with ServerProcess(tmp_path) as server:
        answer = raw_request(server.port, (
            b"GET /hello HTTP/1.1\r\nHost: t\r\nUser-Agent: evil\x1b[2J\r\n\r\n"))
        stop(server)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert "Traceback" not in server.stderr


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_access_log_records_rejected_requests(tmp_path, log_format):
    with ServerProcess(tmp_path, log_format=log_format) as server:
        raw_request(server.port, b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Bad: a\x1bb\r\n\r\n")
        raw_request(server.port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        stop(server)
    out = server.stdout_bytes
    assert b"\x1b" not in out
    lines = out.decode("ascii").splitlines()
    assert len(lines) == 2, out
    if log_format == "text":
        assert " 400 " in lines[0] and " 414 " in lines[1]
    else:
        assert [json.loads(line)["status"] for line in lines] == [400, 414]


def test_view_error_traceback_goes_to_stderr_not_stdout(tmp_path):
    with ServerProcess(tmp_path) as server:
        resp = requests.get(server.url + "/fail", timeout=TIMEOUT)
        assert resp.status_code == 500
        assert "exploded" not in resp.text
        stop(server)
    assert "Traceback" in server.stderr
    assert "RuntimeError: view exploded on purpose" in server.stderr
    assert "Traceback" not in server.stdout
    assert "exploded" not in server.stdout
    lines = server.stdout.splitlines()
    assert len(lines) == 1 and TEXT_LINE.match(lines[0])["status"] == "500", lines


def test_access_log_false_prints_no_access_lines(tmp_path):
    with ServerProcess(tmp_path, access_log=False) as server:
        for path in ("/hello", "/missing", "/fail"):
            requests.get(server.url + path, timeout=TIMEOUT)
        stop(server)
    assert server.stdout == ""
    assert "Traceback" in server.stderr  # errors are still reported
