"""Helpers for the framework tests over real sockets (the fixtures are in conftest.py).

* ``build_server(**settings)``: a ``WebServer`` with the test views of ``ROUTES``:
  hello, echo, inspect (what the server understood, as JSON), json, unicode,
  a view that raises, a slow view, a streamed view, a view setting headers and
  cookies, one that ignores the body, a GET-only route, header-injection
  attempts, a redirect.
* ``RawConnection``: a client socket that sends bytes as given and parses the
  answers itself, so framing (pipelining, chunked coding, close-delimited
  bodies, interim 1xx answers, the server closing the connection) can be
  checked byte for byte.
* ``request_bytes(...)``: one request on the wire.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from http_server import Path, WebServer
from http_server.url import Redirect

# Small thread pool (the machine has two shared cores), no access log noise,
# and a short grace period so that stopping a server never stalls a test.
BASE_SETTINGS = {"threads": 4, "access_log": False, "graceful_timeout": 0.5}
READ_TIMEOUT = 3.0  # the longest any single read waits for the server
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


# ---------------------------------------------------------------------- raw sockets


class ServerClosed(Exception):
    """The server closed the connection before a whole response arrived."""


@dataclass
class RawResponse:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    head: bytes = b""  # the status line and header section as received
    chunk_sizes: list[int] | None = None  # set for a chunked body
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str, default=None):
        values = self.get_all(name)
        assert len(values) <= 1, f"{name} appears {len(values)} times: {values}"
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    @property
    def names(self) -> set[str]:
        return {key.lower() for key, _ in self.headers}

    def __repr__(self) -> str:
        return f"<RawResponse {self.status} {self.reason} {len(self.body)} bytes>"


class RawConnection:
    """A client socket that sends bytes as given and parses answers itself.

    ``read_response(method)`` parses exactly one response (a 1xx too) from
    what arrived, reading more as needed; the method of the request it answers
    decides whether a body follows (HEAD: never). ``wait_closed()`` waits for
    the server to close and returns whatever it sent before doing so.
    """

    def __init__(self, port: int, timeout: float = READ_TIMEOUT) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buffer = bytearray()
        self.eof = False
        self.reset = False

    # -- low level ------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        """Read once more into the buffer; EOF sets ``eof``; raise TimeoutError at ``deadline``."""
        if self.eof:
            raise ServerClosed("the server closed the connection")
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer from the server in time")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError("no answer from the server in time") from None
        except ConnectionResetError:
            self.reset = True
            data = b""
        if not data:
            self.eof = True
            raise ServerClosed("the server closed the connection")
        self.buffer += data

    def _line(self, deadline: float, limit: int = 1 << 20) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return line
            assert b"\n" not in self.buffer, f"bare LF from the server: {bytes(self.buffer)!r}"
            assert len(self.buffer) < limit, "line too long"
            self._fill(deadline)

    def _exactly(self, count: int, deadline: float) -> bytes:
        while len(self.buffer) < count:
            self._fill(deadline)
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    # -- responses ------------------------------------------------------------

    def read_response(self, method: str = "GET", timeout: float | None = None) -> RawResponse:
        deadline = time.monotonic() + (timeout or self.timeout)
        status_line = self._line(deadline)
        version, status, reason = status_line.decode("latin-1").split(" ", 2)
        assert version in ("HTTP/1.0", "HTTP/1.1"), status_line
        head = [status_line]
        headers = []
        while True:
            line = self._line(deadline)
            head.append(line)
            if not line:
                break
            name, colon, value = line.decode("latin-1").partition(":")
            assert colon and name and name == name.strip(), f"malformed header line {line!r}"
            headers.append((name, value.strip(" \t")))
        response = RawResponse(version, int(status), reason, headers, head=b"\r\n".join(head))
        status = response.status
        if method == "HEAD" or status < 200 or status in (204, 304):
            return response
        coding = response.get("Transfer-Encoding")
        length = response.get("Content-Length")
        if coding is not None:
            assert coding.lower() == "chunked", coding
            assert length is None, "both Transfer-Encoding and Content-Length"
            self._read_chunked(response, deadline)
        elif length is not None:
            assert length.isdigit(), length
            response.body = self._exactly(int(length), deadline)
        else:  # close-delimited
            response.body = self.wait_closed(timeout or self.timeout)
        return response

    def _read_chunked(self, response: RawResponse, deadline: float) -> None:
        sizes, body = [], bytearray()
        while True:
            line = self._line(deadline)
            assert line and all(c in b"0123456789abcdefABCDEF" for c in line), (
                f"malformed chunk size line {line!r}"
            )
            size = int(line, 16)
            sizes.append(size)
            if size == 0:
                break
            body += self._exactly(size, deadline)
            assert self._exactly(2, deadline) == b"\r\n", "chunk data not followed by CRLF"
        while True:
            line = self._line(deadline)
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            response.trailers.append((name, value.strip()))
        response.chunk_sizes = sizes
        response.body = bytes(body)

    def read_final_response(self, method: str = "GET") -> RawResponse:
        """The next response that is not a 1xx."""
        while True:
            response = self.read_response(method)
            if response.status >= 200:
                return response

    def wait_closed(self, timeout: float | None = None) -> bytes:
        """Wait for the server to close; the bytes it sent first (TimeoutError if it does not)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.eof:
            try:
                self._fill(deadline)
            except ServerClosed:
                break
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def stays_quiet(self, seconds: float) -> bool:
        """True if the server neither sent anything nor closed for ``seconds``.

        Bytes that do arrive stay in ``buffer`` (an answer can still be read).
        """
        try:
            self._fill(time.monotonic() + seconds)
        except TimeoutError:
            return True
        except ServerClosed:
            return False
        return False

    def responses_until_close(self, method: str = "GET",
                              timeout: float | None = None) -> list[RawResponse]:
        """Every response the server sends before it closes the connection.

        Fails if the server is still holding the connection open after ``timeout``.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        responses = []
        while True:
            if not self.buffer:
                try:
                    self._fill(deadline)
                except ServerClosed:
                    return responses
                except TimeoutError:
                    raise AssertionError(
                        f"the server did not close the connection; responses so far: {responses}"
                    ) from None
            try:
                responses.append(self.read_response(method, deadline - time.monotonic()))
            except ServerClosed:
                raise AssertionError(
                    f"truncated response after {responses}: {bytes(self.buffer)!r}"
                ) from None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def request_bytes(method: str = "GET", target: str = "/hello", version: str = "HTTP/1.1",
                  headers: dict | list | None = None, body: bytes = b"",
                  host: str | None = "localhost") -> bytes:
    """One request, framed with Content-Length when it has a body unless headers say otherwise."""
    fields = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {name.lower() for name, _ in fields}
    if host is not None and "host" not in names:
        fields.insert(0, ("Host", host))
    if body and not names & {"content-length", "transfer-encoding"}:
        fields.append(("Content-Length", str(len(body))))
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields)
    return head.encode("latin-1") + b"\r\n" + body
