"""Streamed answers on the wire: small items gathered into few chunks, and gathered
items sent while the producer waits for its next one.

The waiting cases are proved by the producer itself: it does not make its next
item until the client has read the previous ones, so items held back would
leave both waiting and the test would fail on its read timeout, not on a clock.
"""

from __future__ import annotations

import socket
import threading

import pytest
from http_server import Path, WebServer
from http_server import output as output_module
from http_server.testing import LiveServer
from livehttp import BASE_SETTINGS
from support.rawhttp import RawConnection, request_bytes

LINES = 20_000


class Handshake:
    """The producer waits, before each next item, until the client says it read one."""

    def __init__(self) -> None:
        self.read = threading.Semaphore(0)

    def events(self, request, response):
        def produce():
            for number in range(3):
                yield f"data: {number}\n\n"
                assert self.read.acquire(timeout=10), "the client never read the item"

        response.stream(produce(), 200, "text/event-stream")

    def burst(self, request, response):
        def produce():
            yield from ("a;", "b;", "c;")  # back to back: gathered, then sent while it waits
            assert self.read.acquire(timeout=10)
            yield "end;"

        response.stream(produce(), 200, "text/plain")


def many_lines(request, response):
    response.stream((f"line {number}\n" for number in range(LINES)), 200, "text/plain")


@pytest.fixture(scope="module")
def live():
    handshake = Handshake()
    server = WebServer(route=[Path(r"^/lines$", many_lines), Path(r"^/events$", handshake.events),
                              Path(r"^/burst$", handshake.burst)], **BASE_SETTINGS)
    with LiveServer(server) as running:
        running.handshake = handshake
        yield running


class ChunkReader:
    """Reads a chunked answer off a socket chunk by chunk, as the chunks arrive."""

    def __init__(self, port: int, target: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(request_bytes("GET", target))
        self.file = self.sock.makefile("rb")
        while self.file.readline() not in (b"\r\n", b""):  # the status line and headers
            pass

    def chunk(self) -> bytes:
        size = int(self.file.readline(), 16)
        data = self.file.read(size)
        assert self.file.read(2) == b"\r\n"
        return data

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_small_items_made_back_to_back_go_out_in_few_chunks(live, monkeypatch):
    # Housekeeping sends what is gathered once it is STREAM_DELAY old: on a loaded machine
    # the producer may take longer than that to fill 64 KiB. Lengthened here, only the
    # gathering decides how the items are cut into chunks.
    monkeypatch.setattr(output_module, "STREAM_DELAY", 60.0)
    conn = RawConnection(live.port)
    conn.send(request_bytes("GET", "/lines"))
    response = conn.read_response()
    conn.close()
    expected = "".join(f"line {number}\n" for number in range(LINES)).encode()
    assert response.body == expected
    # The first item alone, then a chunk per 64 KiB at most: not one per item.
    assert len(response.chunk_sizes) <= 3 + len(expected) // 65536


def test_each_item_reaches_a_client_that_waits_for_it(live):
    reader = ChunkReader(live.port, "/events")
    for number in range(3):
        assert reader.chunk() == f"data: {number}\n\n".encode()
        live.handshake.read.release()
    assert reader.chunk() == b""  # the last chunk
    reader.close()


def test_a_burst_is_sent_while_the_producer_waits(live):
    reader = ChunkReader(live.port, "/burst")
    received = b""
    while received != b"a;b;c;":  # in one chunk or more
        received += reader.chunk()
        assert b"a;b;c;".startswith(received)
    live.handshake.read.release()
    assert reader.chunk() == b"end;"
    reader.close()
