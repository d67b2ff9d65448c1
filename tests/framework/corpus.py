"""The request corpus: raw requests paired with what the parser must make of them.

``VALID`` pairs each input with the requests it must parse into, ``INVALID``
with the status it must be refused with. Several harnesses replay the same
cases: tests/framework/test_parser.py (whole, byte by byte, seeded splits),
test_h11_differential.py (against h11's server-side parser) and
test_split_property.py (any split), and test_protocol.py sends the invalid ones to
a live server over a socket. Keeping the cases here, in one place, is
what stops those harnesses drifting apart. ``hostile_requests()`` turns the
corpus into a hypothesis strategy: a case, then a few mutations.

Expectations follow RFC 9110 / RFC 9112. Where the parser disagrees, the case
keeps the RFC's answer and is marked ``xfail(strict=True, reason="parser
bug: ...")``, so fixing the parser turns it into an XPASS that must be
un-marked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from http_server.parser import MAX_CHUNK_LINE
from hypothesis import strategies as st

# --------------------------------------------------------------------------- builders


def http(*lines: str | bytes, body: bytes = b"") -> bytes:
    """A request from its request line and field lines: CRLF-joined, head ended, body appended.

    ``str`` lines are encoded as latin-1 so every byte value can be written.
    """
    raw = [line.encode("latin-1") if isinstance(line, str) else line for line in lines]
    return b"\r\n".join(raw) + b"\r\n\r\n" + body


def chunked(*chunks: bytes, trailers: tuple[str, ...] = ()) -> bytes:
    """A well-formed chunked body (lower-case hex sizes) with optional trailer lines."""
    out = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c)
    return out + b"0\r\n" + b"".join(t.encode("latin-1") + b"\r\n" for t in trailers) + b"\r\n"


@dataclass(frozen=True)
class Parsed:
    """One complete request as the application would see it."""

    method: str
    target: str
    version: str = "HTTP/1.1"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    trailers: tuple[tuple[str, str], ...] = ()
    keep_alive: bool = True
    expect_continue: bool = False

def good(case_id, data, *expected: Parsed, limits=None, bug=None):
    """A valid-corpus entry: ``data`` must parse into exactly ``expected``."""
    marks = [pytest.mark.xfail(strict=True, reason=f"parser bug: {bug}")] if bug else []
    return pytest.param(data, expected, limits or {}, id=case_id, marks=marks)


def bad(case_id, data, status, limits=None, bug=None):
    """An invalid-corpus entry: ``data`` must be refused with ``status``."""
    marks = [pytest.mark.xfail(strict=True, reason=f"parser bug: {bug}")] if bug else []
    return pytest.param(data, status, limits or {}, id=case_id, marks=marks)


HOST = "Host: example.com"
H = ("host", "example.com")  # the parsed form of HOST

# --------------------------------------------------------------------------- valid corpus

VALID = [
    # ---- request line and target
    good(
        "get-with-query",
        http("GET /search?q=a%20b&page=2 HTTP/1.1", HOST),
        Parsed("GET", "/search?q=a%20b&page=2", headers=(H,)),
    ),
    good(
        "leading-empty-lines-ignored",
        b"\r\n\r\n" + http("GET / HTTP/1.1", HOST),
        Parsed("GET", "/", headers=(H,)),
    ),
    good(
        "absolute-form-becomes-origin-form",
        http("GET http://example.com/path?q HTTP/1.1", HOST),
        Parsed("GET", "/path?q", headers=(H,)),
    ),
    good(
        "absolute-form-https-with-port-and-no-path",
        http("GET HTTPS://example.com:8443 HTTP/1.1", HOST),
        # RFC 9112 section 3.2.2: the target's authority replaces the Host field.
        Parsed("GET", "/", headers=(("host", "example.com:8443"),)),
    ),
    good(
        "absolute-form-authority-wins-over-host",
        http("GET http://other.example:81/a HTTP/1.1", HOST),
        Parsed("GET", "/a", headers=(("host", "other.example:81"),)),
    ),
    good(
        "absolute-form-query-without-path",
        http("GET http://example.com?a=/b HTTP/1.1", HOST),
        Parsed("GET", "/?a=/b", headers=(H,)),
    ),
    good(
        "options-asterisk",
        http("OPTIONS * HTTP/1.1", HOST),
        Parsed("OPTIONS", "*", headers=(H,)),
    ),
    good(
        "extension-method-token",
        http("M-SEARCH /x HTTP/1.1", HOST),
        Parsed("M-SEARCH", "/x", headers=(H,)),
    ),
    good(
        "http-1.2-answered-as-1.1",
        http("GET / HTTP/1.2", HOST),
        Parsed("GET", "/", headers=(H,)),
    ),
    # ---- persistence (RFC 9112 section 9.3)
    good(
        "http10-closes-by-default",
        http("GET / HTTP/1.0"),
        Parsed("GET", "/", "HTTP/1.0", keep_alive=False),
    ),
    good(
        "http10-without-host-is-fine",
        http("GET / HTTP/1.0", "Accept: */*"),
        Parsed("GET", "/", "HTTP/1.0", headers=(("accept", "*/*"),), keep_alive=False),
    ),
    good(
        "http10-keep-alive",
        http("GET / HTTP/1.0", "Connection: Keep-Alive"),
        Parsed("GET", "/", "HTTP/1.0", headers=(("connection", "Keep-Alive"),)),
    ),
    good(
        "http11-persists-by-default",
        http("GET / HTTP/1.1", HOST),
        Parsed("GET", "/", headers=(H,)),
    ),
    good(
        "http11-connection-close",
        http("GET / HTTP/1.1", HOST, "Connection: close"),
        Parsed("GET", "/", headers=(H, ("connection", "close")), keep_alive=False),
    ),
    good(
        "http11-close-among-other-connection-options",
        http("GET / HTTP/1.1", HOST, "Connection: upgrade", "Connection: TE, Close"),
        Parsed(
            "GET", "/",
            headers=(H, ("connection", "upgrade"), ("connection", "TE, Close")),
            keep_alive=False,
        ),
    ),
    good(
        "http10-close-wins-over-keep-alive",
        http("GET / HTTP/1.0", "Connection: keep-alive, close"),
        Parsed("GET", "/", "HTTP/1.0", headers=(("connection", "keep-alive, close"),),
               keep_alive=False),
    ),
    # ---- header fields
    good(
        "header-value-ows-stripped",
        http("GET / HTTP/1.1", HOST, "X-A: \t  spaced  value \t "),
        Parsed("GET", "/", headers=(H, ("x-a", "spaced  value"))),
    ),
    good(
        "header-without-ows",
        http("GET / HTTP/1.1", HOST, "X-A:tight"),
        Parsed("GET", "/", headers=(H, ("x-a", "tight"))),
    ),
    good(
        "header-value-obs-text-allowed",
        http("GET / HTTP/1.1", HOST, b"X-Name: caf\xe9 \x80\xff"),
        Parsed("GET", "/", headers=(H, ("x-name", "caf\xe9 \x80\xff"))),
    ),
    good(
        "header-empty-value",
        http("GET / HTTP/1.1", HOST, "X-Empty:", "X-Blank:   "),
        Parsed("GET", "/", headers=(H, ("x-empty", ""), ("x-blank", ""))),
    ),
    good(
        "header-names-lower-cased-values-untouched",
        http("GET / HTTP/1.1", "HOST: Example.COM", "X-Mixed_Case!#: MiXeD"),
        Parsed("GET", "/", headers=(("host", "Example.COM"), ("x-mixed_case!#", "MiXeD"))),
    ),
    good(
        "repeated-non-framing-headers-kept-in-order",
        http("GET / HTTP/1.1", HOST, "Accept: a", "Cookie: x=1", "Accept: b"),
        Parsed("GET", "/", headers=(H, ("accept", "a"), ("cookie", "x=1"), ("accept", "b"))),
    ),
    good(
        "repeated-cookie-lines-kept-in-order",  # joined with "; " for the view (headers.py)
        http("GET / HTTP/1.1", HOST, "Cookie: a=1", "X-B: 2", "Cookie: c=3"),
        Parsed("GET", "/", headers=(H, ("cookie", "a=1"), ("x-b", "2"), ("cookie", "c=3"))),
    ),
    good(
        "header-value-with-colons-and-tabs",
        http("GET / HTTP/1.1", HOST, "X-A: a:b\tc"),
        Parsed("GET", "/", headers=(H, ("x-a", "a:b\tc"))),
    ),
    # ---- Expect (RFC 9110 section 10.1.1)
    good(
        "expect-100-continue-on-http11",
        http("POST / HTTP/1.1", HOST, "Content-Length: 2", "Expect: 100-Continue", body=b"hi"),
        Parsed("POST", "/", headers=(H, ("content-length", "2"), ("expect", "100-Continue")),
               body=b"hi", expect_continue=True),
    ),
    good(
        "expect-100-continue-ignored-on-http10",
        http("POST / HTTP/1.0", "Content-Length: 2", "Expect: 100-continue", body=b"hi"),
        Parsed("POST", "/", "HTTP/1.0",
               headers=(("content-length", "2"), ("expect", "100-continue")),
               body=b"hi", keep_alive=False),
    ),
    # ---- Content-Length bodies
    good(
        "post-content-length",
        http("POST /form HTTP/1.1", HOST, "Content-Length: 11", body=b"hello world"),
        Parsed("POST", "/form", headers=(H, ("content-length", "11")), body=b"hello world"),
    ),
    good(
        "content-length-leading-ows-is-stripped",
        http("POST / HTTP/1.1", HOST, "Content-Length:  \t5 ", body=b"12345"),
        Parsed("POST", "/", headers=(H, ("content-length", "5")), body=b"12345"),
    ),
    good(
        "content-length-zero",
        http("POST / HTTP/1.1", HOST, "Content-Length: 0"),
        Parsed("POST", "/", headers=(H, ("content-length", "0"))),
    ),
    good(
        "content-length-leading-zeros",
        http("POST / HTTP/1.1", HOST, "Content-Length: 003", body=b"abc"),
        Parsed("POST", "/", headers=(H, ("content-length", "003")), body=b"abc"),
    ),
    good(
        "body-bytes-are-opaque",
        http("POST / HTTP/1.1", HOST, "Content-Length: 8", body=b"\r\n\r\n\x00\n\xff\r"),
        Parsed("POST", "/", headers=(H, ("content-length", "8")), body=b"\r\n\r\n\x00\n\xff\r"),
    ),
    # ---- chunked bodies (RFC 9112 section 7.1)
    good(
        "chunked-simple",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=chunked(b"hello", b" ", b"world")),
        Parsed("POST", "/", headers=(H, ("transfer-encoding", "chunked")), body=b"hello world"),
    ),
    good(
        "chunked-coding-name-case-insensitive",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: Chunked", body=chunked(b"x")),
        Parsed("POST", "/", headers=(H, ("transfer-encoding", "Chunked")), body=b"x"),
    ),
    good(
        "chunked-empty-body",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
        Parsed("POST", "/", headers=(H, ("transfer-encoding", "chunked"))),
    ),
    good(
        "chunk-sizes-upper-and-lower-hex-and-leading-zeros",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=b"A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0001\r\n!\r\n000\r\n\r\n"),
        Parsed("POST", "/", headers=(H, ("transfer-encoding", "chunked")),
               body=b"0123456789abcdefghijk!"),
    ),
    good(
        "chunk-extensions-token-quoted-and-bws",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=b"3;name\r\nabc\r\n"
                  b'2 ; a = b ;q="x \\" y;"\r\nde\r\n'
                  b"0;last=1\r\n\r\n"),
        Parsed("POST", "/", headers=(H, ("transfer-encoding", "chunked")), body=b"abcde"),
    ),
    good(
        "chunked-with-trailers",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", "Trailer: X-Checksum",
             body=chunked(b"data", trailers=("X-Checksum:  abc ", "X-Other: \xe9", "X-Empty:"))),
        Parsed("POST", "/",
               headers=(H, ("transfer-encoding", "chunked"), ("trailer", "X-Checksum")),
               body=b"data",
               trailers=(("x-checksum", "abc"), ("x-other", "\xe9"), ("x-empty", ""))),
    ),
    # ---- pipelining: back to back in one feed, parsed in order
    good(
        "pipelined-requests-in-order",
        http("GET /1 HTTP/1.1", HOST)
        + http("POST /2 HTTP/1.1", HOST, "Content-Length: 3", body=b"abc")
        + http("POST /3 HTTP/1.1", HOST, "Transfer-Encoding: chunked",
               body=chunked(b"xy", trailers=("X-T: 1",)))
        + b"\r\n"  # a stray CRLF after a body is an empty line before the next request
        + http("GET /4 HTTP/1.1", HOST, "Connection: close"),
        Parsed("GET", "/1", headers=(H,)),
        Parsed("POST", "/2", headers=(H, ("content-length", "3")), body=b"abc"),
        Parsed("POST", "/3", headers=(H, ("transfer-encoding", "chunked")), body=b"xy",
               trailers=(("x-t", "1"),)),
        Parsed("GET", "/4", headers=(H, ("connection", "close")), keep_alive=False),
    ),
    # ---- limits: exactly at a limit is still fine
    good(
        "request-line-exactly-max-request-line",
        http(LINE_29 := "GET /" + "a" * 15 + " HTTP/1.1", HOST),
        Parsed("GET", "/" + "a" * 15, headers=(H,)),
        limits={"max_request_line": len(LINE_29)},
    ),
    good(
        "header-section-exactly-max-header-size",
        http("GET / HTTP/1.1", HOST, "X: " + "a" * 10),  # 14 + 2 + 17 + 2 + 13 + 4 = 52
        Parsed("GET", "/", headers=(H, ("x", "a" * 10))),
        limits={"max_header_size": 52},
    ),
    good(
        "header-count-exactly-max-header-count",
        http("GET / HTTP/1.1", HOST, "A: 1", "B: 2"),
        Parsed("GET", "/", headers=(H, ("a", "1"), ("b", "2"))),
        limits={"max_header_count": 3},
    ),
    good(
        "content-length-exactly-max-body-size",
        http("POST / HTTP/1.1", HOST, "Content-Length: 4", body=b"abcd"),
        Parsed("POST", "/", headers=(H, ("content-length", "4")), body=b"abcd"),
        limits={"max_body_size": 4},
    ),
    good(
        "chunked-exactly-max-body-size",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", body=chunked(b"ab", b"cd")),
        Parsed("POST", "/", headers=(H, ("transfer-encoding", "chunked")), body=b"abcd"),
        limits={"max_body_size": 4},
    ),
    good(
        "chunk-line-with-extension-exactly-4096-bytes",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=(b"1;x=" + b"e" * 4092).ljust(MAX_CHUNK_LINE) + b"\r\nZ\r\n0\r\n\r\n"),
        Parsed("POST", "/", headers=(H, ("transfer-encoding", "chunked")), body=b"Z"),
    ),
    # ---- hostile input that must still be understood (issue 14)
    good(
        "origin-form-every-pchar",  # RFC 3986 3.3: pchar, sub-delims, ":" and "@" in a path
        http("GET /a:b@c;d=e,f!$&'()*+~._-/%41%2f HTTP/1.1", HOST),
        Parsed("GET", "/a:b@c;d=e,f!$&'()*+~._-/%41%2f", headers=(H,)),
    ),
    good(
        "expect-empty-is-ignored",  # RFC 9110 5.6.1.2: empty list elements do not count
        http("GET / HTTP/1.1", HOST, "Expect:"),
        Parsed("GET", "/", headers=(H, ("expect", ""))),
    ),
    good(
        "expect-only-whitespace-is-ignored",
        http("GET / HTTP/1.1", HOST, "Expect:  \t "),
        Parsed("GET", "/", headers=(H, ("expect", ""))),
    ),
    good(
        "repeated-content-type-with-the-same-value",
        http("POST / HTTP/1.1", HOST, "Content-Type: text/plain", "Content-Type: text/plain",
             "Content-Length: 2", body=b"hi"),
        Parsed("POST", "/", headers=(H, ("content-type", "text/plain"),
                                     ("content-type", "text/plain"), ("content-length", "2")),
               body=b"hi"),
    ),
    good(
        "content-length-lookalike-name-is-not-framing",  # "_" is a tchar: another field
        http("GET / HTTP/1.1", HOST, "Content_Length: 5"),
        Parsed("GET", "/", headers=(H, ("content_length", "5"))),
    ),
    good(
        "transfer-encoding-chunked-tab-padded-and-upper-case",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding:\tCHUNKED\t", body=chunked(b"hi")),
        Parsed("POST", "/", headers=(H, ("transfer-encoding", "CHUNKED")), body=b"hi"),
    ),
    good(
        "chunk-extension-after-bws",  # RFC 9112 7.1.1: BWS before the ";"
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=b"5 \t;a\r\nhello\r\n0\r\n\r\n"),
        Parsed("POST", "/", headers=(H, ("transfer-encoding", "chunked")), body=b"hello"),
    ),
    good(
        "get-with-a-content-length-body",
        http("GET / HTTP/1.1", HOST, "Content-Length: 4", body=b"abcd"),
        Parsed("GET", "/", headers=(H, ("content-length", "4")), body=b"abcd"),
    ),
    good(
        "host-ipv6-literal-with-port",
        http("GET / HTTP/1.1", "Host: [::1]:8080"),
        Parsed("GET", "/", headers=(("host", "[::1]:8080"),)),
    ),
    good(
        "empty-chunked-body-then-a-request",  # the smuggled-request shape, framed properly
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", body=b"0\r\n\r\n")
        + http("GET /admin HTTP/1.1", HOST),
        Parsed("POST", "/", headers=(H, ("transfer-encoding", "chunked"))),
        Parsed("GET", "/admin", headers=(H,)),
    ),
    good(
        "four-empty-lines-before-a-request",
        b"\r\n" * 4 + http("GET / HTTP/1.1", HOST),
        Parsed("GET", "/", headers=(H,)),
    ),
]

# --------------------------------------------------------------------------- invalid corpus

INVALID = [
    # ---- request line (RFC 9112 section 3)
    bad("request-line-two-spaces", http("GET  / HTTP/1.1", HOST), 400),
    bad("request-line-tab-separators", http("GET\t/\tHTTP/1.1", HOST), 400),
    bad("request-line-trailing-space", http("GET / HTTP/1.1 ", HOST), 400),
    bad("request-line-leading-space", http(" GET / HTTP/1.1", HOST), 400),
    bad("request-line-missing-version", http("GET /", HOST), 400),
    bad("request-line-missing-target", http("GET HTTP/1.1", HOST), 400),
    bad("request-line-only-method", http("GET", HOST), 400),
    bad("version-lowercase", http("GET / http/1.1", HOST), 400),
    bad("version-two-digit-minor", http("GET / HTTP/1.10", HOST), 400),
    bad("version-without-minor", http("GET / HTTP/1", HOST), 400),
    bad("version-garbage", http("GET / HTTX/1.1", HOST), 400),
    bad("http-2.0-not-supported", http("GET / HTTP/2.0", HOST), 505),
    bad("http-3.0-not-supported", http("GET / HTTP/3.0", HOST), 505),
    bad("http-0.9-style-version-not-supported", http("GET / HTTP/0.9", HOST), 505),
    bad("method-not-a-token", http("G(T / HTTP/1.1", HOST), 400),
    bad("nul-in-method", http("GE\x00T / HTTP/1.1", HOST), 400),
    bad("nul-in-target", http("GET /a\x00b HTTP/1.1", HOST), 400),
    bad("control-in-target", http("GET /a\x01b HTTP/1.1", HOST), 400),
    bad("del-in-target", http("GET /a\x7fb HTTP/1.1", HOST), 400),
    bad("non-ascii-in-target", http(b"GET /caf\xc3\xa9 HTTP/1.1", HOST), 400),
    bad("bare-cr-in-request-line", http("GET /\r HTTP/1.1", HOST), 400),
    bad("target-not-origin-or-absolute-form", http("GET index.html HTTP/1.1", HOST), 400),
    bad("asterisk-with-get", http("GET * HTTP/1.1", HOST), 400),
    bad("absolute-form-bad-scheme", http("GET ftp://example.com/x HTTP/1.1", HOST), 400),
    bad("absolute-form-missing-authority", http("GET http:///x HTTP/1.1", HOST), 400),
    bad("absolute-form-empty-after-scheme", http("GET http:// HTTP/1.1", HOST), 400),
    # RFC 9110 9.3.6 / 15.6.2: a well-formed CONNECT this server does not implement.
    bad("authority-form-connect", http("CONNECT example.com:443 HTTP/1.1", HOST), 501),
    bad("empty-request-line-then-header", b"\r\nHost: x\r\n\r\n", 400),
    # ---- line endings (RFC 9112 section 2.2): bare LF fails fast, before any CRLFCRLF
    bad("bare-lf-after-request-line", b"GET / HTTP/1.1\nHost: a\n", 400),
    bad("bare-lf-after-header", b"GET / HTTP/1.1\r\nHost: a\n", 400),
    bad("bare-lf-as-empty-leading-line", b"\nGET / HTTP/1.1\r\n", 400),
    bad("bare-lf-head-terminator", b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
    bad("bare-lf-after-cr-lf", b"GET / HTTP/1.1\r\n\nHost: a\r\n", 400),
    bad("bare-cr-in-header-value", http("GET / HTTP/1.1", HOST, "X: a\rb"), 400),
    bad("bare-cr-at-end-of-header-value", http("GET / HTTP/1.1", HOST, "X: ab\r"), 400),
    # ---- field lines (RFC 9112 section 5)
    bad("space-before-colon", http("GET / HTTP/1.1", HOST, "X-A : b"), 400),
    bad("tab-before-colon", http("GET / HTTP/1.1", HOST, "X-A\t: b"), 400),
    bad("obs-fold-continuation-line", http("GET / HTTP/1.1", HOST, "X-A: b", "  c"), 400),
    bad("obs-fold-with-tab", http("GET / HTTP/1.1", HOST, "X-A: b", "\tc"), 400),
    bad("whitespace-before-first-header", http("GET / HTTP/1.1", " " + HOST), 400),
    bad("header-without-colon", http("GET / HTTP/1.1", HOST, "X-A b"), 400),
    bad("header-empty-name", http("GET / HTTP/1.1", HOST, ": b"), 400),
    bad("header-name-not-a-token", http("GET / HTTP/1.1", HOST, "X(A): b"), 400),
    bad("nul-in-header-name", http("GET / HTTP/1.1", HOST, "X\x00A: b"), 400),
    bad("control-in-header-name", http("GET / HTTP/1.1", HOST, "X\x0bA: b"), 400),
    bad("obs-text-in-header-name", http("GET / HTTP/1.1", HOST, b"X\xe9: b"), 400),
    bad("nul-in-header-value", http("GET / HTTP/1.1", HOST, "X: a\x00b"), 400),
    bad("control-in-header-value", http("GET / HTTP/1.1", HOST, "X: a\x01b"), 400),
    bad("escape-in-header-value", http("GET / HTTP/1.1", HOST, "X: a\x1bb"), 400),
    bad("del-in-header-value", http("GET / HTTP/1.1", HOST, "X: a\x7fb"), 400),
    # ---- Host (RFC 9112 section 3.2)
    bad("http11-missing-host", http("GET / HTTP/1.1", "Accept: */*"), 400),
    bad("http11-two-hosts", http("GET / HTTP/1.1", HOST, "Host: other.example"), 400),
    bad("http11-two-equal-hosts", http("GET / HTTP/1.1", HOST, HOST), 400),
    bad("http10-two-hosts", http("GET / HTTP/1.0", HOST, "Host: other.example"), 400),
    bad("host-with-invalid-value", http("GET / HTTP/1.1", "Host: exa mple.com"), 400),
    bad("host-with-path", http("GET / HTTP/1.1", "Host: example.com/evil"), 400),
    # ---- Content-Length (RFC 9110 section 8.6, RFC 9112 section 6.3)
    bad("content-length-and-transfer-encoding",
        http("POST / HTTP/1.1", HOST, "Content-Length: 5", "Transfer-Encoding: chunked",
             body=chunked(b"hello")), 400),
    bad("transfer-encoding-and-content-length",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", "Content-Length: 5",
             body=chunked(b"hello")), 400),
    bad("duplicate-content-length-different",
        http("POST / HTTP/1.1", HOST, "Content-Length: 5", "Content-Length: 6",
             body=b"hello!"), 400),
    bad("duplicate-content-length-equal",
        http("POST / HTTP/1.1", HOST, "Content-Length: 5", "Content-Length: 5",
             body=b"hello"), 400),
    bad("content-length-list",
        http("POST / HTTP/1.1", HOST, "Content-Length: 5, 5", body=b"hello"), 400),
    bad("content-length-plus-sign",
        http("POST / HTTP/1.1", HOST, "Content-Length: +5", body=b"hello"), 400),
    bad("content-length-negative",
        http("POST / HTTP/1.1", HOST, "Content-Length: -1", body=b"hello"), 400),
    bad("content-length-hex",
        http("POST / HTTP/1.1", HOST, "Content-Length: 0x5", body=b"hello"), 400),
    bad("content-length-underscore",
        http("POST / HTTP/1.1", HOST, "Content-Length: 5_0", body=b"hello"), 400),
    bad("content-length-inner-space",
        http("POST / HTTP/1.1", HOST, "Content-Length: 1 0", body=b"0123456789"), 400),
    bad("content-length-decimal-point",
        http("POST / HTTP/1.1", HOST, "Content-Length: 5.0", body=b"hello"), 400),
    bad("content-length-empty", http("POST / HTTP/1.1", HOST, "Content-Length:"), 400),
    bad("content-length-arabic-indic-digit",
        http("POST / HTTP/1.1", HOST, b"Content-Length: " + "\u0665".encode(), body=b"hello"),
        400),
    bad("content-length-fullwidth-digit",
        http("POST / HTTP/1.1", HOST, b"Content-Length: " + "\uff15".encode(), body=b"hello"),
        400),
    # Latin-1's superscript digits: str.isdigit() takes them, the grammar does not.
    bad("content-length-latin-1-superscript-digit",
        http("POST / HTTP/1.1", HOST, b"Content-Length: \xb2", body=b"hi"), 400),
    bad("content-length-digits-then-superscript",
        http("POST / HTTP/1.1", HOST, b"Content-Length: 1\xb9", body=b"x" * 11), 400),
    bad("content-length-19-digits",
        http("POST / HTTP/1.1", HOST, "Content-Length: " + "1" * 19), 400),
    bad("content-length-19-digits-with-leading-zeros",
        http("POST / HTTP/1.1", HOST, "Content-Length: " + "0" * 18 + "1", body=b"x"), 400),
    # ---- Transfer-Encoding (RFC 9112 sections 6.1 and 6.3)
    bad("transfer-encoding-chunked-twice-in-one-field",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked, chunked",
             body=chunked(b"hello")), 400),
    bad("transfer-encoding-duplicate-fields",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", "Transfer-Encoding: chunked",
             body=chunked(b"hello")), 400),
    bad("transfer-encoding-duplicate-fields-different",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: gzip", "Transfer-Encoding: chunked",
             body=chunked(b"hello")), 400),
    bad("transfer-encoding-gzip-then-chunked-not-implemented",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: gzip, chunked",
             body=chunked(b"hello")), 501),
    bad("transfer-encoding-deflate-then-chunked-not-implemented",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: Deflate , chunked",
             body=chunked(b"hello")), 501),
    bad("transfer-encoding-chunked-then-gzip",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked, gzip",
             body=chunked(b"hello")), 400),
    bad("transfer-encoding-gzip-only",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: gzip", body=b"hello"), 400),
    bad("transfer-encoding-identity",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: identity", body=b"hello"), 400),
    bad("transfer-encoding-xchunked",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: xchunked", body=chunked(b"hello")),
        400),
    bad("transfer-encoding-chunked-with-parameter",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked;q=1", body=chunked(b"hello")),
        400),
    bad("transfer-encoding-quoted-chunked",
        http("POST / HTTP/1.1", HOST, 'Transfer-Encoding: "chunked"', body=chunked(b"hello")),
        400),
    bad("transfer-encoding-unknown-coding-then-chunked",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: foo, chunked", body=chunked(b"hello")),
        501),  # RFC 9112 6.1: a coding the server does not understand SHOULD get 501
    bad("transfer-encoding-empty",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding:", body=b"0\r\n\r\n"), 400),
    bad("transfer-encoding-on-http10",
        http("POST / HTTP/1.0", "Transfer-Encoding: chunked", body=chunked(b"hello")), 400),
    # ---- chunked framing (RFC 9112 section 7.1)
    *[
        bad(f"chunk-size-{name}",
            http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                 body=size_line + b"\r\nhello\r\n0\r\n\r\n"), 400)
        for name, size_line in [
            ("negative", b"-1"),
            ("hex-prefix", b"0x5"),
            ("leading-space", b" 5"),
            ("empty", b""),
            ("17-hex-digits", b"0" * 16 + b"5"),
            ("plus-sign", b"+5"),
            ("underscore", b"0_5"),
            ("non-hex-letter", b"g"),
            ("extension-without-name", b"5;"),
            ("extension-empty-value", b"5;a="),
            ("extension-name-not-a-token", b"5;a(b)=c"),
            ("extension-unterminated-quote", b'5;a="x'),
            ("extension-value-with-space", b"5;a=b c"),
            ("extension-with-nul", b"5;a=\x00"),
            ("bare-cr-in-chunk-line", b"5\r"),
        ]
    ],
    bad("chunk-data-longer-than-size",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=b"5\r\nhelloXY\r\n0\r\n\r\n"), 400),
    bad("chunk-data-followed-by-bare-lf",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=b"5\r\nhello\n0\r\n\r\n"), 400),
    bad("chunk-data-without-crlf-before-last-chunk",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=b"5\r\nhello0\r\n\r\n"), 400),
    bad("chunk-line-bare-lf",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", body=b"5\nhello"), 400),
    bad("last-chunk-bare-lf",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", body=b"0\n"), 400),
    bad("chunk-line-too-long",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=b"5;x=" + b"e" * 5000 + b"\r\nhello\r\n0\r\n\r\n"), 400),
    # ---- trailers (RFC 9110 section 6.5)
    *[
        bad(f"forbidden-trailer-{field.lower()}",
            http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                 body=chunked(b"hello", trailers=(f"{field}: 1",))), 400)
        for field in ("Content-Length", "Host", "Transfer-Encoding", "Authorization",
                      "Content-Type", "Connection", "Trailer", "Expect", "Cookie")
    ],
    bad("trailer-space-before-colon",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=chunked(b"hello", trailers=("X-T : 1",))), 400),
    bad("trailer-obs-fold",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=chunked(b"hello", trailers=("X-T: 1", " 2"))), 400),
    bad("trailer-nul-in-value",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=chunked(b"hello", trailers=("X-T: a\x00b",))), 400),
    bad("trailer-bare-lf",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", body=b"0\r\nX-T: 1\n"),
        400),
    # ---- Expect (RFC 9110 section 10.1.1)
    bad("expect-unknown", http("GET / HTTP/1.1", HOST, "Expect: 200-ok"), 417),
    bad("expect-100-continue-with-parameter",
        http("GET / HTTP/1.1", HOST, "Expect: 100-continue; x=1"), 417),
    bad("expect-unknown-on-http10", http("GET / HTTP/1.0", "Expect: something"), 417),
    # ---- limits
    bad("request-line-over-max-request-line",
        http("GET /" + "a" * 100 + " HTTP/1.1", HOST), 414, {"max_request_line": 64}),
    bad("request-line-over-max-request-line-without-crlf",
        b"GET /" + b"a" * 100, 414, {"max_request_line": 64}),
    bad("long-request-line-in-a-head-also-over-max-header-size",
        http("GET /" + "a" * 100 + " HTTP/1.1", HOST, "X: " + "b" * 200), 414,
        {"max_request_line": 64, "max_header_size": 256}),
    bad("header-section-over-max-header-size",
        http("GET / HTTP/1.1", HOST, "X: " + "a" * 11), 431, {"max_header_size": 52}),
    bad("header-section-over-max-header-size-never-ending",
        b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 20, 431, {"max_header_size": 64}),
    bad("header-count-over-max-header-count",
        http("GET / HTTP/1.1", HOST, "A: 1", "B: 2", "C: 3"), 431, {"max_header_count": 3}),
    bad("content-length-over-max-body-size-refused-at-the-head",
        http("POST / HTTP/1.1", HOST, "Content-Length: 5"), 413, {"max_body_size": 4}),
    bad("content-length-18-digits-over-default-max-body-size",
        http("POST / HTTP/1.1", HOST, "Content-Length: " + "9" * 18), 413),
    bad("chunked-body-over-max-body-size",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=chunked(b"abc", b"de")), 413, {"max_body_size": 4}),
    bad("chunk-size-16-hex-digits-over-max-body-size",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=b"FFFFFFFFFFFFFFFF\r\n"), 413),
    bad("trailer-count-over-max-header-count",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=chunked(b"x", trailers=("A: 1", "B: 2", "C: 3"))), 431,
        {"max_header_count": 2}),
    bad("trailer-line-over-max-header-size",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=chunked(b"x", trailers=("X-T: " + "t" * 150,))), 431,
        {"max_header_size": 100}),
    # ---- an error in a pipelined request after a good one
    bad("second-pipelined-request-malformed",
        http("GET /1 HTTP/1.1", HOST) + http("GET /2 HTTP/1.1", HOST, "X : y"), 400),
    # ---- hostile input (issue 14): each item's cases
    # item 3: a bare LF in a head that is also refused for another reason; the bare LF is
    # what a byte-by-byte reader sees first, so it must win however the bytes arrive.
    bad("unsupported-version-and-bare-lf-empty-line", b"GET / HTTP/2.0\r\n\n\r\n\r\n", 400),
    bad("unsupported-version-and-bare-lf-in-a-header",
        b"GET / HTTP/3.0\r\nHost: a\nX: b\r\n\r\n", 400),
    bad("bare-lf-before-an-overlong-request-line",
        b"GET /\n" + b"a" * 100 + b" HTTP/1.1\r\n\r\n", 400, {"max_request_line": 64}),
    bad("overlong-request-line-before-a-bare-lf",
        b"GET /" + b"a" * 100 + b"\n HTTP/1.1\r\n\r\n", 414, {"max_request_line": 64}),
    bad("bare-lf-before-too-many-headers",
        http("GET / HTTP/1.1", "Host: a\n", "A: 1", "B: 2", "C: 3"), 400,
        {"max_header_count": 3}),
    # item 4: CONNECT is refused (RFC 9110 9.3.6), authority-form is for CONNECT alone
    bad("connect-origin-form-empty-host", b"CONNECT / HTTP/1.1\r\nHost:\r\n\r\n", 400),
    bad("connect-absolute-form", http("CONNECT http://example.com/ HTTP/1.1", HOST), 400),
    bad("connect-asterisk", http("CONNECT * HTTP/1.1", HOST), 400),
    bad("authority-form-with-get", http("GET example.com:443 HTTP/1.1", HOST), 400),
    bad("authority-form-with-options", http("OPTIONS example.com:443 HTTP/1.1", HOST), 400),
    # item 5: empty lines before a request are bounded
    bad("many-empty-lines-before-a-request",
        b"\r\n" * 1000 + http("GET / HTTP/1.1", HOST), 400),
    bad("empty-lines-alone-forever", b"\r\n" * 40000, 400),
    # item 6: whitespace in a chunk line only around an extension (RFC 9112 7.1, 7.1.1)
    *[
        bad(f"chunk-line-{name}",
            http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", body=body), 400)
        for name, body in [
            ("space-after-size", b"a \r\n0123456789\r\n0\r\n\r\n"),
            ("tab-after-size", b"5\t\r\nhello\r\n0\r\n\r\n"),
            ("space-after-last-chunk-size", b"0 \r\n\r\n"),
            ("space-after-extension", b"5;a=b \r\nhello\r\n0\r\n\r\n"),
            ("bare-lf-in-quoted-extension", b'2;a="\n"\r\nhi\r\n0\r\n\r\n'),
        ]
    ],
    # item 8: characters RFC 3986 never allows in a path or query, and userinfo
    *[
        bad(f"target-with-{name}", http(f"GET {target} HTTP/1.1", HOST), 400)
        for name, target in [
            ("quote-in-path", '/a"b'),
            ("backslash-in-path", "/a\\b"),
            ("braces-in-path", "/a{b}"),
            ("angle-brackets-in-path", "/<script>"),
            ("quote-in-query", '/a?q="x"'),
            ("fragment", "/a#b"),
            ("userinfo-in-absolute-form", "http://user:pass@example.com/"),
            ("user-in-absolute-form", "http://user@example.com/"),
            ("fragment-in-absolute-form", "http://example.com/a#b"),
        ]
    ],
    # item 9: two readers, two Content-Types
    bad("content-type-twice-with-different-values",
        http("POST / HTTP/1.1", HOST, "Content-Type: text/plain",
             "Content-Type: application/json", "Content-Length: 2", body=b"{}"), 400),
    # item 10: a path whose percent-decoded form has a control character, or a broken "%"
    *[
        bad(f"path-with-{name}", http(f"GET {target} HTTP/1.1", HOST), 400)
        for name, target in [
            ("encoded-lf", "/admin%0a"),
            ("encoded-cr-upper-case", "/admin%0D"),
            ("encoded-nul", "/a%00b"),
            ("encoded-del", "/a%7Fb"),
            ("encoded-escape", "/a%1bb"),
            ("percent-not-hex", "/a%zz"),
            ("truncated-percent", "/a%4"),
        ]
    ],
    # item 11: an Expect list with a real element besides the empty ones still counts
    bad("expect-unknown-among-empty-elements",
        http("GET / HTTP/1.1", HOST, "Expect: , 200-ok ,"), 417),
    # framing fields with a character h11 and this parser refuse alike
    bad("transfer-encoding-with-vertical-tab",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: \x0bchunked", body=chunked(b"hi")),
        400),
    bad("content-length-with-vertical-tab",
        http("POST / HTTP/1.1", HOST, "Content-Length: \x0b2", body=b"hi"), 400),
    bad("transfer-encoding-empty-coding-then-chunked",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: ,chunked", body=chunked(b"hi")), 400),
    bad("chunk-size-overflowing-64-bits",
        http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
             body=b"1" + b"0" * 16 + b"2\r\nhi\r\n0\r\n\r\n"), 400),
    bad("http09-request-line", b"GET /\r\n\r\n", 400),
    # ---- from the live-socket test of test_protocol.py (256: the smallest max_header_size
    # a server accepts, so that test can replay these with the same limits)
    bad("http2-connection-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    bad("space-inside-target", http("GET /hel lo HTTP/1.1", HOST), 400),
    bad("header-field-over-max-header-size",
        http("GET / HTTP/1.1", HOST, "X-Big: " + "v" * 300), 431, {"max_header_size": 256}),
    bad("header-line-over-max-header-size-without-crlf",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Big: " + b"v" * 300, 431,
        {"max_header_size": 256}),
]


# --------------------------------------------------------------------------- mutations

# (input, limits) of every case, valid and invalid.
SEEDS = [(param.values[0], param.values[-1]) for param in VALID + INVALID]

# What a mutation inserts: line-ending pieces, whitespace and separators, where a
# parser that looks for them in only some of its states goes wrong.
INSERTS = [b"\r", b"\n", b"\r\n", b"\r\n\r\n", b" ", b"\t", b"\x00", b":", b";", b"0"]
MAX_MUTATIONS = 3
_DIGIT = re.compile(rb"[0-9]")

# Strategies built once: hypothesis inspects a sampled_from list each time one is made.
_SEED_INDEX = st.integers(0, len(SEEDS) - 1)
_MUTATION_KIND = st.sampled_from(["insert", "repeat-line", "change-digit", "drop-byte"])
_INSERT = st.sampled_from(INSERTS)
_NEW_DIGIT = st.sampled_from(b"0123456789aF")


@st.composite
def hostile_requests(draw) -> tuple[bytes, dict]:
    """(input, limits): a corpus case with up to ``MAX_MUTATIONS`` mutations.

    A mutation inserts one of ``INSERTS`` anywhere, repeats a line, changes a digit
    (to another, or to a hex letter) or drops a byte.
    """
    data, limits = SEEDS[draw(_SEED_INDEX)]
    for _ in range(draw(st.integers(0, MAX_MUTATIONS))):
        data = _mutated(draw, data)
    return data, limits


def _mutated(draw, data: bytes) -> bytes:
    """``data`` with one mutation at a drawn position (inputs run to 80 kB: no lists)."""
    kind = draw(_MUTATION_KIND)
    at = draw(st.integers(0, len(data)))
    if kind == "insert":
        return data[:at] + draw(_INSERT) + data[at:]
    if kind == "repeat-line":  # the CRLF-ended line around ``at``, twice
        start = data.rfind(b"\r\n", 0, at) + 2 if at else 0
        end = data.find(b"\r\n", start)
        end = len(data) if end < 0 else end + 2
        return data[:end] + data[start:end] + data[end:]
    if kind == "change-digit":  # the first digit from ``at`` on, else the first at all
        found = _DIGIT.search(data, at) or _DIGIT.search(data)
        if found is None:
            return data
        at = found.start()
        return data[:at] + bytes([draw(_NEW_DIGIT)]) + data[at + 1 :]
    return data[:at] + data[at + 1 :]
