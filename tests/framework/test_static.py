"""Static files over real sockets: safety, types, caching, ranges, HEAD, methods.

The traversal forms go out on raw sockets, byte for byte: ``requests`` (like
any browser) would normalise ``..`` and some encodings before sending them.
"""

from __future__ import annotations

import gc
import hashlib
import os
import socket
import struct
import time
import warnings
from email.utils import formatdate

import pytest
import requests
from http_server import WebServer
from http_server.testing import LiveServer

SECRET = b"TOP-SECRET-do-not-serve-7f3a9c"
TEXT = b"hello static world\n"
HELLO_MTIME = 1_600_000_000  # Sun, 13 Sep 2020 12:26:40 GMT
BINARY = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4: more than one socket buffer


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("static")
    root = base / "media"
    other = base / "other"
    (root / "sub" / "deeper").mkdir(parents=True)
    other.mkdir()
    (base / "secret.txt").write_bytes(SECRET)
    (root / "hello.txt").write_bytes(TEXT)
    (root / "page.html").write_bytes(b"<!doctype html><p>hi</p>\n")
    (root / "style.css").write_bytes(b"p{}\n")
    (root / "app.js").write_bytes(b"1;\n")
    (root / "data.json").write_bytes(b"{}\n")
    (root / "pixel.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "blob.unknownext").write_bytes(b"\x00\x01")
    (root / "noext").write_bytes(b"x")
    (root / "empty.txt").write_bytes(b"")
    (root / "big.bin").write_bytes(BINARY)
    (root / "a b.txt").write_bytes(b"space\n")
    (root / "café.txt").write_bytes(b"cafe\n")
    (root / "%2e%2e").mkdir()  # a real folder with that literal name is harmless
    (root / "%2e%2e" / "literal.txt").write_bytes(b"literal\n")
    (root / ".env").write_bytes(SECRET)
    (root / "sub" / "inner.txt").write_bytes(b"inner\n")
    (root / "sub" / "deeper" / "x.txt").write_bytes(b"x\n")
    (root / "escape.txt").symlink_to(base / "secret.txt")  # symlink out: refused
    (root / "escape_dir").symlink_to(base)  # directory symlink out: refused
    (root / "etc").symlink_to("/etc")
    (root / "inside.txt").symlink_to(root / "sub" / "inner.txt")  # symlink in: served
    (other / "other.txt").write_bytes(b"other mount\n")
    os.mkfifo(root / "fifo")
    # A modification time well in the past, so date comparisons never race the clock.
    os.utime(root / "hello.txt", (HELLO_MTIME, HELLO_MTIME))
    return base


@pytest.fixture(scope="module")
def live(tree):
    server = WebServer(host="127.0.0.1", port=0, route=[], access_log=False)
    server.fileServer("/media/", str(tree / "media"))
    server.fileServer("/other", str(tree / "other"))  # no trailing slash: the same thing
    with LiveServer(server) as live:
        yield live


@pytest.fixture(scope="module")
def live_options(tree):
    """One mount with the settings on: listing and Cache-Control."""
    server = WebServer(host="127.0.0.1", port=0, route=[], access_log=False)
    server.fileServer("/files/", str(tree / "media"), cache_control="public, max-age=60",
                      listing=True)
    with LiveServer(server) as live:
        yield live


def port_of(live) -> int:
    return int(live.url.rsplit(":", 1)[1])


def raw(live, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port_of(live)), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def parse(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and everything after the header section."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def get_raw(live, target: str, method: str = "GET", headers: dict | None = None):
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return parse(raw(live, data))


# --------------------------------------------------------------------------- serving


def test_get_file(live):
    r = requests.get(live.url + "/media/hello.txt")
    assert r.status_code == 200
    assert r.content == TEXT
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["Content-Length"] == str(len(TEXT))
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Accept-Ranges"] == "bytes"
    etag = r.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
    mtime = os.stat(live_root(live) / "hello.txt").st_mtime
    assert r.headers["Last-Modified"] == formatdate(int(mtime), usegmt=True)
    assert "Cache-Control" not in r.headers  # not set unless configured


def live_root(live):
    return live._static_root


@pytest.fixture(autouse=True)
def _remember_root(request, tree):
    for name in ("live", "live_options"):
        if name in request.fixturenames:
            request.getfixturevalue(name)._static_root = tree / "media"


@pytest.mark.parametrize(
    ("name", "ctype"),
    [
        ("page.html", "text/html; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("data.json", "application/json; charset=utf-8"),
        ("pixel.png", "image/png"),
        ("big.bin", "application/octet-stream"),
        ("blob.unknownext", "application/octet-stream"),
        ("noext", "application/octet-stream"),
    ],
)
def test_content_type(live, name, ctype):
    r = requests.get(f"{live.url}/media/{name}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == ctype
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_binary_file_larger_than_socket_buffers(live):
    r = requests.get(live.url + "/media/big.bin")
    assert r.status_code == 200
    assert len(r.content) == len(BINARY)
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(BINARY).digest()


def test_empty_file(live):
    r = requests.get(live.url + "/media/empty.txt")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Content-Length"] == "0"


def test_encoded_names_and_query_string_ignored(live):
    assert requests.get(live.url + "/media/a%20b.txt").content == b"space\n"
    assert requests.get(live.url + "/media/caf%C3%A9.txt").content == b"cafe\n"
    r = requests.get(live.url + "/media/hello.txt?v=3&x=/../../secret.txt")
    assert r.status_code == 200 and r.content == TEXT
    # %25 decodes once: a literal folder named "%2e%2e" is a plain name.
    assert requests.get(live.url + "/media/%252e%252e/literal.txt").content == b"literal\n"


def test_subfolders_and_symlink_inside(live):
    assert requests.get(live.url + "/media/sub/inner.txt").content == b"inner\n"
    assert requests.get(live.url + "/media/sub/deeper/x.txt").content == b"x\n"
    assert requests.get(live.url + "/media/inside.txt").content == b"inner\n"
    # Out through a symlink and back in: the real path is inside, so it is served.
    assert requests.get(live.url + "/media/escape_dir/media/hello.txt").content == TEXT


def test_several_mounts_and_prefix_at_start_only(live):
    assert requests.get(live.url + "/other/other.txt").content == b"other mount\n"
    assert requests.get(live.url + "/media/hello.txt").content == TEXT
    assert requests.get(live.url + "/other/hello.txt").status_code == 404
    assert requests.get(live.url + "/media/other.txt").status_code == 404
    for path in ["/x/media/hello.txt", "/mediax/hello.txt", "/hello.txt", "/MEDIA/hello.txt"]:
        assert requests.get(live.url + path).status_code == 404, path


def test_missing_file(live):
    r = requests.get(live.url + "/media/nope.txt")
    assert r.status_code == 404
    assert "ETag" not in r.headers


def test_not_regular_files_are_not_served(live):
    # A FIFO would block a naive open(); a file name with a trailing slash is no folder.
    status, _, _ = get_raw(live, "/media/fifo")
    assert status == 404
    assert get_raw(live, "/media/hello.txt/")[0] == 404


# --------------------------------------------------------------------------- safety

TRAVERSALS = [
    "/media/../secret.txt",
    "/media/sub/../../secret.txt",
    "/media/./../secret.txt",
    "/media/%2e%2e/secret.txt",
    "/media/%2E%2E/secret.txt",
    "/media/.%2e/secret.txt",
    "/media/%2e./secret.txt",
    "/media/sub/%2e%2e/%2e%2e/secret.txt",
    "/media/..%2fsecret.txt",
    "/media/%2e%2e%2fsecret.txt",
    "/media/sub%2f..%2f..%2fsecret.txt",
    "/media%2f..%2fsecret.txt",
    "/media/..%5csecret.txt",
    "/media/%2e%2e%5csecret.txt",
    "/media/..\\secret.txt",
    "/media/sub\\..\\..\\secret.txt",
    "/media/%252e%252e/secret.txt",
    "/media/%252e%252e%252fsecret.txt",
    "/media/..%252fsecret.txt",
    "/media/%c0%ae%c0%ae/secret.txt",  # overlong UTF-8 for "."
    "/media/..;/secret.txt",
    "/media/sub/..;/..;/secret.txt",
    "/media/.;/..;/secret.txt",
    "/media/hello.txt%00",
    "/media/hello.txt%00.png",
    "/media/%00../secret.txt",
    "/media/sub/%00/../../secret.txt",
    "/media//etc/hostname",
    "/media//etc/passwd",
    "/media/%2fetc%2fpasswd",
    "/media/%2Fetc/passwd",
    "/media/escape.txt",
    "/media/escape_dir/secret.txt",
    "/media/escape_dir/other/other.txt",
    "/media/etc/hostname",
    "/media/etc/passwd",
    "/media/.env",
    "/media/%2eenv",
    "http://127.0.0.1/media/../secret.txt",
    "http://127.0.0.1/media/%2e%2e/secret.txt",
]


def _forbidden_bytes():
    found = [SECRET, b"root:x:0:0"]
    try:
        with open("/etc/hostname", "rb") as f:
            name = f.read().strip()
        if len(name) >= 4:
            found.append(name)
    except OSError:
        pass
    return found


@pytest.mark.parametrize("target", TRAVERSALS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_traversal_is_refused(live, target, method):
    status, headers, body = get_raw(live, target, method)
    assert status in (400, 404), (target, status)
    for secret in _forbidden_bytes():
        assert secret not in body
    assert "etag" not in headers and "last-modified" not in headers


def test_absolute_path_of_the_secret_after_prefix(live, tree):
    status, _, body = get_raw(live, "/media/" + str(tree / "secret.txt"))
    assert status in (400, 404)
    assert SECRET not in body


def test_symlink_escape_really_points_at_a_readable_file(tree):
    # The refusal above is meaningful: the symlinks resolve to readable files.
    assert (tree / "media" / "escape.txt").read_bytes() == SECRET
    assert (tree / "media" / "escape_dir" / "secret.txt").read_bytes() == SECRET


def test_directories_are_not_listed_by_default(live):
    for path in ["/media/", "/media/sub/", "/media/sub", "/other/"]:
        assert requests.get(live.url + path, allow_redirects=False).status_code == 404, path


# --------------------------------------------------------------------------- settings


def test_cache_control_setting(live_options):
    r = requests.get(live_options.url + "/files/hello.txt")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "public, max-age=60"
    r304 = requests.get(live_options.url + "/files/hello.txt",
                        headers={"If-None-Match": r.headers["ETag"]})
    assert r304.status_code == 304
    assert r304.headers["Cache-Control"] == "public, max-age=60"


def test_listing_setting(live_options):
    r = requests.get(live_options.url + "/files/")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert 'href="hello.txt"' in r.text
    assert 'href="sub/"' in r.text
    assert 'href="a%20b.txt"' in r.text
    assert ".env" not in r.text  # hidden names stay hidden
    assert "escape.txt" not in r.text and "escape_dir" not in r.text  # symlinks out
    assert 'href="../"' not in r.text  # nothing above the mount
    sub = requests.get(live_options.url + "/files/sub/")
    assert sub.status_code == 200 and 'href="inner.txt"' in sub.text and 'href="../"' in sub.text
    # A folder without its slash is redirected, as nginx does.
    moved = requests.get(live_options.url + "/files/sub?x=1", allow_redirects=False)
    assert moved.status_code == 301
    assert moved.headers["Location"] == "/files/sub/?x=1"
    # Listing changes nothing for the traversal forms.
    for target in ["/files/../", "/files/%2e%2e/", "/files//etc/", "/files/escape_dir/"]:
        status, _, body = get_raw(live_options, target)
        assert status in (400, 404), target
        assert b"secret.txt" not in body


# --------------------------------------------------------------------------- caching


def _etag(live, path="/media/hello.txt"):
    return requests.get(live.url + path).headers["ETag"]


def test_if_none_match_gives_304_without_body(live):
    etag = _etag(live)
    for value in [etag, "W/" + etag, f'"nope", {etag}', f'"a",W/{etag} , "b"', "*"]:
        status, headers, body = get_raw(live, "/media/hello.txt", headers={"If-None-Match": value})
        assert status == 304, value
        assert body == b""
        assert headers["etag"] == etag
        assert "last-modified" in headers
        assert "content-length" not in headers or headers["content-length"] == "0"


def test_if_none_match_other_etag_gives_200(live):
    for value in ['"nope"', 'W/"nope", "other"', "garbage"]:
        r = requests.get(live.url + "/media/hello.txt", headers={"If-None-Match": value})
        assert r.status_code == 200 and r.content == TEXT, value


def test_if_modified_since(live):
    r = requests.get(live.url + "/media/hello.txt")
    last_modified = r.headers["Last-Modified"]
    r304 = requests.get(live.url + "/media/hello.txt", headers={"If-Modified-Since": last_modified})
    assert r304.status_code == 304 and r304.content == b""
    assert last_modified == "Sun, 13 Sep 2020 12:26:40 GMT"
    later = formatdate(HELLO_MTIME + 10, usegmt=True)
    assert requests.get(live.url + "/media/hello.txt",
                        headers={"If-Modified-Since": later}).status_code == 304
    earlier = formatdate(HELLO_MTIME - 1, usegmt=True)
    r200 = requests.get(live.url + "/media/hello.txt", headers={"If-Modified-Since": earlier})
    assert r200.status_code == 200 and r200.content == TEXT
    bad = requests.get(live.url + "/media/hello.txt", headers={"If-Modified-Since": "yesterday"})
    assert bad.status_code == 200
    # A date after the server's clock is invalid (RFC 9110 section 13.1.3): ignored.
    future = requests.get(live.url + "/media/hello.txt",
                          headers={"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"})
    assert future.status_code == 200
    # If-None-Match takes precedence over If-Modified-Since.
    both = requests.get(live.url + "/media/hello.txt",
                        headers={"If-None-Match": '"nope"', "If-Modified-Since": last_modified})
    assert both.status_code == 200


def test_if_match_and_if_unmodified_since(live):
    etag = _etag(live)
    assert requests.get(live.url + "/media/hello.txt",
                        headers={"If-Match": etag}).status_code == 200
    assert requests.get(live.url + "/media/hello.txt",
                        headers={"If-Match": '"nope"'}).status_code == 412
    assert requests.get(live.url + "/media/hello.txt",
                        headers={"If-Unmodified-Since": formatdate(0, usegmt=True)}
                        ).status_code == 412


def test_etag_changes_when_file_changes(live, tree):
    path = tree / "media" / "changing.txt"
    path.write_bytes(b"one")
    first = requests.get(live.url + "/media/changing.txt")
    path.write_bytes(b"two!")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    second = requests.get(live.url + "/media/changing.txt",
                          headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200 and second.content == b"two!"
    assert second.headers["ETag"] != first.headers["ETag"]


def test_304_then_next_request_on_same_connection(live):
    """No stray body after a 304: the next keep-alive answer parses cleanly."""
    etag = _etag(live)
    req = (
        f"GET /media/hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n"
        "HEAD /media/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /media/hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\n\r\n"
        "GET /media/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    ).encode()
    data = raw(live, req)
    first, rest = data.split(b"\r\n\r\n", 1)
    assert first.startswith(b"HTTP/1.1 304")
    assert rest.startswith(b"HTTP/1.1 200")  # the HEAD: headers only
    second_head, rest = rest.split(b"\r\n\r\n", 1)
    assert b"Content-Length: %d" % len(TEXT) in second_head
    assert rest.startswith(b"HTTP/1.1 206")
    third_head, rest = rest.split(b"\r\n\r\n", 1)
    assert rest[:5] == TEXT[:5]
    rest = rest[5:]
    assert rest.startswith(b"HTTP/1.1 200")
    assert rest.endswith(b"\r\n\r\n" + TEXT)


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("bytes=0-4", 0, 4),
        ("bytes=6-", 6, len(TEXT) - 1),
        ("bytes=-7", len(TEXT) - 7, len(TEXT) - 1),
        ("bytes=3-3", 3, 3),
        ("bytes=5-100000", 5, len(TEXT) - 1),
        ("bytes=-100000", 0, len(TEXT) - 1),
    ],
)
def test_single_range(live, spec, first, last):
    r = requests.get(live.url + "/media/hello.txt", headers={"Range": spec})
    assert r.status_code == 206
    assert r.content == TEXT[first:last + 1]
    assert r.headers["Content-Range"] == f"bytes {first}-{last}/{len(TEXT)}"
    assert r.headers["Content-Length"] == str(last - first + 1)
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "ETag" in r.headers


def test_range_in_a_large_file(live):
    start, end = 300_000, 700_123
    r = requests.get(live.url + "/media/big.bin", headers={"Range": f"bytes={start}-{end}"})
    assert r.status_code == 206
    assert r.content == BINARY[start:end + 1]
    assert r.headers["Content-Range"] == f"bytes {start}-{end}/{len(BINARY)}"


@pytest.mark.parametrize("spec", ["bytes=1000-", "bytes=19-30", "bytes=-0", "bytes=500-600, 700-"])
def test_unsatisfiable_range(live, spec):
    r = requests.get(live.url + "/media/hello.txt", headers={"Range": spec})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{len(TEXT)}"
    assert TEXT not in r.content


@pytest.mark.parametrize(
    "spec",
    ["bytes=5-1", "bytes=abc", "bytes=+1-2", "bytes=1_0-20", "bytes= 1 - 2", "items=0-1",
     "bytes=\u0661-\u0662".encode().decode("latin-1"), "bytes", "bytes=0-1-2", "bytes=--1"],
)
def test_malformed_range_is_ignored(live, spec):
    status, headers, body = get_raw(live, "/media/hello.txt", headers={"Range": spec})
    assert status == 200, spec
    assert body == TEXT
    assert "content-range" not in headers


def test_multiple_ranges_multipart(live):
    r = requests.get(live.url + "/media/hello.txt", headers={"Range": "bytes=0-1, 6-11"})
    assert r.status_code == 206
    ctype = r.headers["Content-Type"]
    assert ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.split("boundary=", 1)[1].encode()
    parts = r.content.split(b"--" + boundary)
    assert parts[0] == b"" and parts[-1] == b"--\r\n"
    bodies = []
    for part in parts[1:-1]:
        head, _, data = part.partition(b"\r\n\r\n")
        assert b"Content-Type: text/plain; charset=utf-8" in head
        bodies.append((head, data[:-2]))
    assert b"Content-Range: bytes 0-1/%d" % len(TEXT) in bodies[0][0]
    assert bodies[0][1] == TEXT[0:2]
    assert b"Content-Range: bytes 6-11/%d" % len(TEXT) in bodies[1][0]
    assert bodies[1][1] == TEXT[6:12]
    assert r.headers["Content-Length"] == str(len(r.content))


def test_overlapping_ranges_are_coalesced(live):
    r = requests.get(live.url + "/media/hello.txt", headers={"Range": "bytes=0-4, 2-8, 9-9"})
    assert r.status_code == 206
    assert r.headers["Content-Range"] == f"bytes 0-9/{len(TEXT)}"
    assert r.content == TEXT[:10]


def test_many_large_ranges_give_the_whole_file(live):
    # Two ranges adding up to more than the multipart limit (1 MiB): the whole
    # file is sent (RFC 9110 lets a server ignore Range), nothing read into memory.
    r = requests.get(live.url + "/media/big.bin", headers={"Range": "bytes=0-0, 2-"})
    assert r.status_code == 200
    assert len(r.content) == len(BINARY)
    too_many = ",".join(f"{i}-{i}" for i in range(0, 200, 2))
    r = requests.get(live.url + "/media/big.bin", headers={"Range": "bytes=" + too_many})
    assert r.status_code == 200 and len(r.content) == len(BINARY)


def test_if_range(live):
    r = requests.get(live.url + "/media/hello.txt")
    etag, last_modified = r.headers["ETag"], r.headers["Last-Modified"]
    ok = requests.get(live.url + "/media/hello.txt",
                      headers={"Range": "bytes=0-4", "If-Range": etag})
    assert ok.status_code == 206 and ok.content == TEXT[:5]
    ok = requests.get(live.url + "/media/hello.txt",
                      headers={"Range": "bytes=0-4", "If-Range": last_modified})
    assert ok.status_code == 206
    for stale in ['"other"', "W/" + etag, formatdate(0, usegmt=True), "junk"]:
        full = requests.get(live.url + "/media/hello.txt",
                            headers={"Range": "bytes=0-4", "If-Range": stale})
        assert full.status_code == 200 and full.content == TEXT, stale
    # An If-Range that does not match also turns an unsatisfiable range into 200.
    full = requests.get(live.url + "/media/hello.txt",
                        headers={"Range": "bytes=999-", "If-Range": '"other"'})
    assert full.status_code == 200


def test_range_on_empty_file_is_ignored(live):
    r = requests.get(live.url + "/media/empty.txt", headers={"Range": "bytes=0-10"})
    assert r.status_code == 200 and r.content == b""


# --------------------------------------------------------------------------- HEAD and methods


@pytest.mark.parametrize(
    ("path", "extra"),
    [("/media/hello.txt", {}), ("/media/big.bin", {}), ("/media/hello.txt", {"Range": "bytes=2-5"}),
     ("/media/empty.txt", {})],
)
def test_head_same_headers_as_get_no_body(live, path, extra):
    g_status, g_headers, g_body = get_raw(live, path, "GET", extra)
    h_status, h_headers, h_body = get_raw(live, path, "HEAD", extra)
    assert h_status == g_status
    assert h_body == b""
    g_headers.pop("date", None)
    h_headers.pop("date", None)
    assert h_headers == g_headers
    assert int(h_headers["content-length"]) == len(g_body)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_405_with_allow(live, method):
    r = requests.request(method, live.url + "/media/hello.txt", data=b"x")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD"
    assert TEXT not in r.content


# --------------------------------------------------------------------------- with the app


def test_custom_404_handler_and_middleware_apply_to_static_files(tree):
    server = WebServer(host="127.0.0.1", port=0, route=[], access_log=False)
    server.fileServer("/media/", str(tree / "media"))
    seen = []

    def middleware(request, response):
        seen.append(request.path)
        if request.path.endswith("/blocked.txt"):
            response.send("blocked by middleware", 403, "text/plain")
        return request, response

    server.Middlewares.append(middleware)

    @server.errorhandler(404)
    def not_found(request, response, error):
        response.send("custom 404 page", 404, "text/plain")

    with LiveServer(server) as live:
        assert requests.get(live.url + "/media/hello.txt").content == TEXT
        r = requests.get(live.url + "/media/nope.txt")
        assert r.status_code == 404 and r.text == "custom 404 page"
        status, _, body = get_raw(live, "/media/%2e%2e/secret.txt")
        assert status == 404 and body == b"custom 404 page"
        assert requests.get(live.url + "/media/blocked.txt").status_code == 403
    assert "/media/hello.txt" in seen and "/media/blocked.txt" in seen


def test_in_process_test_client_serves_files(tree):
    from http_server.testing import TestClient

    server = WebServer(route=[], access_log=False)
    server.fileServer("/media/", str(tree / "media"))
    client = TestClient(server)
    r = client.get("/media/hello.txt")
    assert r.status_code == 200 and r.content == TEXT
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    r = client.get("/media/hello.txt", headers={"Range": "bytes=1-3"})
    assert r.status_code == 206 and r.content == TEXT[1:4]
    assert client.head("/media/hello.txt").content == b""
    assert client.get("/media/café.txt").content == b"cafe\n"
    assert client.get("/media/caf%C3%A9.txt").content == b"cafe\n"
    assert client.get("/media/../secret.txt").status_code == 404
    assert client.post("/media/hello.txt").status_code == 405


def test_file_truncated_while_sending_closes_the_connection(tmp_path):
    """Content-Length promised more than the file now has: the connection must close.

    Otherwise the client waits for bytes that never come, or reads the next
    answer as the rest of this body. This is the connection's job (write_file).
    """
    root = tmp_path / "m"
    root.mkdir()
    path = root / "f.bin"
    with open(path, "wb") as f:
        f.truncate(256 << 20)  # sparse: larger than any socket buffer
    server = WebServer(host="127.0.0.1", port=0, route=[], access_log=False)
    server.fileServer("/m/", str(root))
    with LiveServer(server) as live:
        with socket.create_connection(("127.0.0.1", port_of(live)), timeout=5) as sock:
            sock.sendall(b"GET /m/f.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.3)  # the server is now blocked in sendfile: the buffers are full
            os.truncate(path, 1 << 20)
            received, closed = 0, False
            try:
                while True:
                    data = sock.recv(1 << 20)
                    if not data:
                        closed = True
                        break
                    received += len(data)
            except TimeoutError:
                pass
    assert received < 256 << 20
    assert closed, "the client was left waiting for bytes the file no longer has"


def test_pipelined_large_file_then_small_one(live):
    """A 1 MiB sendfile body, then the next pipelined answer, framed exactly."""
    req = (b"GET /media/big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /media/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = raw(live, req)
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Length: %d" % len(BINARY) in head
    assert rest[:len(BINARY)] == BINARY
    status, headers, body = parse(rest[len(BINARY):])
    assert status == 200 and body == TEXT


def test_http10_request(live):
    data = raw(live, b"GET /media/hello.txt HTTP/1.0\r\n\r\n")
    status, headers, body = parse(data)
    assert status == 200 and body == TEXT
    assert headers["content-length"] == str(len(TEXT))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc (Linux)")
def test_no_file_descriptor_leaks(live, tree):
    """Every answer closes its file: 200, 206, 304, 412, 416, 404, HEAD, aborted transfers."""
    sparse = tree / "media" / "sparse.bin"
    with open(sparse, "wb") as f:
        f.truncate(64 << 20)

    def count():
        return len(os.listdir("/proc/self/fd"))

    etag = _etag(live)
    requests.get(live.url + "/media/hello.txt")  # warm up: threads, connections
    baseline = count()
    # A file object dropped without close() is closed by the garbage collector,
    # which the count would not show: catch its ResourceWarning instead.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        _many_requests(live, etag)
        gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not [m for m in unclosed if m.startswith("unclosed file")], unclosed
    deadline = time.monotonic() + 10
    while count() > baseline + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert count() <= baseline + 2, sorted(
        os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    )


def _many_requests(live, etag):
    for _ in range(20):
        for headers in [{}, {"Range": "bytes=1-3"}, {"Range": "bytes=0-1,4-5"},
                        {"If-None-Match": etag}, {"If-Match": '"x"'}, {"Range": "bytes=999-"}]:
            get_raw(live, "/media/hello.txt", headers=headers)
        get_raw(live, "/media/hello.txt", "HEAD")
        get_raw(live, "/media/sub/")
        get_raw(live, "/media/escape.txt")
        # The client goes away after the first bytes of a large body.
        with socket.create_connection(("127.0.0.1", port_of(live)), timeout=5) as sock:
            sock.sendall(b"GET /media/sparse.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.recv(1024)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_root_may_be_a_symlink_switched_at_run_time(tmp_path):
    """A release folder behind a symlink: files inside it are served, the switch is seen."""
    for version in ("v1", "v2"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "app.txt").write_text(version)
    current = tmp_path / "current"
    current.symlink_to(tmp_path / "v1")
    server = WebServer(host="127.0.0.1", port=0, route=[], access_log=False)
    server.fileServer("/m/", str(current))
    with LiveServer(server) as live:
        assert requests.get(live.url + "/m/app.txt").text == "v1"
        tmp = tmp_path / "next"
        tmp.symlink_to(tmp_path / "v2")
        os.replace(tmp, current)
        assert requests.get(live.url + "/m/app.txt").text == "v2"
        # Still no way out of the (new) folder.
        assert get_raw(live, "/m/%2e%2e/v1/app.txt")[0] == 404


# What the mount no longer checks itself: the parser refuses these targets before any view.
@pytest.mark.parametrize(
    "target",
    ["/media/%zz", "/media/%", "/media/%2", "/media/a%g0", "/media/hello.txt%", "media/hello.txt",
     "*", "127.0.0.1:80", "/media/hello.txt#x", "/media/a\\b", "/media/hello.txt%0a"],
)
def test_targets_outside_the_grammar_never_reach_the_mount(live, target):
    status, headers, body = get_raw(live, target)
    assert status == 400, target
    assert TEXT not in body and "etag" not in headers


def test_a_target_longer_than_the_request_line_limit_never_reaches_the_mount(live):
    status, _, body = get_raw(live, "/media/hello.txt?" + "x" * 9000)
    assert status == 414
    assert TEXT not in body


# --------------------------------------------------------------------------- remembered paths


def test_a_remembered_path_still_finds_and_checks_its_file_every_time(tmp_path):
    """The mount remembers a served path's checks and type, never the file: a file
    replaced, removed, or swapped for a symlink out of the root is seen at once."""
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_bytes(SECRET)
    page = root / "page.txt"
    page.write_bytes(b"one")
    server = WebServer(host="127.0.0.1", port=0, route=[], access_log=False)
    server.fileServer("/m/", str(root))
    mount = server.mounts[0]
    with LiveServer(server) as live:
        first = requests.get(live.url + "/m/page.txt")
        assert first.content == b"one"
        assert "/m/page.txt" in mount.checked_paths
        page.write_bytes(b"two!")
        os.utime(page, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
        second = requests.get(live.url + "/m/page.txt")
        assert second.content == b"two!" and second.headers["ETag"] != first.headers["ETag"]
        page.unlink()
        assert requests.get(live.url + "/m/page.txt").status_code == 404
        page.symlink_to(tmp_path / "secret.txt")
        status, _, body = get_raw(live, "/m/page.txt")
        assert status == 404 and SECRET not in body
        # The query string is no part of what is remembered.
        (root / "b.txt").write_bytes(b"b")
        assert requests.get(live.url + "/m/b.txt?v=1").content == b"b"
        assert "/m/b.txt" in mount.checked_paths


def test_only_paths_that_served_a_file_are_remembered_and_only_so_many(tmp_path, monkeypatch):
    from http_server import static

    root = tmp_path / "root"
    root.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (root / name).write_bytes(name.encode())
    monkeypatch.setattr(static, "MAX_REMEMBERED_PATHS", 2)
    server = WebServer(host="127.0.0.1", port=0, route=[], access_log=False)
    server.fileServer("/m/", str(root))
    mount = server.mounts[0]
    with LiveServer(server) as live:
        assert requests.get(live.url + "/m/missing.txt").status_code == 404
        assert get_raw(live, "/m/.hidden")[0] == 404
        assert mount.checked_paths == {}
        for name in ("a.txt", "b.txt", "c.txt"):  # the third finds the table full
            assert requests.get(live.url + "/m/" + name).content == name.encode()
        assert sorted(mount.checked_paths) == ["/m/a.txt", "/m/b.txt"]
        assert requests.get(live.url + "/m/c.txt").content == b"c.txt"  # still served


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_unconditional_request_gets_the_headers_a_conditional_one_does(live, method):
    """Without a conditional or Range field the answer takes a short way; it must be the
    answer that a precondition which holds gives (If-None-Match with another tag)."""
    for name in ("hello.txt", "big.bin", "empty.txt", "café.txt"):
        target = "/media/" + name.replace("é", "%C3%A9")
        plain = get_raw(live, target, method)
        other = get_raw(live, target, method, headers={"If-None-Match": '"other"'})
        for _, headers, _ in (plain, other):
            headers.pop("date")
        assert plain == other, name
        assert plain[0] == 200
