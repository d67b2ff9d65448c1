"""What a view fills in: ``Response``, and how it becomes bytes on the wire.

Everything a view can put in a header (names, values, cookies, a redirect
target) is checked when it is set, so no CR, LF or NUL ever reaches the
wire and a response can never be split.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from http import HTTPStatus

from . import grammar
from .headers import Headers
from .httpdate import date_line, http_date

DEFAULT_CONTENT_TYPE = "text/html; charset=utf-8"

REASONS = {status.value: status.phrase for status in HTTPStatus}
_STATUS_LINES: dict[int, bytes] = {}

# Headers the server owns: a view's value for them would contradict the framing.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "date", "connection"})

# RFC 6265 cookie-octet: no whitespace, DQUOTE, comma, semicolon, backslash or controls.
_COOKIE_VALUE = grammar.re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_COOKIE_ATTRIBUTE = grammar.re.compile(r"[\x20-\x3a\x3c-\x7e]*")  # no controls, no ';'
_SAMESITE = {"strict": "Strict", "lax": "Lax", "none": "None"}

# Compact JSON, UTF-8 as is, as json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# writes it. Its encode() builds the C encoder anew on every call, through two Python
# functions, for the encoder's record of the containers it is inside (to refuse a circular
# one), which two threads could not share. _SHARED is one C encoder with the same settings
# and no record, for every answer: a circular value makes it recurse until RecursionError,
# and only then is the value encoded again by _JSON, which refuses it as json.dumps does.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_SHARED = json.encoder.c_make_encoder and json.encoder.c_make_encoder(
    None, _JSON.default, json.encoder.encode_basestring, None, _JSON.key_separator,
    _JSON.item_separator, _JSON.sort_keys, _JSON.skipkeys, _JSON.allow_nan)


def _to_json(content) -> str:
    if _SHARED is None:  # an interpreter without the C encoder
        return _JSON.encode(content)
    try:
        return "".join(_SHARED(content, 0))
    except RecursionError:
        return _JSON.encode(content)  # ValueError if circular; else RecursionError again


_CHECKED_TYPES: set[str] = set()  # Content-Type values already known to be safe


def status_line(status: int) -> bytes:
    """``HTTP/1.1 200 OK\\r\\n``, encoded once per status code."""
    line = _STATUS_LINES.get(status)
    if line is None:
        if not 100 <= status <= 999:
            raise ValueError(f"invalid status code {status!r}")
        line = f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n".encode("ascii")
        _STATUS_LINES[status] = line
    return line


_CHECKED_NAMES: set[str] = set()  # header names already known to be tokens


def check_header(name: str, value: str) -> None:
    if name not in _CHECKED_NAMES:
        if not isinstance(name, str) or grammar.SAFE_HEADER_NAME.fullmatch(name) is None:
            raise ValueError(f"invalid header name {name!r}")
        if len(_CHECKED_NAMES) < 1024:  # a bound, since a view might use request data
            _CHECKED_NAMES.add(name)
    # Printable ASCII is always safe: the usual value needs no regex.
    if not isinstance(value, str) or (not (value.isascii() and value.isprintable())
                                      and grammar.SAFE_HEADER_VALUE.fullmatch(value) is None):
        raise ValueError(f"invalid characters in the value of header {name!r}")


class ResponseHeaders(Headers):
    """Headers a view sets: validated on the way in."""

    __slots__ = ()

    def __setitem__(self, key: str, value) -> None:
        if type(value) is not str:
            value = str(value)
        # check_header's own quick test first, inlined: this runs for every header set.
        if key not in _CHECKED_NAMES or not (value.isascii() and value.isprintable()):
            check_header(key, value)
        lower = key.lower()  # Headers.__setitem__, inlined: this runs for every header set
        self._values[lower] = value
        self._names[lower] = key


class Cookie:
    """A cookie with its attributes, as ``set_cookie`` records it."""

    __slots__ = ("value", "attributes")

    def __init__(self, value: str, attributes: list[str]):
        self.value = value
        self.attributes = attributes

    def __str__(self) -> str:
        return self.value

    def __eq__(self, other) -> bool:
        return str(self) == str(other)

    __hash__ = None


class FileBody:
    """A slice of an open file, written with ``sendfile`` by the connection."""

    __slots__ = ("file", "offset", "count")

    def __init__(self, file, offset: int, count: int):
        self.file = file
        self.offset = offset
        self.count = count

    def read_all(self) -> bytes:
        """The slice as bytes (for the in-process test client)."""
        self.file.seek(self.offset)
        return self.file.read(self.count)

    def close(self) -> None:
        self.file.close()


_new_object = object.__new__


class Response:
    """The answer a view builds. ``client`` is the client's socket (``None`` in tests)."""

    def __init__(self, client=None) -> None:
        self.client = client
        headers = _new_object(ResponseHeaders)  # Headers.__init__ without items, inlined
        headers._values = {}
        headers._names = {}
        self.headers = headers
        self.cookies: dict[str, str | Cookie] = {}
        self.status = 200
        self.content_type: str | None = DEFAULT_CONTENT_TYPE
        self.body: bytes = b""
        self.file: FileBody | None = None
        self.stream_body: Iterable | None = None
        self.sent = False

    # -- the seed's calls -------------------------------------------------

    def send_error(self, status: int, error: BaseException | None = None) -> None:
        """Answer with the default error text for ``status``."""
        self.send(error_text(status, error), status, "text/plain; charset=utf-8")

    def send(self, content="", status: int = 200,
             content_type: str | None = DEFAULT_CONTENT_TYPE) -> None:
        if isinstance(content, str):
            if content_type:
                content_type = _TEXT_TYPES.get(content_type) or _text_type(content_type)
            content = content.encode("utf-8")
        elif isinstance(content, (bytearray, memoryview)):
            content = bytes(content)
        elif not isinstance(content, bytes):
            raise TypeError(f"send() takes str or bytes, not {type(content).__name__}")
        if content_type is not None and content_type not in _CHECKED_TYPES:
            check_header("Content-Type", content_type)
            if len(_CHECKED_TYPES) < 256:  # views use a handful; a bound keeps it small
                _CHECKED_TYPES.add(content_type)
        if status not in _STATUS_LINES:
            status_line(status)  # validates the code (and remembers its line)
        self.status = status
        self.content_type = content_type
        self.body = content
        if self.file is not None:  # a body set before is replaced
            self.file.close()
            self.file = None
        self.stream_body = None
        self.sent = True

    def sendJson(self, content, status: int = 200) -> None:  # noqa: N802 - the seed's name
        self.send(_to_json(content).encode("utf-8"), status, "application/json")

    def sendJsonString(self, content: str, status: int = 200) -> None:  # noqa: N802
        self.send(content.encode("utf-8") if isinstance(content, str) else content,
                  status, "application/json")

    # -- additions --------------------------------------------------------

    def stream(self, iterable: Iterable, status: int = 200,
               content_type: str | None = DEFAULT_CONTENT_TYPE) -> None:
        """Send the items of ``iterable`` (str or bytes) as they are produced."""
        self.send(b"", status, content_type)
        self.stream_body = iterable

    def send_file(self, file, offset: int, count: int, status: int = 200,
                  content_type: str | None = "application/octet-stream") -> None:
        """Send ``count`` bytes of the open binary ``file`` from ``offset``; it is closed after."""
        self.send(b"", status, content_type)
        self.file = FileBody(file, offset, count)

    def set_cookie(self, name: str, value: str, max_age: int | None = None,
                   expires: str | int | float | None = None, path: str | None = "/",
                   domain: str | None = None, secure: bool = False, httponly: bool = False,
                   samesite: str | None = None) -> None:
        if grammar.SAFE_HEADER_NAME.fullmatch(name) is None:
            raise ValueError(f"invalid cookie name {name!r}")
        if _COOKIE_VALUE.fullmatch(value) is None:
            raise ValueError(f"invalid characters in the value of cookie {name!r}")
        attributes = []
        if max_age is not None:
            attributes.append(f"Max-Age={int(max_age)}")
        if expires is not None:
            if isinstance(expires, (int, float)):
                expires = http_date(expires)
            attributes.append(f"Expires={_cookie_attribute(expires)}")
        if domain:
            attributes.append(f"Domain={_cookie_attribute(domain)}")
        if path:
            attributes.append(f"Path={_cookie_attribute(path)}")
        if secure:
            attributes.append("Secure")
        if httponly:
            attributes.append("HttpOnly")
        if samesite:
            if samesite.lower() not in _SAMESITE:
                raise ValueError("samesite must be 'Strict', 'Lax' or 'None'")
            attributes.append(f"SameSite={_SAMESITE[samesite.lower()]}")
        self.cookies[name] = Cookie(value, attributes)

    def delete_cookie(self, name: str, path: str | None = "/", domain: str | None = None) -> None:
        self.set_cookie(name, "", max_age=0, expires=0, path=path, domain=domain)

    # -- serialisation ----------------------------------------------------

    def head_bytes(self, keep_alive: bool = True, http10: bool = False,
                   chunked: bool = False) -> bytes:
        """The status line and header section, framing included."""
        status = self.status
        parts = [_STATUS_LINES.get(status) or status_line(status), date_line()]
        headers = self.headers
        if (self.content_type is not None and status != 304
                and "content-type" not in headers._values):  # keys are lower-case there
            parts.append(_content_type_line(self.content_type))
        if status not in _BODILESS_STATUSES:
            if chunked:
                parts.append(b"Transfer-Encoding: chunked\r\n")
            elif self.stream_body is None:
                length = self.file.count if self.file is not None else len(self.body)
                parts.append(_LENGTH_LINES.get(length) or _length_line(length))
        if not keep_alive:
            parts.append(b"Connection: close\r\n")
        elif http10:
            parts.append(b"Connection: keep-alive\r\n")
        parts.append(headers.wire_lines(_FRAMING_HEADERS))
        if self.cookies:
            for name, cookie in self.cookies.items():
                parts.append(set_cookie_line(name, cookie))
        parts.append(b"\r\n")
        return b"".join(parts)

    @property
    def wants_close(self) -> bool:
        value = self.headers._values.get("connection")  # keys are lower-case there
        return value is not None and value.lower() == "close"


# 1xx, 204 and 304 answers never have a body, nor a Content-Length (RFC 9110 6.4.1, 8.6).
_BODILESS_STATUSES = frozenset([*range(100, 200), 204, 304])


def status_has_body(status: int) -> bool:
    return status not in _BODILESS_STATUSES


def has_body(method: str | None, status: int) -> bool:
    """Whether the answer to ``method`` with ``status`` carries a body on the wire.

    An answer to HEAD never does, an error's included (RFC 9110 section 9.3.2); its
    header section still says what a GET would have got.
    """
    return method != "HEAD" and status not in _BODILESS_STATUSES


def error_text(status: int, error: BaseException | None = None) -> str:
    """The default error body: a short, generic text, the message of an HTTPError, never
    a traceback (a 5xx says nothing of what went wrong)."""
    reason = REASONS.get(status, "Error")
    message = getattr(error, "message", None)
    if message and status < 500:
        return f"{status} {reason}: {message}\n"
    return f"{status} {reason}\n"


# Content-Type values as sent with str content (a text/* type without a charset gets
# UTF-8's), each worked out once: views use a handful.
_TEXT_TYPES: dict[str, str] = {}


def _text_type(content_type: str) -> str:
    sent = content_type
    if content_type.startswith("text/") and "charset" not in content_type:
        sent = content_type + "; charset=utf-8"
    if len(_TEXT_TYPES) < 256:
        _TEXT_TYPES[content_type] = sent
    return sent


# The Content-Length lines of small bodies, formatted once: most answers are small and few.
_LENGTH_LINES: dict[int, bytes] = {}
_SMALL_BODY = 65536


def _length_line(length: int) -> bytes:
    line = b"Content-Length: %d\r\n" % length
    if length < _SMALL_BODY and len(_LENGTH_LINES) < 4096:
        _LENGTH_LINES[length] = line
    return line


@functools.lru_cache(maxsize=256)
def _content_type_line(content_type: str) -> bytes:
    return b"Content-Type: " + content_type.encode("latin-1") + b"\r\n"


def _cookie_attribute(value: str) -> str:
    if _COOKIE_ATTRIBUTE.fullmatch(value) is None:
        raise ValueError(f"invalid characters in cookie attribute {value!r}")
    return value


def set_cookie_line(name: str, cookie) -> bytes:
    if isinstance(cookie, Cookie):
        value, attributes = cookie.value, cookie.attributes
    else:  # a plain value put straight into response.cookies, as in the seed
        value, attributes = str(cookie), ["Path=/"]
        valid_name = grammar.SAFE_HEADER_NAME.fullmatch(name) is not None
        if not valid_name or _COOKIE_VALUE.fullmatch(value) is None:
            raise ValueError(f"invalid cookie {name!r}")
    return ("Set-Cookie: " + "; ".join([f"{name}={value}", *attributes]) + "\r\n").encode("latin-1")
