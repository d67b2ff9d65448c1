"""Range requests (http_server.ranges): parsing, coalescing, multipart/byteranges, and a plain
view sending its own bytes or file with send_with_ranges."""

from __future__ import annotations

import io

import pytest
from http_server import WebServer
from http_server.errors import HTTPError
from http_server.headers import Headers
from http_server.ranges import (
    MAX_RANGES,
    UNSATISFIABLE,
    coalesce,
    multipart_body,
    parse_range,
    send_with_ranges,
)
from http_server.request import Requests
from http_server.response import Response
from http_server.testing import TestClient

# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", [(0, 99)]),
        ("bytes=0-0", [(0, 0)]),
        ("bytes=100-", [(100, 999)]),
        ("bytes=-100", [(900, 999)]),
        ("bytes=-5000", [(0, 999)]),
        ("bytes=500-5000", [(500, 999)]),
        ("bytes=999-999", [(999, 999)]),
        ("Bytes=1-2", [(1, 2)]),
        ("bytes=0-1, 5-6", [(0, 1), (5, 6)]),
        ("bytes=0-1,,5-6,", [(0, 1), (5, 6)]),
        ("bytes=0-1, 2000-3000", [(0, 1)]),  # the unsatisfiable one is dropped
        ("bytes=0-99999999999999999999999", [(0, 999)]),
        (" bytes=1-2 ", [(1, 2)]),
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(
    "header",
    ["bytes=1000-", "bytes=1000-2000", "bytes=-0", "bytes=5000-5001, 6000-",
     "bytes=99999999999999999999999-"],
)
def test_parse_range_unsatisfiable(header):
    assert parse_range(header, 1000) == UNSATISFIABLE


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes",
        "bytes=",
        "bytes=,",
        "bytes=a-b",
        "bytes=5-1",  # last before first: invalid, ignored
        "bytes=+1-2",
        "bytes=1_0-20",
        "bytes=-+5",
        "bytes=1--2",
        "bytes=1-2-3",
        "bytes=\u0661-\u0662",  # Arabic-Indic digits: int() would take them
        "bytes=1 -2",
        "bytes = 1-2",
        "items=0-1",
        "bytes=0-1;x",
        "=0-1",
        "bytes 0-1",
        "b\u00fftes=0-1",
        "bytes=" + ",".join(["0-0"] * (MAX_RANGES + 1)),
        "bytes=0-" + "1" * 2000,
    ],
)
def test_parse_range_ignored(header):
    assert parse_range(header, 1000) is None


def test_parse_range_empty_file_is_ignored():
    assert parse_range("bytes=0-1", 0) is None
    assert parse_range("bytes=-1", 0) is None


def test_coalesce():
    assert coalesce([(0, 1)]) == [(0, 1)]
    assert coalesce([(5, 6), (0, 1)]) == [(0, 1), (5, 6)]
    assert coalesce([(0, 4), (5, 9)]) == [(0, 9)]  # adjacent
    assert coalesce([(0, 10), (2, 3), (8, 20)]) == [(0, 20)]
    assert coalesce([(0, 100)] * 5) == [(0, 100)]


def test_multipart_body(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(bytes(range(100)))
    with open(f, "rb", buffering=0) as fileobj:
        body = multipart_body(fileobj, [(0, 1), (98, 99)], 100, "application/octet-stream", "BND")
    assert body == (
        b"--BND\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-1/100\r\n\r\n"
        b"\x00\x01\r\n"
        b"--BND\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 98-99/100\r\n\r\n"
        b"\x62\x63\r\n--BND--\r\n"
    )


def test_multipart_body_file_shorter_than_ranges(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    with open(f, "rb", buffering=0) as fileobj, pytest.raises(OSError):
        multipart_body(fileobj, [(0, 0), (2, 9)], 10, "text/plain", "B")


# --------------------------------------------------------------------------- from a plain view

DATA = bytes(range(100))
DATA_ETAG = '"data-1"'


@pytest.fixture
def client(tmp_path):
    path = tmp_path / "report.bin"
    path.write_bytes(DATA)
    server = WebServer(route=[], access_log=False)

    @server.route(r"^/data$", methods=["GET", "POST"])
    def data(request, response):
        send_with_ranges(request, response, DATA, "application/octet-stream", etag=DATA_ETAG,
                         multipart_limit=50)

    @server.route(r"^/file$")
    def report(request, response):
        send_with_ranges(request, response, open(path, "rb"), "application/octet-stream")

    return TestClient(server)


def test_a_view_sends_its_bytes_whole_without_range(client):
    r = client.get("/data")
    assert r.status_code == 200 and r.content == DATA
    assert r.headers["Accept-Ranges"] == "bytes"
    assert "Content-Range" not in r.headers


def test_a_view_sends_one_range_of_its_bytes(client):
    r = client.get("/data", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == DATA[10:20]
    assert r.headers["Content-Range"] == "bytes 10-19/100"
    assert r.headers["Content-Length"] == "10"
    assert client.get("/data", headers={"Range": "bytes=-5"}).content == DATA[95:]


def test_a_view_sends_several_ranges_as_multipart(client):
    r = client.get("/data", headers={"Range": "bytes=0-1, 98-99"})
    assert r.status_code == 206
    ctype = r.headers["Content-Type"]
    assert ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.split("boundary=", 1)[1]
    assert r.content == multipart_body(io.BytesIO(DATA), [(0, 1), (98, 99)], 100,
                                       "application/octet-stream", boundary)


def test_ranges_over_the_multipart_limit_give_the_whole_body(client):
    r = client.get("/data", headers={"Range": "bytes=0-29, 40-79"})  # 70 bytes > 50
    assert r.status_code == 200 and r.content == DATA


def test_an_unsatisfiable_range_is_416_with_the_size(client):
    r = client.get("/data", headers={"Range": "bytes=200-"})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == "bytes */100"


def test_if_range_compares_the_views_entity_tag(client):
    r = client.get("/data", headers={"Range": "bytes=0-9", "If-Range": DATA_ETAG})
    assert r.status_code == 206 and r.content == DATA[:10]
    r = client.get("/data", headers={"Range": "bytes=0-9", "If-Range": '"data-0"'})
    assert r.status_code == 200 and r.content == DATA


def test_range_is_ignored_on_other_methods_than_get_and_head(client):
    r = client.post("/data", headers={"Range": "bytes=0-9"})
    assert r.status_code == 200 and r.content == DATA
    head = client.head("/data", headers={"Range": "bytes=0-9"})
    assert head.status_code == 206 and head.headers["Content-Length"] == "10"


def test_a_view_sends_ranges_of_a_file(client):
    assert client.get("/file").content == DATA
    r = client.get("/file", headers={"Range": "bytes=50-59"})
    assert r.status_code == 206 and r.content == DATA[50:60]
    assert r.headers["Content-Range"] == "bytes 50-59/100"


@pytest.mark.parametrize("spec", ["bytes=0-1,5-6", "bytes=500-"])
def test_a_file_not_handed_to_sendfile_is_closed(tmp_path, spec):
    path = tmp_path / "f.bin"
    path.write_bytes(DATA)
    file = open(path, "rb")
    request = Requests("GET", "/f", "HTTP/1.1", Headers({"Range": spec}))
    response = Response()
    try:
        send_with_ranges(request, response, file, "application/octet-stream")
    except HTTPError as error:
        assert error.status == 416
    assert file.closed and response.file is None


def test_a_file_handed_to_sendfile_stays_open_for_the_writer(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(DATA)
    file = open(path, "rb")
    response = Response()
    send_with_ranges(Requests("GET", "/f"), response, file, "application/octet-stream")
    assert not file.closed and response.file.file is file and response.file.count == 100
    response.file.close()

