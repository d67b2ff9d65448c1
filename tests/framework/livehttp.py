"""The test views of the framework tests over real sockets (the fixtures are in conftest.py;
the raw client is support.rawhttp).

``build_server(**settings)``: a ``WebServer`` with the views of ``ROUTES``: hello,
echo, inspect (what the server understood, as JSON), json, unicode, a view that
raises, a slow view, a streamed view, a view setting headers and cookies, one that
ignores the body, a GET-only route, header-injection attempts, a redirect.
"""

from __future__ import annotations

import time

from http_server import Path, WebServer
from http_server.url import Redirect

# Small thread pool (the machine has two shared cores), no access log noise,
# and a short grace period so that stopping a server never stalls a test.
BASE_SETTINGS = {"threads": 4, "access_log": False, "graceful_timeout": 0.5}
SECRET = "secret-detail-7f3a9c"  # text of the exception raised by /boom


# ------------------------------------------------------------------------------- views


def hello(request, response):
    response.send("hello world !", 200, "text/html")


def echo(request, response):
    """The request body back, byte for byte."""
    response.send(request.body, 200, "application/octet-stream")


def inspect_request(request, response):
    """What the server understood of the request, as JSON."""
    response.sendJson({
        "method": request.method,
        "path": request.path,
        "target": request.target,
        "version": request.version,
        "query": request.query,
        "body": request.body.decode("latin-1"),
        "trailers": [list(pair) for pair in request.trailers],
        "headers": {name.lower(): request.headers[name] for name in request.headers},
    })


def json_view(request, response):
    response.sendJson({"message": "héllo wörld ✓", "items": [1, 2, 3]})


def unicode_view(request, response):
    response.send("héllo wörld ✓ 日本", 200, "text/plain")


def boom(request, response):
    raise RuntimeError(SECRET)


def slow(request, response):
    time.sleep(float(request.get_parameter("s", "0.3")))
    response.send("slow done", 200, "text/plain")


def stream(request, response):
    """``?n=3`` parts; ``gaps=1`` puts empty items between them; ``fail=1`` raises midway."""
    count = int(request.get_parameter("n", "3"))
    gaps = request.get_parameter("gaps") == "1"
    fail = request.get_parameter("fail") == "1"

    def parts():
        for i in range(count):
            if gaps:
                yield ""
                yield b""
            yield f"part-{i};"
            if fail and i == 0:
                raise RuntimeError(SECRET)

    response.stream(parts(), 200, "text/plain")


def with_headers(request, response):
    response.headers["X-Custom"] = "custom-value"
    response.set_cookie("session", "abc123", httponly=True)
    response.send("with headers", 200, "text/plain")


def ignores_body(request, response):
    """Never looks at ``request.body``."""
    response.send("ignored the body", 200, "text/plain")


def get_only(request, response):
    response.send("get only", 200, "text/plain")


INJECTED = "Set-Cookie: injected=1"


def bad_header(request, response):
    """Tries to put CR, LF or NUL on the wire through every door a view has."""
    kind = request.get_parameter("kind")
    if kind == "crlf":
        response.headers["X-Bad"] = "a\r\n" + INJECTED
    elif kind == "lf":
        response.headers["X-Bad"] = "a\n" + INJECTED
    elif kind == "cr":
        response.headers["X-Bad"] = "a\r" + INJECTED
    elif kind == "nul":
        response.headers["X-Bad"] = "a\x00b"
    elif kind == "name":
        response.headers["X-Bad\r\n" + INJECTED + "\r\nX"] = "v"
    elif kind == "cookie":
        response.set_cookie("c", "a\r\n" + INJECTED)
    elif kind == "cookie-attribute":
        response.set_cookie("c", "a", path="/\r\n" + INJECTED)
    elif kind == "cookie-plain":  # the seed's way: straight into the dict
        response.cookies["c"] = "a\r\n" + INJECTED
    elif kind == "content-type":
        response.send("x", 200, "text/plain\r\n" + INJECTED)
        return None
    elif kind == "redirect":
        return Redirect("/x\r\n" + INJECTED)
    response.send("should not be sent", 200, "text/plain")
    return None


def framing_override(request, response):
    """Tries to set the headers the server owns; ``?close=1`` asks to close the connection."""
    response.headers["Content-Length"] = "1"
    response.headers["Transfer-Encoding"] = "chunked"
    response.headers["Date"] = "yesterday"
    if request.get_parameter("close") == "1":
        response.headers["Connection"] = "close"
    response.send("framing is the server's", 200, "text/plain")


def redirect(request, response):
    return Redirect("/hello")


ROUTES = [
    Path(r"^/$", hello, name="index"),
    Path(r"^/hello$", hello, name="hello"),
    Path(r"^/echo$", echo, name="echo"),
    Path(r"^/inspect$", inspect_request, name="inspect"),
    Path(r"^/json$", json_view, name="json"),
    Path(r"^/unicode$", unicode_view, name="unicode"),
    Path(r"^/boom$", boom, name="boom"),
    Path(r"^/slow$", slow, name="slow"),
    Path(r"^/stream$", stream, name="stream"),
    Path(r"^/headers$", with_headers, name="headers"),
    Path(r"^/ignore$", ignores_body, name="ignore"),
    Path(r"^/get-only$", get_only, name="get_only", methods=["GET"]),
    Path(r"^/bad-header$", bad_header, name="bad_header"),
    Path(r"^/redirect$", redirect, name="redirect"),
    Path(r"^/framing$", framing_override, name="framing"),
]


def build_server(**settings) -> WebServer:
    return WebServer(route=ROUTES, **{**BASE_SETTINGS, **settings})

