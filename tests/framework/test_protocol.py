"""HTTP/1.1 protocol rules, checked over real sockets against a live ``WebServer``.

Ordinary exchanges go through ``requests``; everything where framing matters
(keep-alive, pipelining, HEAD, 100-continue, chunked coding, malformed and
ambiguous requests, deadlines) goes out byte for byte on a raw socket and the
answers are parsed by ``RawConnection`` (see support/rawhttp.py), which also
tells when the server closed the connection. The malformed requests are the
parser corpus's invalid cases (corpus.py), replayed over a socket.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from email.utils import parsedate_to_datetime

import pytest
import requests
from corpus import INVALID
from http_server import config
from http_server.testing import LiveServer
from livehttp import INJECTED, SECRET, build_server
from support.rawhttp import RawConnection, ServerClosed, raw_request, request_bytes

TIMEOUT = 3
HELLO = b"hello world !"
NEXT = b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"  # pipelined behind a bad request
RFC1123 = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)


def assert_rfc1123_now(value: str | None) -> None:
    assert value is not None, "no Date header"
    assert RFC1123.fullmatch(value), f"Date is not in RFC 1123 format: {value!r}"
    assert abs(parsedate_to_datetime(value).timestamp() - time.time()) < 60


@pytest.fixture(scope="module")
def limited_server():
    """Small limits, so that every limit can be crossed with a few bytes."""
    server = build_server(max_body_size=1024, max_request_line=1024, max_header_size=4096,
                          max_header_count=20)
    with LiveServer(server) as live:
        yield live


# ==================================================================== ordinary exchanges


def test_hello_with_requests(live_server):
    response = requests.get(live_server.url + "/hello", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.content == HELLO
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Length"] == str(len(HELLO))
    assert_rfc1123_now(response.headers.get("Date"))


def test_json_view(live_server):
    response = requests.get(live_server.url + "/json", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"message": "héllo wörld ✓", "items": [1, 2, 3]}


def test_content_length_counts_bytes_of_a_non_ascii_body(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "/unicode"))
    response = conn.read_response()
    expected = "héllo wörld ✓ 日本".encode()
    assert int(response.get("Content-Length")) == len(expected) > len("héllo wörld ✓ 日本")
    assert response.body == expected
    conn.send(request_bytes("GET", "/hello"))  # the count was right: the next answer lines up
    assert conn.read_response().body == HELLO


def test_echo_body_with_requests(live_server):
    body = bytes(range(256)) * 64
    response = requests.post(live_server.url + "/echo", data=body, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.content == body


def test_view_setting_headers_and_cookies(live_server):
    response = requests.get(live_server.url + "/headers", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["X-Custom"] == "custom-value"
    set_cookie = response.headers["Set-Cookie"]
    assert set_cookie.startswith("session=abc123")
    assert "HttpOnly" in set_cookie and "Path=/" in set_cookie
    assert response.cookies["session"] == "abc123"


def test_redirect(live_server):
    response = requests.get(live_server.url + "/redirect", timeout=TIMEOUT, allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == "/hello"
    assert response.headers["Content-Length"] == "0"


@pytest.mark.parametrize(
    "method, target, status",
    [("GET", "/hello", 200), ("GET", "/missing", 404), ("POST", "/get-only", 405),
     ("GET", "/boom", 500), ("GET", "/stream", 200), ("HEAD", "/hello", 200)],
)
def test_date_header_on_every_answer(live_server, raw, method, target, status):
    conn = raw(live_server)
    conn.send(request_bytes(method, target))
    response = conn.read_response(method)
    assert response.status == status
    assert_rfc1123_now(response.get("Date"))


def test_date_header_on_protocol_errors(live_server, raw):
    conn = raw(live_server)
    conn.send(b"GET /hello HTTP/1.1\r\n\r\n")  # no Host
    [response] = conn.responses_until_close()
    assert response.status == 400
    assert_rfc1123_now(response.get("Date"))


# ============================================================== views that go wrong


def test_view_that_raises_gives_generic_500_and_server_keeps_serving(live_server):
    with requests.Session() as session:
        response = session.get(live_server.url + "/boom", timeout=TIMEOUT)
        assert response.status_code == 500
        assert "Traceback" not in response.text
        assert SECRET not in response.text
        assert "RuntimeError" not in response.text
        assert response.text.startswith("500 Internal Server Error")
        again = session.get(live_server.url + "/hello", timeout=TIMEOUT)
        assert again.status_code == 200 and again.content == HELLO


def test_500_keeps_the_connection_usable(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "/boom") + request_bytes("GET", "/hello"))
    assert conn.read_response().status == 500
    second = conn.read_response()
    assert second.status == 200 and second.body == HELLO


@pytest.mark.parametrize(
    "kind",
    ["crlf", "lf", "cr", "nul", "name", "cookie", "cookie-attribute", "cookie-plain",
     "content-type", "redirect"],
)
def test_view_injecting_control_characters_gives_500_and_nothing_reaches_the_wire(
        live_server, raw, kind):
    conn = raw(live_server)
    conn.send(request_bytes("GET", f"/bad-header?kind={kind}") + request_bytes("GET", "/hello"))
    response = conn.read_response()
    assert response.status == 500
    assert b"injected" not in response.head.lower()
    assert "x-bad" not in response.names
    assert response.get_all("Set-Cookie") == []
    assert b"should not be sent" not in response.body
    follow = conn.read_response()  # the framing is intact: the next answer is the right one
    assert follow.status == 200 and follow.body == HELLO
    assert INJECTED.encode() not in follow.head


def test_redirect_with_crlf_is_refused_over_requests(live_server):
    response = requests.get(live_server.url + "/bad-header?kind=redirect", timeout=TIMEOUT,
                            allow_redirects=False)
    assert response.status_code == 500
    assert "Location" not in response.headers
    assert "injected" not in response.cookies


def test_view_cannot_override_the_framing_headers(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "/framing") + request_bytes("GET", "/hello"))
    response = conn.read_response()
    assert response.body == b"framing is the server's"
    assert response.get_all("Content-Length") == [str(len(response.body))]
    assert response.get("Transfer-Encoding") is None
    assert_rfc1123_now(response.get("Date"))
    assert conn.read_response().body == HELLO


def test_view_asking_to_close_the_connection(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "/framing?close=1") + NEXT)
    responses = conn.responses_until_close()
    assert [r.body for r in responses] == [b"framing is the server's"]
    assert responses[0].get("Connection").lower() == "close"


def test_stream_that_fails_midway_is_cut_off_without_the_last_chunk(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "/stream?n=3&fail=1"))
    with pytest.raises(ServerClosed):  # closed before the terminating 0-chunk: visibly cut off
        conn.read_response()
    assert requests.get(live_server.url + "/hello", timeout=TIMEOUT).content == HELLO


# ======================================================================== methods


def test_405_with_allow_header_for_a_get_only_route(live_server):
    response = requests.post(live_server.url + "/get-only", data=b"x", timeout=TIMEOUT)
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed == {"GET", "HEAD"}


def test_head_is_allowed_on_a_get_route(live_server):
    response = requests.head(live_server.url + "/get-only", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(b"get only"))
    assert response.content == b""


# ==================================================================== keep-alive


def test_two_requests_on_one_connection(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "/hello"))
    first = conn.read_response()
    assert first.status == 200 and first.body == HELLO
    assert first.get("Connection") is None or first.get("Connection").lower() != "close"
    conn.send(request_bytes("POST", "/echo", body=b"second"))
    second = conn.read_response()
    assert second.status == 200 and second.body == b"second"


def test_three_pipelined_requests_are_answered_in_order(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "/slow?s=0.2")  # the slow one first: order must still hold
              + request_bytes("POST", "/echo", body=b"pipelined body")
              + request_bytes("GET", "/json"))
    first, second, third = (conn.read_response() for _ in range(3))
    assert first.body == b"slow done"
    assert second.body == b"pipelined body"
    assert third.get("Content-Type") == "application/json"
    assert conn.stays_quiet(0.1)


def test_pipelined_requests_sent_byte_by_byte(live_server, raw):
    conn = raw(live_server)
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = request_bytes("POST", "/echo", body=b"abc") + request_bytes("GET", "/hello")
    for i in range(0, len(data), 7):
        conn.send(data[i:i + 7])
    assert conn.read_response().body == b"abc"
    assert conn.read_response().body == HELLO


def test_http10_closes_by_default(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "/hello", "HTTP/1.0", host=None))
    response = conn.read_response()
    assert response.status == 200 and response.body == HELLO
    assert response.get("Connection").lower() == "close"
    assert conn.wait_closed() == b""


def test_http10_keeps_alive_when_asked(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "/hello", "HTTP/1.0", {"Connection": "keep-alive"}))
    response = conn.read_response()
    assert response.body == HELLO
    assert response.get("Connection").lower() == "keep-alive"
    conn.send(request_bytes("GET", "/json", "HTTP/1.0", {"Connection": "keep-alive"}))
    assert conn.read_response().status == 200


def test_http11_connection_close_closes_and_ignores_what_follows(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "/hello", headers={"Connection": "close"}) + NEXT)
    responses = conn.responses_until_close()
    assert len(responses) == 1
    assert responses[0].body == HELLO
    assert responses[0].get("Connection").lower() == "close"
    assert not conn.reset


def test_fifty_pipelined_requests_in_one_send(live_server, raw):
    conn = raw(live_server)
    conn.send(b"".join(request_bytes("POST", "/echo", body=b"request %d" % i) for i in range(50)))
    bodies = [conn.read_response().body for _ in range(50)]
    assert bodies == [b"request %d" % i for i in range(50)]
    assert conn.stays_quiet(0.1)


def test_large_pipelined_responses_to_a_slow_reader_keep_order_and_framing(live_server, raw):
    conn = raw(live_server, timeout=10)
    bodies = [bytes([65 + i]) * 400_000 for i in range(3)]
    data = b"".join(request_bytes("POST", "/echo", body=body) for body in bodies)
    data += request_bytes("GET", "/hello")
    sender = threading.Thread(target=conn.send, args=(data,), daemon=True)
    sender.start()  # the server may stop reading until we read: send from another thread
    time.sleep(0.2)  # let the server fill its side of the socket first
    for body in bodies:
        assert conn.read_response().body == body
    assert conn.read_response().body == HELLO
    sender.join(timeout=5)
    assert not sender.is_alive()


def test_request_followed_by_half_close_is_still_answered(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "/slow?s=0.1") + request_bytes("GET", "/hello"))
    conn.sock.shutdown(socket.SHUT_WR)  # like `nc -q`: nothing more to send
    responses = conn.responses_until_close()
    assert [r.body for r in responses] == [b"slow done", HELLO]


def test_slow_view_does_not_block_other_connections(live_server, raw):
    slow_conn, fast_conn = raw(live_server), raw(live_server)
    slow_conn.send(request_bytes("GET", "/slow?s=1.0"))
    time.sleep(0.05)
    started = time.monotonic()
    fast_conn.send(request_bytes("GET", "/hello"))
    assert fast_conn.read_response().body == HELLO
    assert time.monotonic() - started < 0.8
    assert slow_conn.read_response().body == b"slow done"


# ========================================================================== HEAD


def test_head_has_the_headers_of_get_and_no_body(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "/json"))
    get = conn.read_response("GET")
    conn.send(request_bytes("HEAD", "/json") + request_bytes("GET", "/hello"))
    head = conn.read_response("HEAD")
    after = conn.read_response("GET")  # parsed right after the HEAD: no body was sent

    def without_date(response):
        return sorted((k.lower(), v) for k, v in response.headers if k.lower() != "date")

    assert head.status == 200
    assert without_date(head) == without_date(get)
    assert head.get("Content-Length") == str(len(get.body))
    assert after.status == 200 and after.body == HELLO
    assert conn.stays_quiet(0.1)


def test_head_of_a_streamed_response_sends_no_body(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("HEAD", "/stream") + request_bytes("GET", "/hello"))
    head = conn.read_response("HEAD")
    assert head.status == 200
    after = conn.read_response("GET")
    assert after.body == HELLO


# =============================================================== Expect: 100-continue


def test_expect_100_continue_is_answered_before_the_body_is_sent(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("POST", "/echo", headers={
        "Content-Length": "11", "Expect": "100-continue"}))
    interim = conn.read_response(timeout=1.0)  # nothing of the body has been sent yet
    assert (interim.status, interim.reason) == (100, "Continue")
    assert interim.head.startswith(b"HTTP/1.1 100 Continue")
    conn.send(b"hello there")
    final = conn.read_response()
    assert final.status == 200 and final.body == b"hello there"


def test_expect_100_continue_with_a_chunked_body(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("POST", "/echo", headers={
        "Transfer-Encoding": "chunked", "Expect": "100-continue"}))
    assert conn.read_response(timeout=1.0).status == 100
    conn.send(b"5\r\nhello\r\n0\r\n\r\n")
    assert conn.read_response().body == b"hello"


def test_expect_100_continue_over_the_body_limit_gets_413_without_100(limited_server, raw):
    conn = raw(limited_server)
    conn.send(request_bytes("POST", "/echo", headers={
        "Content-Length": "100000", "Expect": "100-continue"}))
    responses = conn.responses_until_close()  # the body is never sent
    assert [r.status for r in responses] == [413]
    assert responses[0].get("Connection").lower() == "close"


def test_expect_100_continue_is_ignored_from_http10_clients(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("POST", "/echo", "HTTP/1.0", {
        "Content-Length": "5", "Expect": "100-continue"}))
    assert conn.stays_quiet(0.3)  # RFC 9110 10.1.1: no 100 for an HTTP/1.0 request
    conn.send(b"hello")
    response = conn.read_response()
    assert response.status == 200 and response.body == b"hello"


def test_unknown_expectation_gets_417(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("POST", "/echo", headers={
        "Content-Length": "5", "Expect": "something-else"}) + b"hello" + NEXT)
    responses = conn.responses_until_close()
    assert [r.status for r in responses] == [417]


# ============================================================ chunked request bodies


def test_chunked_body_with_extensions_and_trailers(live_server, raw):
    conn = raw(live_server)
    body = (b"5;name=value\r\nhello\r\n"
            b"1 ; quoted=\"a;b\\\"c\"\r\n \r\n"
            b"0006\r\nworld!\r\n"
            b"0;last\r\nX-Checksum: abc123\r\nX-Other: two words\r\n\r\n")
    conn.send(request_bytes("POST", "/inspect", headers={"Transfer-Encoding": "chunked"}, body=body)
              + NEXT)
    seen = json.loads(conn.read_response().body)
    assert seen["body"] == "hello world!"
    assert seen["trailers"] == [["x-checksum", "abc123"], ["x-other", "two words"]]
    assert conn.read_response().body == HELLO  # the trailer section ended where it should


def test_chunked_body_arriving_in_pieces(live_server, raw):
    conn = raw(live_server)
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = request_bytes("POST", "/echo", headers={"Transfer-Encoding": "chunked"},
                         body=b"a\r\n0123456789\r\n3\r\nabc\r\n0\r\n\r\n")
    for i in range(0, len(data), 3):
        conn.send(data[i:i + 3])
        time.sleep(0.002)
    assert conn.read_response().body == b"0123456789abc"


def test_chunked_body_with_requests(live_server):
    parts = (p for p in [b"first ", b"second ", b"third"])
    response = requests.post(live_server.url + "/echo", data=parts, timeout=TIMEOUT)
    assert response.content == b"first second third"


# ============================================================ streamed responses


def test_streamed_response_is_chunked_on_http11(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "/stream?n=3&gaps=1"))
    response = conn.read_response()  # the parser checks every size line and CRLF
    assert response.get("Transfer-Encoding") == "chunked"
    assert response.get("Content-Length") is None
    assert response.body == b"part-0;part-1;part-2;"
    assert response.chunk_sizes[-1] == 0 and 0 not in response.chunk_sizes[:-1]
    assert response.trailers == []
    assert conn.buffer == b""  # nothing after 0\r\n\r\n
    conn.send(request_bytes("GET", "/hello"))  # the connection is still in step
    assert conn.read_response().body == HELLO


def test_streamed_response_ends_with_the_last_chunk_on_the_wire(live_server):
    data = raw_request(live_server.port,
                       request_bytes("GET", "/stream?n=2", headers={"Connection": "close"}),
                       TIMEOUT)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"\r\nTransfer-Encoding: chunked\r\n" in head + b"\r\n"
    # Items made back to back are gathered (one chunk, or two if the gathering timed out).
    assert body in (b"e\r\npart-0;part-1;\r\n0\r\n\r\n",
                    b"7\r\npart-0;\r\n7\r\npart-1;\r\n0\r\n\r\n")


def test_streamed_response_is_close_delimited_on_http10(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "/stream?n=3", "HTTP/1.0", {"Connection": "keep-alive"})
              + NEXT)  # must not be answered: its answer would run into the body
    response = conn.read_response()  # no length, no coding: read until the server closes
    assert response.get("Transfer-Encoding") is None
    assert response.get("Content-Length") is None
    assert response.get("Connection").lower() == "close"
    assert response.body == b"part-0;part-1;part-2;"
    assert conn.eof


def test_streamed_response_with_requests(live_server):
    response = requests.get(live_server.url + "/stream?n=5", timeout=TIMEOUT)
    assert response.text == "part-0;part-1;part-2;part-3;part-4;"


# ======================================================================== targets


@pytest.mark.parametrize(
    "target, path, query",
    [("http://localhost/inspect?x=1", "/inspect", {"x": ["1"]}),
     ("HTTP://example.com:8080/inspect", "/inspect", {})],
)
def test_absolute_form_target_is_routed_like_origin_form(live_server, raw, target, path, query):
    conn = raw(live_server)
    conn.send(request_bytes("GET", target))
    response = conn.read_response()
    assert response.status == 200
    seen = json.loads(response.body)
    assert seen["path"] == path and seen["query"] == query


def test_absolute_form_without_a_path_is_the_root(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("GET", "http://localhost"))
    response = conn.read_response()
    assert response.status == 200 and response.body == HELLO


def test_leading_empty_lines_are_ignored(live_server, raw):
    conn = raw(live_server)
    conn.send(b"\r\n\r\n" + request_bytes("GET", "/hello")
              + b"\r\n" + request_bytes("GET", "/json"))
    assert conn.read_response().body == HELLO
    assert conn.read_response().get("Content-Type") == "application/json"


# ========================================================= malformed and ambiguous requests

H = b"Host: localhost\r\n"


def limits_a_server_takes(limits: dict) -> bool:
    """Whether ``WebServer`` accepts these limits (some corpus cases go below its minimums)."""
    try:
        for name, value in limits.items():
            config.check(name, value)
    except config.ConfigError:
        return False
    return True


# The parser corpus's invalid cases, over a real socket (corpus.INVALID: its cases are
# the parser's; here the server must answer each with that status and close).
LIVE_INVALID = [pytest.param(case.id, *case.values, id=case.id, marks=case.marks)
                for case in INVALID if limits_a_server_takes(case.values[2])]
# Cases holding complete requests before the malformed one: those are answered first.
ANSWERED_BEFORE_THE_ERROR = {"second-pipelined-request-malformed": 1}


@pytest.fixture(scope="module")
def server_with_limits():
    """``server_with_limits(limits)`` -> a live server with those limits, one for each set."""
    started: dict[tuple, LiveServer] = {}
    with contextlib.ExitStack() as stack:

        def server(limits: dict) -> LiveServer:
            key = tuple(sorted(limits.items()))
            if key not in started:
                started[key] = stack.enter_context(LiveServer(build_server(**limits)))
            return started[key]

        yield server


@pytest.mark.parametrize(("case_id", "data", "status", "limits"), LIVE_INVALID)
def test_malformed_request_gets_one_error_and_the_connection_closes(
        server_with_limits, raw, case_id, data, status, limits):
    conn = raw(server_with_limits(limits))
    # A head that never ends is sent alone: the answer must not wait for the end. Behind
    # any other case come two good requests, which must never be answered.
    unfinished = b"\r\n\r\n" not in data
    conn.send(data if unfinished else data + NEXT + NEXT)
    responses = conn.responses_until_close()
    answered = ANSWERED_BEFORE_THE_ERROR.get(case_id, 0)
    assert len(responses) == answered + 1, f"expected {answered + 1} answers, got {responses}"
    response = responses[-1]
    assert response.status == status, response.head
    assert response.get("Connection").lower() == "close"
    assert not conn.reset, "the connection was reset: the answer could have been lost"


@pytest.mark.parametrize(
    "coding, status",
    [("foo, chunked", 501),  # RFC 9112 6.1: a coding the server does not implement
     ("gzip, chunked", 501),
     ("foo", 400),  # RFC 9112 6.3: chunked not final, the length is unknowable: MUST 400
     ("chunked, gzip", 400)],
)
def test_unknown_transfer_coding(limited_server, raw, coding, status):
    conn = raw(limited_server)
    conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: %s\r\n\r\n" % coding.encode()
              + b"0\r\n\r\n" + NEXT)
    responses = conn.responses_until_close()
    assert [r.status for r in responses] == [status]


def test_body_over_the_limit_is_refused_before_it_is_sent(limited_server, raw):
    conn = raw(limited_server)
    conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5000\r\n\r\n")  # head only
    started = time.monotonic()
    response = conn.read_response(timeout=1.5)
    assert response.status == 413
    assert time.monotonic() - started < 1.0
    assert conn.wait_closed() == b""


def test_413_reaches_a_client_that_keeps_sending_its_body(limited_server, raw):
    """The server reads on a little before closing, so the client gets the 413, not a reset."""
    conn = raw(limited_server)
    body = b"z" * 300_000  # far over the limit, sent without waiting for an answer

    def send_all():
        try:
            conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(body)
                      + body)
        except OSError:
            pass  # the server stopped reading: expected

    sender = threading.Thread(target=send_all, daemon=True)
    sender.start()
    response = conn.read_response()
    assert response.status == 413
    assert not conn.reset
    sender.join(timeout=5)


def test_body_at_the_limit_is_accepted(limited_server, raw):
    conn = raw(limited_server)
    body = b"y" * 1024
    conn.send(request_bytes("POST", "/echo", body=body))
    assert conn.read_response().body == body
    conn.send(request_bytes("POST", "/echo", headers={"Transfer-Encoding": "chunked"},
                            body=b"400\r\n" + body + b"\r\n0\r\n\r\n"))
    assert conn.read_response().body == body


def test_many_headers_within_the_limits_are_fine(limited_server, raw):
    conn = raw(limited_server)
    conn.send(request_bytes("GET", "/hello", headers=[(f"X-{i}", "v") for i in range(18)]))
    assert conn.read_response().status == 200


# ==================================================================== request smuggling

SMUGGLED = b"GET /inspect?smuggled=1 HTTP/1.1\r\nHost: localhost\r\n\r\n"

SMUGGLING = {
    "cl-te": (b"POST /ignore HTTP/1.1\r\n" + H
              + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % (5 + len(SMUGGLED))
              + b"0\r\n\r\n" + SMUGGLED),
    "te-cl": (b"POST /ignore HTTP/1.1\r\n" + H
              + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
              + b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"),
    "te-te-obfuscated": (b"POST /ignore HTTP/1.1\r\n" + H
                         + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n"
                         + b"0\r\n\r\n" + SMUGGLED),
    "te-space-before-colon": (b"POST /ignore HTTP/1.1\r\n" + H
                              + b"Content-Length: %d\r\n" % (5 + len(SMUGGLED))
                              + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + SMUGGLED),
    "te-xchunked": (b"POST /ignore HTTP/1.1\r\n" + H
                    + b"Content-Length: %d\r\n" % (5 + len(SMUGGLED))
                    + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + SMUGGLED),
    "te-vertical-tab": (b"POST /ignore HTTP/1.1\r\n" + H
                        + b"Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n" + SMUGGLED),
    "te-chunked-then-identity": (b"POST /ignore HTTP/1.1\r\n" + H
                                 + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"
                                 + SMUGGLED),
    "cl-cl-different": (b"POST /ignore HTTP/1.1\r\n" + H
                        + b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED)
                        + SMUGGLED),
    "te-folded": (b"POST /ignore HTTP/1.1\r\n" + H
                  + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + SMUGGLED),
    "te-in-http10-with-cl": (b"POST /ignore HTTP/1.0\r\n" + H
                             + b"Content-Length: %d\r\n" % (5 + len(SMUGGLED))
                             + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED),
}


@pytest.mark.parametrize("name", list(SMUGGLING))
def test_request_smuggling_attempt_never_yields_two_responses(live_server, raw, name):
    conn = raw(live_server)
    conn.send(SMUGGLING[name])
    responses = conn.responses_until_close()
    assert len(responses) == 1, f"two answers: the smuggled request was served: {responses}"
    assert 400 <= responses[0].status < 600
    assert b"smuggled" not in responses[0].body


def test_unread_body_is_not_parsed_as_the_next_request(live_server, raw):
    conn = raw(live_server)
    conn.send(request_bytes("POST", "/ignore", body=SMUGGLED) + request_bytes("GET", "/hello"))
    first, second = conn.read_response(), conn.read_response()
    assert first.body == b"ignored the body"
    assert second.body == HELLO
    assert conn.stays_quiet(0.2)  # and nothing else was answered


def test_unread_chunked_body_is_not_parsed_as_the_next_request(live_server, raw):
    conn = raw(live_server)
    body = b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"
    conn.send(request_bytes("POST", "/ignore", headers={"Transfer-Encoding": "chunked"}, body=body)
              + request_bytes("GET", "/hello"))
    first, second = conn.read_response(), conn.read_response()
    assert first.body == b"ignored the body"
    assert second.body == HELLO
    assert conn.stays_quiet(0.2)


# ====================================================================== deadlines


@pytest.fixture
def short_timeouts(server_factory):
    return server_factory(header_timeout=0.5, keep_alive_timeout=0.5)


def trickle_header_lines(conn, every: float = 0.15, give_up: float = 3.0) -> float:
    """Send a header line every ``every`` s until the server answers or closes: the time taken."""
    started = time.monotonic()
    while time.monotonic() - started < give_up:
        try:
            conn.send(b"X-Slow: x\r\n")
        except OSError:
            break
        if not conn.stays_quiet(every):
            break
    return time.monotonic() - started


def test_half_sent_head_gets_408_after_the_header_timeout(short_timeouts, raw):
    conn = raw(short_timeouts)
    conn.send(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n")
    started = time.monotonic()
    responses = conn.responses_until_close(timeout=3)
    elapsed = time.monotonic() - started
    assert [r.status for r in responses] in ([408], [])
    assert 0.4 <= elapsed < 2.0, elapsed
    if responses:
        assert responses[0].get("Connection").lower() == "close"
        assert_rfc1123_now(responses[0].get("Date"))


def test_trickled_head_does_not_extend_the_header_deadline(short_timeouts, raw):
    conn = raw(short_timeouts)
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.send(b"GET /hello HTTP/1.1\r\n")
    elapsed = trickle_header_lines(conn)
    assert elapsed < 2.0, f"the server kept a trickling client for {elapsed:.1f} s"
    assert conn.buffer.startswith(b"HTTP/1.1 408 ") or conn.buffer == b""


def test_trickled_head_after_a_pipelined_request_does_not_extend_the_deadline(
        short_timeouts, raw):
    conn = raw(short_timeouts)
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.send(request_bytes("GET", "/hello") + b"GET /hello HTTP/1.1\r\n")
    assert conn.read_response().body == HELLO
    elapsed = trickle_header_lines(conn)
    assert elapsed < 2.0, f"the server kept a trickling client for {elapsed:.1f} s"


def test_body_that_stops_arriving_gets_408(short_timeouts, raw):
    conn = raw(short_timeouts)
    conn.send(request_bytes("POST", "/echo", headers={"Content-Length": "10"}) + b"abc")
    started = time.monotonic()
    responses = conn.responses_until_close(timeout=3)
    assert [r.status for r in responses] in ([408], [])
    assert time.monotonic() - started < 2.0


def test_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(short_timeouts, raw):
    conn = raw(short_timeouts)
    conn.send(request_bytes("GET", "/hello"))
    assert conn.read_response().body == HELLO
    started = time.monotonic()
    assert conn.wait_closed(timeout=3) == b""  # closed quietly, no 408 for an idle client
    assert 0.4 <= time.monotonic() - started < 2.0


def test_keep_alive_connection_survives_a_short_pause(short_timeouts, raw):
    conn = raw(short_timeouts)
    conn.send(request_bytes("GET", "/hello"))
    assert conn.read_response().body == HELLO
    time.sleep(0.15)
    conn.send(request_bytes("GET", "/hello"))
    assert conn.read_response().body == HELLO


def test_stray_crlf_between_requests_does_not_start_the_header_clock(server_factory, raw):
    live = server_factory(header_timeout=0.5, keep_alive_timeout=5.0)
    conn = raw(live)
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.send(request_bytes("POST", "/echo", body=b"abc"))
    assert conn.read_response().body == b"abc"
    conn.send(b"\r\n")  # an old client's extra CRLF after a body: to be ignored (RFC 9112 2.2)
    time.sleep(0.8)  # idle, well within keep_alive_timeout
    conn.send(b"GET /hello HTTP/1.1\r\n")  # the next head, in two packets
    time.sleep(0.3)
    conn.send(b"Host: localhost\r\n\r\n")
    response = conn.read_response()
    assert response.status == 200 and response.body == HELLO


# ================================================================ connection limit


def test_connection_over_max_connections_gets_503(server_factory, raw):
    live = server_factory(max_connections=2)
    first, second = raw(live), raw(live)
    for conn in (first, second):  # both accepted and held open by the server
        conn.send(request_bytes("GET", "/hello"))
        assert conn.read_response().body == HELLO
    third = raw(live)
    responses = third.responses_until_close()
    assert [r.status for r in responses] == [503]
    assert responses[0].version == "HTTP/1.1"
    assert responses[0].get("Retry-After") is not None
    assert responses[0].get("Connection").lower() == "close"
    assert_rfc1123_now(responses[0].get("Date"))
    # The first two are unaffected.
    first.send(request_bytes("GET", "/hello"))
    assert first.read_response().body == HELLO
    # Once one goes away, a new connection is served again.
    second.close()
    deadline = time.monotonic() + 2.0
    while True:
        fourth = raw(live)
        fourth.send(request_bytes("GET", "/hello"))
        try:
            response = fourth.read_response()
        except (ServerClosed, OSError):  # refused: the server had not yet noticed the close
            response = None
        if response is not None and response.status == 200:
            break
        assert time.monotonic() < deadline, "a freed slot was never reused"
        time.sleep(0.05)


def test_503_over_max_connections_reaches_a_client_that_sent_its_request_at_once(
        server_factory, raw):
    live = server_factory(max_connections=1)
    holder = raw(live)
    holder.send(request_bytes("GET", "/hello"))
    assert holder.read_response().body == HELLO
    statuses = []
    for _ in range(5):
        conn = RawConnection(live.port)
        try:
            conn.send(request_bytes("GET", "/hello"))  # like every real client does
            try:
                statuses.append(conn.read_response().status)
            except (ServerClosed, OSError) as error:
                statuses.append(type(error).__name__ + (" (reset)" if conn.reset else ""))
        finally:
            conn.close()
    assert statuses == [503] * 5
