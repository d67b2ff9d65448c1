"""A Connection driven in-process: no thread, no port, no server loop.

The connection gets one end of a ``socketpair`` and the test holds the other:
the test writes what a client sends, calls ``serve()`` as a worker thread
would when the poller reports the socket ready, and reads what was answered.
Everything is the real code path of a connection, byte for byte; only the
accept loop and the poller are left out, so each step is deterministic.
"""

from __future__ import annotations

import socket

import pytest
from http_server import Path, WebServer
from http_server.connection import Connection

HELLO = b"hello world !"


def hello(request, response):
    response.send("hello world !", 200, "text/plain")


def big(request, response):
    response.send(b"x" * (4 << 20), 200, "application/octet-stream")


def echo(request, response):
    response.send(request.body, 200, "application/octet-stream")


class Pair:
    """A Connection on one end of a socket pair; the test is the client on the other."""

    def __init__(self, **settings) -> None:
        server = WebServer(route=[Path(r"^/hello$", hello), Path(r"^/big$", big),
                                  Path(r"^/echo$", echo)],
                           access_log=False, **settings)
        self.client, theirs = socket.socketpair()
        theirs.setblocking(False)
        self.closed: list[Connection] = []
        self.connection = Connection(theirs, "127.0.0.1", server.connection_context(),
                                     self.closed.append)
        self.client.settimeout(2)

    def send(self, data: bytes) -> bool:
        """The client sends ``data``; the connection serves it. True: it stays open."""
        self.client.sendall(data)
        return self.connection.serve()

    def received(self) -> bytes:
        """Everything answered so far (the connection never blocks, so it is all there)."""
        self.client.setblocking(False)
        data = b""
        try:
            while chunk := self.client.recv(1 << 20):
                data += chunk
        except BlockingIOError:
            pass
        finally:
            self.client.setblocking(True)
        return data

    def close(self) -> None:
        self.client.close()
        if not self.closed:
            self.connection.close()


@pytest.fixture
def pair():
    made = []

    def make(**settings) -> Pair:
        made.append(Pair(**settings))
        return made[-1]

    yield make
    for each in made:
        each.close()


def test_pipelined_requests_are_answered_in_order_in_one_serve(pair):
    conn = pair()
    keep = conn.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    assert keep
    answer = conn.received()
    assert answer.count(b"HTTP/1.1 200 OK") == 2
    assert answer.index(HELLO) < answer.index(b"\r\n\r\nabc")


def test_a_request_in_pieces_is_answered_when_whole(pair):
    conn = pair()
    assert conn.send(b"GET /hello HTTP/1.1\r\nHo")
    assert conn.received() == b""
    assert conn.connection.parser.in_request
    assert conn.send(b"st: x\r\n\r\n")
    assert conn.received().endswith(HELLO)


def test_connection_close_ends_the_connection(pair):
    conn = pair()
    assert not conn.send(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"Connection: close" in conn.received()
    assert conn.closed == [conn.connection]


def test_head_gets_the_headers_of_get_and_no_body(pair):
    conn = pair()
    conn.send(b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = conn.received()
    assert b"Content-Length: 13\r\n" in answer and answer.endswith(b"\r\n\r\n")


def test_expect_100_continue_is_answered_before_the_body(pair):
    conn = pair()
    assert conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     b"Expect: 100-continue\r\n\r\n")
    assert conn.received() == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.send(b"hi")
    assert conn.received().endswith(b"\r\n\r\nhi")


def test_a_malformed_request_is_refused_then_read_out_until_the_client_closes(pair):
    conn = pair()
    assert conn.send(b"GET /hello HTTP/1.1\r\nBad Header: x\r\n\r\n")  # parked, lingering
    assert conn.received().startswith(b"HTTP/1.1 400 ")
    assert conn.client.recv(1) == b""  # the server stopped sending...
    assert conn.send(b"more bytes the client had in flight")  # ...and still reads, dropping
    assert conn.closed == []
    conn.client.shutdown(socket.SHUT_WR)
    assert not conn.connection.serve()  # the client is done: now it closes
    assert conn.closed == [conn.connection]


def test_an_answer_the_socket_cannot_take_waits_in_the_queue(pair):
    conn = pair()
    assert conn.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.connection.wants_write  # the rest of /big is queued; /hello not read yet
    received = b""
    while conn.connection.wants_write:
        received += conn.client.recv(1 << 20)
        conn.connection.serve()  # the poller said writable
    received += conn.received()
    assert received.count(b"HTTP/1.1 200 OK") == 2  # then the pipelined one was answered
    assert received.endswith(HELLO)


def test_a_head_that_begins_gets_the_header_deadline_not_the_idle_one(pair):
    conn = pair(keep_alive_timeout=30.0, header_timeout=5.0)
    conn.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    idle_deadline = conn.connection.deadline  # keep-alive: 30 s from the answer
    conn.send(b"GET /hel")  # a head begins: its own clock, the header timeout
    assert conn.connection.deadline < idle_deadline


def test_the_client_closing_closes_the_connection(pair):
    conn = pair()
    conn.client.shutdown(socket.SHUT_WR)
    assert not conn.connection.serve()
    assert conn.closed == [conn.connection]


# --------------------------------------------------------------------------- held answers
# The pool holds the answers of one batch of events back (output.hold) and sends them at its
# end with serve(read=False) when the last read emptied the kernel's buffer (pool.py).


def test_a_held_answer_is_queued_not_sent_then_sent_without_a_read(pair):
    conn = pair()
    conn.connection.out.hold = True
    conn.client.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.connection.serve()
    conn.connection.out.hold = False
    assert conn.received() == b""  # held: nothing on the wire yet
    assert conn.connection.wants_write and conn.connection.drained
    conn.client.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")  # comes after the read
    assert conn.connection.serve(read=False)
    assert conn.received().count(HELLO) == 1  # the held answer; the new request not read
    assert conn.connection.serve()  # the poller reports it: read and answered
    assert conn.received().endswith(HELLO)


def test_a_serve_that_reads_nothing_does_not_count_as_drained(pair):
    """An answer still waiting for the client when an event comes: serve() returns before it
    reads, so whoever sends the held answers must read what the event announced."""
    conn = pair()
    conn.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")  # a short read: drained
    assert conn.received().endswith(HELLO) and conn.connection.drained
    conn.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.connection.wants_write  # most of /big waits for the client
    conn.client.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.connection.serve()  # the socket is still full: nothing read
    assert not conn.connection.drained
    received = b""
    while conn.connection.wants_write:
        received += conn.client.recv(1 << 20)
        conn.connection.serve(read=not conn.connection.drained)
    received += conn.received()
    assert received.endswith(HELLO) and received.count(b"HTTP/1.1 200 OK") == 2


def test_a_pipelined_request_behind_a_held_answer_is_answered_when_it_is_sent(pair):
    conn = pair()
    conn.connection.out.hold = True
    conn.client.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
    assert conn.connection.serve()
    conn.connection.out.hold = False
    assert conn.received() == b""
    assert conn.connection.serve(read=not conn.connection.drained)
    assert conn.received().count(HELLO) == 2
