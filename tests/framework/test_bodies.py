"""Request bodies over real sockets: spooled to disk past BODY_SPOOL_SIZE, refused on the
head before they are read, cut when they trickle below MIN_UPLOAD_RATE; and the life
cycle around requests: startup and shutdown hooks, ``server.state``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from http_server import HTTPError, Path, WebServer
from http_server import connection as connection_module
from http_server.testing import LiveServer
from livehttp import BASE_SETTINGS
from support.paths import TEMPLATE_DIR
from support.ports import free_port
from support.processes import kill_group, write_script
from support.rawhttp import RawConnection, request_bytes

TIMEOUT = 10
SPOOL = 64 * 1024


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def started(live) -> None:
    """Wait until the server's thread has made its poller (its descriptors count too)."""
    assert requests.get(live.url + "/digest", timeout=TIMEOUT).status_code == 200


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class Seen:
    """What the views saw of each body."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []

    def digest(self, request, response):
        stream = request.stream
        in_file = hasattr(stream, "fileno") and not hasattr(stream, "getvalue")
        digest = hashlib.sha256()
        size = 0
        while chunk := stream.read(65536):
            digest.update(chunk)
            size += len(chunk)
        self.bodies.append({"size": size, "on_disk": in_file})
        response.sendJson({"size": size, "sha256": digest.hexdigest(), "on_disk": in_file})

    def echo(self, request, response):
        response.send(request.body, 200, "application/octet-stream")


@pytest.fixture
def serve():
    started = []

    def run(**settings):
        seen = Seen()
        server = WebServer(route=[Path(r"^/digest$", seen.digest), Path(r"^/echo$", seen.echo)],
                           **{**BASE_SETTINGS, "body_spool_size": SPOOL, **settings})
        live = LiveServer(server)
        live.__enter__()
        started.append(live)
        return live, server, seen

    yield run
    for live in started:
        live.__exit__(None, None, None)


# ======================================================================= spooling


def test_a_large_body_is_spooled_to_disk_and_read_through_the_stream(serve):
    live, _, seen = serve()
    body = os.urandom(3 * 1024 * 1024)
    answer = requests.post(live.url + "/digest", data=body, timeout=TIMEOUT).json()
    assert answer == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                      "on_disk": True}


def test_a_small_body_stays_in_memory(serve):
    live, _, _ = serve()
    answer = requests.post(live.url + "/digest", data=b"x" * 1000, timeout=TIMEOUT).json()
    assert answer["size"] == 1000 and not answer["on_disk"]


def test_a_chunked_body_is_spooled_too(serve):
    live, _, _ = serve()
    pieces = [os.urandom(100_000) for _ in range(10)]
    answer = requests.post(live.url + "/digest", data=iter(pieces), timeout=TIMEOUT).json()
    assert answer["size"] == 1_000_000 and answer["on_disk"]
    assert answer["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_request_body_still_gives_the_bytes_of_a_spooled_body(serve):
    live, _, _ = serve()
    body = os.urandom(200_000)
    assert requests.post(live.url + "/echo", data=body, timeout=TIMEOUT).content == body


def test_no_temporary_file_outlives_its_request(serve):
    live, _, _ = serve()
    started(live)
    before = open_fds()
    for _ in range(5):
        requests.post(live.url + "/digest", data=os.urandom(300_000), timeout=TIMEOUT)
    wait_until(lambda: open_fds() <= before)


def test_an_upload_cut_short_leaves_no_temporary_file(serve):
    live, server, _ = serve()
    started(live)
    before = open_fds()
    conn = RawConnection(live.port)
    conn.send(b"POST /digest HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
              + b"y" * 500_000)  # half the body: spooled to a temporary file
    wait_until(lambda: any(c.parser.body_received for c in server.pool.connections.values()))
    assert open_fds() > before  # the socket and the temporary file
    conn.close()  # the client goes away in the middle of its upload
    wait_until(lambda: open_fds() <= before)


# ================================================================ checks on the head


def test_a_header_check_refuses_before_the_body_is_read(serve):
    live, server, seen = serve()

    @server.on_headers
    def needs_token(request):
        if request.get_header("Authorization") != "Bearer good":
            raise HTTPError(401, "a valid token is required")

    conn = RawConnection(live.port)
    conn.send(b"POST /digest HTTP/1.1\r\nHost: x\r\nContent-Length: 9000000\r\n\r\n")
    response = conn.read_response()  # answered with no body byte sent
    assert response.status == 401 and b"a valid token is required" in response.body
    assert response.get("Connection") == "close"
    assert seen.bodies == []
    good = requests.post(live.url + "/digest", data=b"abc",
                         headers={"Authorization": "Bearer good"}, timeout=TIMEOUT)
    assert good.json()["size"] == 3


def test_a_refused_head_gets_the_refusal_instead_of_100_continue(serve):
    live, server, _ = serve()

    @server.on_headers
    def small_only(request):
        if int(request.get_header("Content-Length", "0")) > 1000:
            raise HTTPError(413, "uploads are 1000 bytes at most here")

    conn = RawConnection(live.port)
    conn.send(request_bytes("POST", "/digest", headers={
        "Content-Length": "5000", "Expect": "100-continue"}))
    response = conn.read_response()
    assert response.status == 413  # not 100 Continue
    conn2 = RawConnection(live.port)
    conn2.send(request_bytes("POST", "/digest", headers={
        "Content-Length": "3", "Expect": "100-continue"}))
    assert conn2.read_response().status == 100
    conn2.send(b"abc")
    assert conn2.read_response().status == 200


def test_a_header_check_sees_the_app_state_and_a_passing_check_keeps_the_connection(serve):
    live, server, _ = serve()
    server.state.allowed = {"/digest"}
    seen_state = []

    @server.on_headers
    def path_allowed(request):
        seen_state.append(request.app_state is server.state)
        if request.path not in request.app_state.allowed:
            raise HTTPError(403)

    conn = RawConnection(live.port)
    conn.send(request_bytes("POST", "/digest", body=b"a") + request_bytes("POST", "/digest",
                                                                          body=b"bb"))
    assert conn.read_response().status == 200
    assert conn.read_response().status == 200
    assert seen_state == [True, True]
    assert requests.post(live.url + "/echo", data=b"x", timeout=TIMEOUT).status_code == 403


# ==================================================================== upload rate


def test_a_body_trickling_below_the_minimum_rate_gets_408(serve):
    live, _, _ = serve(header_timeout=0.3, min_upload_rate=1000)
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=TIMEOUT)
    sock.sendall(b"POST /digest HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    started = time.monotonic()
    answer = b""
    sock.settimeout(0.05)
    while time.monotonic() - started < 30:  # a byte every 50 ms: 20 bytes/s
        try:
            sock.sendall(b"z")
        except OSError:
            break
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        if not data:
            break
        answer += data
    sock.close()
    took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    print(f"\n20 B/s body against MIN_UPLOAD_RATE=1000, HEADER_TIMEOUT=0.3: cut after {took:.2f} s")


def test_a_body_at_a_good_rate_is_not_cut(serve):
    live, _, _ = serve(header_timeout=0.5, min_upload_rate=1000)
    pieces = (b"q" * 20_000 for _ in range(10))  # as fast as the socket takes it
    answer = requests.post(live.url + "/digest", data=pieces, timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.json()["size"] == 200_000


# ===================================================================== life cycle

LIFECYCLE = '''\
import json, os, sys
sys.path.insert(0, {template!r})
from http_server import Path, WebServer

options = json.loads(sys.argv[1])
fail = options.pop("fail_startup", False)
server = WebServer(route=[Path(r"^/state$", lambda q, r: r.sendJson(q.app_state.events))],
                   **options)
server.state.events = []


@server.on_startup
def first(server):
    server.state.events.append("first")


@server.on_startup
def second(server):
    if fail:
        raise RuntimeError("the database is not there")
    server.state.events.append("second")


@server.on_shutdown
def closing(server):
    # One write, whole: two workers write to one pipe, and print() makes a write per
    # piece where the output is unbuffered (PYTHONUNBUFFERED), which interleaves them.
    os.write(1, f"shutdown {{os.getpid()}}\\n".encode())


server.run()
'''


def start_lifecycle(tmp_path, **options) -> subprocess.Popen:
    script = write_script(tmp_path, LIFECYCLE.format(template=str(TEMPLATE_DIR)))
    settings = json.dumps({"host": "127.0.0.1", "access_log": False, **options})
    # A session of its own: a test that fails still stops the workers too (kill_group).
    return subprocess.Popen([sys.executable, str(script), settings],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def test_startup_hooks_run_in_order_before_serving_and_shutdown_hooks_after(tmp_path):
    port = free_port()
    process = start_lifecycle(tmp_path, port=port)
    try:
        wait_until(lambda: _answers(port))
        assert requests.get(f"http://127.0.0.1:{port}/state", timeout=TIMEOUT).json() == [
            "first", "second"]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        kill_group(process)
    assert process.returncode == 0
    assert out.count("shutdown") == 1


def test_workers_each_run_the_hooks(tmp_path):
    port = free_port()
    process = start_lifecycle(tmp_path, port=port, workers=2)
    try:
        wait_until(lambda: _answers(port))
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        kill_group(process)
    assert process.returncode == 0
    closed = {line.split()[1] for line in out.splitlines() if line.startswith("shutdown")}
    assert len(closed) == 2, (out, err)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_startup_hook_stops_with_one_line_and_exit_1(tmp_path, workers):
    process = start_lifecycle(tmp_path, port=free_port(), workers=workers, fail_startup=True,
                              log_level="error")
    out, err = process.communicate(timeout=30)
    assert process.returncode == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and all("Traceback" not in line for line in lines), err
    assert any("startup hook second failed: the database is not there" in line
               for line in lines), err
    assert len({line for line in lines}) == 1 or workers == 2  # one line (per worker)


def _answers(port: int) -> bool:
    """Whether the server answers. Once its socket is bound, a request waits in the queue
    until it serves (its startup hooks run first), so it gets the whole TIMEOUT: a loaded
    machine may take longer than a second to start; a refused one is tried again."""
    try:
        requests.get(f"http://127.0.0.1:{port}/state", timeout=TIMEOUT)
        return True
    except requests.ConnectionError:
        return False


# =================================================================== download rate


def big_answer(request, response):
    response.send(b"d" * (64 << 20), 200, "application/octet-stream")


@pytest.mark.parametrize(("rate", "cut"), [(10_000_000, True), (0, False)])
def test_a_client_reading_below_the_minimum_rate_is_cut_off(monkeypatch, rate, cut):
    # The client reads 64 KiB every 0.1 s: always some progress within SEND_TIMEOUT
    # (2 s here), but 0.6 MB/s, below a minimum of 10 MB/s.
    monkeypatch.setattr(connection_module, "SEND_TIMEOUT", 2.0)
    server = WebServer(route=[Path(r"^/big$", big_answer)],
                       **{**BASE_SETTINGS, "min_download_rate": rate})
    with LiveServer(server) as live:
        sock = socket.create_connection(("127.0.0.1", live.port), timeout=TIMEOUT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        received, closed = 0, False
        started = time.monotonic()
        while time.monotonic() - started < (20 if cut else 5):  # bounded either way
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                data = b""
            if not data:
                closed = True
                break
            received += len(data)
            time.sleep(0.1)  # the slow reader's pace, not a wait for the server
        sock.close()
    assert closed is cut
    assert received < 64 << 20  # cut before the end (or, without the rule, still reading)
