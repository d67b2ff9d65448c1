"""The raw HTTP client of the tests: bytes go out exactly as given, answers are parsed here.

* ``RawConnection``: a client connection that sends bytes as given and parses the
  answers itself, so framing (pipelining, chunked coding, close-delimited bodies,
  interim 1xx answers, the server closing the connection) can be checked byte for byte.
* ``request_bytes(...)``: one request on the wire.
* ``raw_request(port, data)``: send ``data`` on a fresh connection, everything the
  server sends until it closes.
* ``read_response(sock)``: one response from a socket the test opened itself.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

READ_TIMEOUT = 3.0  # the longest any single read waits for the server


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

    It opens a new connection to ``port`` on 127.0.0.1, or reads from ``sock``,
    a socket the caller opened and keeps.
    """

    def __init__(self, port: int | None = None, timeout: float = READ_TIMEOUT, *,
                 sock: socket.socket | None = None) -> None:
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = sock
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


def raw_request(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection; everything the server sends until it closes."""
    conn = RawConnection(port, timeout)
    try:
        conn.send(data)
        return conn.wait_closed()
    finally:
        conn.close()


def read_response(sock: socket.socket) -> bytes:
    """One response on ``sock``, a keep-alive connection the test holds itself: the status
    line, the header section and the body (decoded if chunked), as bytes.

    Nothing may follow the response yet (this reader keeps no buffer between calls:
    pipelined answers need a ``RawConnection``).
    """
    timeout = sock.gettimeout()
    conn = RawConnection(sock=sock, timeout=timeout or READ_TIMEOUT)
    try:
        response = conn.read_response()
    finally:
        sock.settimeout(timeout)  # RawConnection moves it to each read's deadline
    assert not conn.buffer, f"bytes after the response: {bytes(conn.buffer)!r}"
    return response.head + b"\r\n" + response.body
