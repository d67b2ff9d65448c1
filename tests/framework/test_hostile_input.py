"""Hostile input that fuzzing and other servers' parser corpora found, over real sockets.

Each test is one finding: a malformed request costs one short parse and one
answer (never a waiting thread), a request waiting in its socket is never
dropped by the deadline sweep, the target forms a server does not serve are
refused before routing, empty lines cannot hold a connection open, and every
error a client sees (a protocol error too) goes through the app's error handlers.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from http_server import Path, WebServer
from http_server import connection as connection_module
from http_server.parser import MAX_EMPTY_LINES
from http_server.request import Requests
from http_server.response import Response
from http_server.testing import LiveServer
from livehttp import BASE_SETTINGS
from support.rawhttp import RawConnection, request_bytes
from test_parser import parse

HELLO = b"hello world !"
MALFORMED = b"GET / HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\n\r\n"


class Gate:
    """A view that blocks its thread until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def view(self, request, response):
        self.entered.set()
        assert self.opened.wait(10), "the test never opened the gate"
        response.send("gate", 200, "text/plain")


def hello(request, response):
    response.send("hello world !", 200, "text/html")


def echo(request, response):
    response.send(request.body, 200, "application/octet-stream")


def start(**settings) -> tuple[LiveServer, WebServer, Gate]:
    gate = Gate()
    routes = [
        Path(r"^/$", hello),
        Path(r"^/hello$", hello),
        Path(r"^/admin$", hello),
        Path(r"^/echo$", echo),
        Path(r"^/gate$", gate.view),
    ]
    server = WebServer(route=routes, **{**BASE_SETTINGS, **settings})
    return LiveServer(server), server, gate


@pytest.fixture
def serve():
    """``serve(**settings)`` -> (live, server, gate), stopped after the test."""
    started = []

    def run(**settings):
        live, server, gate = start(**settings)
        live.__enter__()
        started.append((live, gate))
        return live, server, gate

    yield run
    for live, gate in started:
        gate.opened.set()
        live.__exit__(None, None, None)


@pytest.fixture
def client():
    connections = []

    def connect(live) -> RawConnection:
        connection = RawConnection(live.port)
        connections.append(connection)
        return connection

    yield connect
    for connection in connections:
        connection.close()


def server_side(server: WebServer, conn: RawConnection):
    """The server's Connection object for the client socket ``conn``."""
    name = conn.sock.getsockname()
    pool = server.pool  # None until the server's thread has started it
    for candidate in list(pool.connections.values()) if pool is not None else ():
        try:
            if candidate.sock.getpeername() == name:
                return candidate
        except OSError:
            continue
    return None


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


# ====================================================== a malformed request costs no thread


def test_a_refused_request_lingers_in_the_poller_not_on_a_thread(serve, client, monkeypatch):
    # One worker thread: if the refusal held it while reading the client out, the
    # fresh client below could only be answered after the lingering ended.
    monkeypatch.setattr(connection_module, "LINGER_SECONDS", 60.0)
    live, server, _ = serve(threads=1)
    flood = [client(live) for _ in range(5)]
    for conn in flood:
        conn.send(MALFORMED)
        assert conn.read_response().status == 400  # and then the client stays silent
    fresh = client(live)
    fresh.send(request_bytes("GET", "/hello"))
    assert fresh.read_response().body == HELLO
    for conn in flood:  # still lingering: the server reads them out, in the poller
        assert server_side(server, conn).lingering


def test_a_lingering_connection_is_closed_when_the_client_is_done(serve, client):
    live, _, _ = serve()
    conn = client(live)
    conn.send(MALFORMED + b"more bytes the client had in flight")
    assert conn.read_response().status == 400
    conn.sock.shutdown(socket.SHUT_WR)
    assert conn.wait_closed() == b""
    assert not conn.reset


def test_a_lingering_connection_is_closed_at_its_deadline(serve, client, monkeypatch):
    monkeypatch.setattr(connection_module, "LINGER_SECONDS", 0.05)
    live, server, _ = serve()
    conn = client(live)
    conn.send(MALFORMED)
    assert conn.read_response().status == 400
    assert conn.wait_closed() == b""  # closed by the sweep, with no 408 after the 400
    wait_until(lambda: not server.pool.connections)


def test_a_client_that_keeps_sending_after_a_refusal_is_cut_off(serve, client):
    live, _, _ = serve()
    conn = client(live)
    conn.send(MALFORMED)
    assert conn.read_response().status == 400
    sent = 0
    with pytest.raises(OSError):  # reset or broken pipe once the budget is read
        while sent < 64 * connection_module.LINGER_BYTES:
            conn.sock.sendall(b"x" * 65536)
            sent += 65536
    assert sent < 64 * connection_module.LINGER_BYTES


# ============================================ a request waiting in its socket is not idle


def test_the_sweep_keeps_a_connection_whose_request_waits_for_a_thread(serve, client):
    live, server, gate = serve(threads=1, keep_alive_timeout=0.05)
    keeper = client(live)
    keeper.send(request_bytes("GET", "/hello"))
    assert keeper.read_response().body == HELLO
    blocker = client(live)
    blocker.send(request_bytes("GET", "/gate"))
    assert gate.entered.wait(5)  # the only thread is busy now
    keeper.send(request_bytes("GET", "/hello"))  # a request no thread can read yet
    connection = server_side(server, keeper)
    assert connection is not None
    wait_until(lambda: connection.deadline < time.monotonic())
    server.pool.sweep()  # the deadline has passed, but the request is waiting
    gate.opened.set()
    assert blocker.read_response().body == b"gate"
    assert keeper.read_response().body == HELLO


def test_the_sweep_still_closes_an_idle_connection_past_its_deadline(serve, client):
    live, server, _ = serve(keep_alive_timeout=0.05)
    conn = client(live)
    conn.send(request_bytes("GET", "/hello"))
    assert conn.read_response().body == HELLO
    connection = server_side(server, conn)
    wait_until(lambda: connection.deadline < time.monotonic())
    server.pool.sweep()
    assert conn.wait_closed() == b""


def test_a_client_that_sends_and_never_reads_is_closed_past_its_send_deadline(
        serve, client, monkeypatch):
    # Pipelined requests for a large answer, never read: the answers fill the socket and
    # wait, and so does the client's further input. Waiting input must not keep the
    # connection from its deadline, as it does for an idle connection (test above).
    monkeypatch.setattr(connection_module, "SEND_TIMEOUT", 0.2)
    live, server, _ = serve()
    conn = client(live)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.send(request_bytes("GET", "/hello"))
    assert conn.read_response().body == HELLO
    connection = server_side(server, conn)
    assert connection is not None
    request = request_bytes("POST", "/echo", body=b"x" * 1_000_000)
    conn.sock.settimeout(0.5)
    try:
        for _ in range(40):  # until the server stops reading and the sends stall
            conn.sock.sendall(request)
    except (TimeoutError, OSError):
        pass
    # Housekeeping's own sweep closes it once its deadline has passed.
    wait_until(lambda: connection.sock.fileno() == -1)


def test_a_request_followed_by_the_end_of_input_is_answered_and_closed(serve, client):
    # The end of input arrives with the request: the server must read it now, since no
    # later event says it came.
    live, server, _ = serve(keep_alive_timeout=30)
    conn = client(live)
    conn.send(request_bytes("GET", "/hello"))
    conn.sock.shutdown(socket.SHUT_WR)
    assert conn.read_response().body == HELLO
    assert conn.wait_closed(timeout=5) == b""


def test_a_head_trickling_in_past_its_deadline_gets_408_when_read(serve, client):
    live, server, gate = serve(threads=1, header_timeout=0.05)
    conn = client(live)
    conn.send(b"GET /hello HTTP/1.1\r\n")
    connection = None

    def head_started():
        nonlocal connection
        connection = server_side(server, conn)
        return connection is not None and connection.head_started is not None

    wait_until(head_started)
    blocker = client(live)
    blocker.send(request_bytes("GET", "/gate"))
    assert gate.entered.wait(5)
    conn.send(b"Host: x\r\n")  # more bytes, after the head's time ran out
    wait_until(lambda: connection.head_started + 0.05 < time.monotonic())
    server.pool.sweep()  # kept: input is waiting...
    gate.opened.set()
    assert conn.read_response().status == 408  # ...and the thread that reads it refuses it
    assert blocker.read_response().body == b"gate"


# ================================================ target forms the server does not serve


def test_connect_is_refused_before_routing(serve, client):
    live, _, _ = serve()
    for target, status in ((b"example.com:443", 501), (b"/", 400)):
        conn = client(live)
        conn.send(b"CONNECT " + target + b" HTTP/1.1\r\nHost:\r\n\r\n")
        response = conn.read_response()
        assert response.status == status
        assert response.get("Connection") == "close"
        assert conn.wait_closed() == b""


def test_options_asterisk_is_answered_by_the_server(serve, client):
    live, _, _ = serve()
    conn = client(live)
    conn.send(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" + request_bytes("GET", "/hello"))
    response = conn.read_response()
    assert response.status == 200
    assert "GET" in response.get("Allow") and "OPTIONS" in response.get("Allow")
    assert response.get("Content-Length") == "0"
    assert conn.read_response().body == HELLO  # the connection stays usable


@pytest.mark.parametrize("request_line", [
    b"GET * HTTP/1.1",
    b"GET example.com:80 HTTP/1.1",
    b'GET /a"b HTTP/1.1',
    b"GET /a\\b HTTP/1.1",
    b"GET /a{b} HTTP/1.1",
    b"GET /a<b> HTTP/1.1",
    b"GET /%zz HTTP/1.1",
    b"GET http://user:pass@example.com/ HTTP/1.1",
    b"GET http://exa{mple.com/ HTTP/1.1",
    b"GET /admin%0a HTTP/1.1",
    b"GET /admin%0A HTTP/1.1",
    b"GET /admin%00 HTTP/1.1",
    b"GET /admin%7f HTTP/1.1",
])
def test_a_target_outside_the_grammar_gets_400(serve, client, request_line):
    live, _, _ = serve()
    conn = client(live)
    conn.send(request_line + b"\r\nHost: x\r\n\r\n")
    assert conn.read_response().status == 400
    assert conn.wait_closed() == b""


@pytest.mark.parametrize("target", [
    "/a?q=[1]&r={}|x\\y^`",  # characters browsers leave unencoded in a query
    "/a?q=%0a",  # a control character in the query is data, not part of the path
    "/a;b=c/d:e@f!$&'()*+,=~",
])
def test_targets_the_grammar_allows_are_routed(serve, client, target):
    live, _, _ = serve()
    conn = client(live)
    conn.send(request_bytes("GET", target))
    assert conn.read_response().status == 404  # routed: no such page


def test_a_path_with_a_control_character_matches_no_route_in_process():
    _, server, _ = start()
    for target, status in (("/admin", 200), ("/admin%0a", 404), ("/admin%0A", 404)):
        response = server.app.handle(Requests("GET", target), Response())
        assert response.status == status, target
    assert server.router.match("GET", "/admin\n") == (None, set())


# ======================================================================= empty lines


def test_a_few_empty_lines_before_a_request_are_ignored():
    outcome = parse(b"\r\n" * MAX_EMPTY_LINES + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert outcome.status is None and len(outcome.requests) == 1


def test_too_many_empty_lines_before_a_request_get_400():
    assert parse(b"\r\n" * (MAX_EMPTY_LINES + 1) + b"GET / HTTP/1.1\r\n").status == 400


def test_empty_lines_do_not_move_the_keep_alive_deadline(serve, client):
    live, server, _ = serve(keep_alive_timeout=30.0)
    conn = client(live)
    conn.send(request_bytes("GET", "/hello"))
    assert conn.read_response().body == HELLO
    connection = server_side(server, conn)
    wait_until(lambda: connection.parked)  # its thread has set the deadline and let it go
    deadline = connection.deadline
    conn.send(b"\r\n")
    wait_until(lambda: connection.parser.empty_lines == 1 and connection.parked)
    assert connection.deadline == deadline
    conn.send(request_bytes("GET", "/hello"))  # a real request still works, and
    assert conn.read_response().body == HELLO  # it does move the deadline
    wait_until(lambda: connection.parked)
    assert connection.deadline > deadline


# ============================================================== parser rules, every split


@pytest.mark.parametrize(("data", "status"), [
    # A bare LF in the head: 400 whether the head is seen whole or cut anywhere.
    (b"GET / HTTP/2.0\r\n\n\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\n\r\n\r\n", 400),
    # Whitespace after a chunk size is not BWS around an extension (RFC 9112 7.1).
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\na \r\n0123456789\r\n"
     b"0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0 \r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0;a=b \r\n\r\n", 400),
    # Two different Content-Types: the app and a front end could read different ones.
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
     b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 400),
    (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", 501),
    (b"CONNECT / HTTP/1.1\r\nHost:\r\n\r\n", 400),
])
def test_the_parser_refuses_the_same_way_for_every_split(data, status):
    assert parse(data).status == status  # parse() feeds it whole, byte by byte and split


@pytest.mark.parametrize("data", [
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\na ;x=y\r\n0123456789\r\n"
    b"0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
    b"GET / HTTP/1.1\r\nHost: x\r\nExpect:\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nExpect: ,\r\n\r\n",
])
def test_the_parser_accepts_what_the_rfcs_allow(data):
    outcome = parse(data)
    assert outcome.status is None and len(outcome.requests) == 1


def test_an_empty_expect_is_ignored(serve, client):
    live, _, _ = serve()
    conn = client(live)
    conn.send(request_bytes("POST", "/echo", headers={"Expect": ""}, body=b"hi"))
    assert conn.read_response().body == b"hi"


# ================================================================= HEAD and error answers


def test_an_error_answer_to_head_has_no_body(serve, client):
    live, _, _ = serve()
    conn = client(live)
    conn.send(b"HEAD / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n")
    response = conn.read_response("HEAD")
    assert response.status == 400
    assert int(response.get("Content-Length")) > 0  # what a GET would have been sent
    assert conn.wait_closed() == b""  # and not one byte of it


def test_an_error_answer_to_head_refused_before_its_head_ends_has_no_body(serve, client):
    live, _, _ = serve()
    conn = client(live)
    conn.send(b"HEAD / HTTP/1.1\r\nHost: x\n")  # a bare LF, refused before the head ends
    assert conn.read_response("HEAD").status == 400
    assert conn.wait_closed() == b""


def json_errors(server: WebServer) -> list:
    """Register a JSON handler for every error status; return the errors it saw."""
    seen = []

    def handler(request, response, error):
        seen.append((request.method, type(error).__name__))
        response.sendJson({"status": error.status, "error": error.message}, error.status)

    for status in (400, 404, 408, 413, 414, 417, 431, 501, 505):
        server.errorhandler(status)(handler)
    return seen


@pytest.mark.parametrize(("data", "status"), [
    (MALFORMED, 400),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413),
    (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", 417),
    (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
])
def test_protocol_errors_go_through_the_error_handlers(serve, client, data, status):
    live, server, _ = serve()
    seen = json_errors(server)
    conn = client(live)
    conn.send(data)
    response = conn.read_response()
    assert response.status == status
    assert response.get("Content-Type") == "application/json"
    assert json.loads(response.body)["status"] == status
    assert response.get("Connection") == "close"
    assert conn.wait_closed() == b""
    assert seen, "the error handler was not called"
    if data.startswith(b"GET"):
        assert seen[0][0] == "GET"  # the method, read before the request was refused


def test_a_408_goes_through_the_error_handler(serve, client):
    live, server, _ = serve(header_timeout=0.05)
    json_errors(server)
    conn = client(live)
    conn.send(b"GET / HTTP/1.1\r\n")  # and nothing more
    response = conn.read_response()
    assert response.status == 408
    assert json.loads(response.body) == {"status": 408, "error": "request not received in time"}


def test_an_error_handler_cannot_turn_a_protocol_error_into_a_success(serve, client):
    live, server, _ = serve()

    @server.errorhandler(400)
    def lenient(request, response, error):
        response.headers["Connection"] = "keep-alive"
        response.set_cookie("session", "abc")
        response.send("all good", 200, "text/plain")

    conn = client(live)
    conn.send(MALFORMED + request_bytes("GET", "/hello"))
    response = conn.read_response()
    assert response.status == 400 and response.body == b"all good"
    assert response.get("Connection") == "close"
    assert response.get("Set-Cookie") is None
    assert conn.wait_closed() == b""  # the pipelined request is never answered


def test_a_failing_error_handler_still_gets_the_default_answer(serve, client):
    live, server, _ = serve()

    @server.errorhandler(400)
    def broken(request, response, error):
        raise RuntimeError("handler bug")

    conn = client(live)
    conn.send(MALFORMED)
    response = conn.read_response()
    assert response.status == 400 and response.body.startswith(b"400 Bad Request")
    assert b"handler bug" not in response.body
