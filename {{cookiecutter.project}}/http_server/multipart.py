"""multipart/form-data (RFC 7578): a sans-IO streaming parser, bytes in, events out.

    parser = MultipartParser(boundary_of(content_type), FormLimits())
    for event in parser.feed(data):   # PartStart, PartData, PartEnd, FormEnd
        ...
    parser.finish()                   # the body has ended: refused if the form has not

The parser is strict: anything malformed, ambiguous or past a limit raises
``MultipartError`` (a 400 with one line saying why), and however the bytes
are split the same form or the same error comes out. formdata.py turns the
events into what a view gets (``request.form``, ``request.files``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from .errors import HTTPError
from .grammar import FIELD_LINE, field_line_fault

__all__ = [
    "FormEnd", "FormLimits", "MultipartError", "MultipartParser", "PartData", "PartEnd",
    "PartStart", "boundary_of", "safe_filename",
]

# Bounds RFC 2046 leaves open: text before the first boundary and after the last one
# (both ignored), and the whitespace ("transport padding") allowed after a boundary.
MAX_PREAMBLE = 1024
MAX_EPILOGUE = 1024
MAX_PADDING = 64

# RFC 2046 5.1.1: 1 to 70 of these characters, the last one not a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_MEDIA_TYPE = re.compile(rf"[ \t]*({_TOKEN}(?:/{_TOKEN})?)[ \t]*")
# ; name=value, the value a token-like word or a quoted string (with \" and \\ escapes).
_PARAMETER = re.compile(
    rf'[ \t]*;[ \t]*({_TOKEN})[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^ \t;"\\]+))[ \t]*'
)
_TRAILING_SEMICOLON = re.compile(r"[ \t]*;[ \t]*")
_ESCAPE = re.compile(r'\\(["\\])')
# RFC 8187 ext-value (filename*): charset'language'percent-encoded UTF-8 or Latin-1.
_EXT_VALUE = re.compile(
    r"(utf-8|iso-8859-1)'[A-Za-z0-9-]*'((?:%[0-9A-Fa-f]{2}|[A-Za-z0-9!#$&+\-.^_`|~])*)",
    re.IGNORECASE,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})


class MultipartError(HTTPError):
    """A multipart/form-data body that is malformed or past a limit: answered with 400."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


@dataclass(frozen=True)
class FormLimits:
    """The bounds of one multipart form (``request.form_limits``)."""

    max_parts: int = 1000  # MAX_FORM_PARTS
    max_part_header_size: int = 8192  # bytes of one part's header section, CRLFs included
    max_part_header_lines: int = 32
    max_fields_size: int = 1024 * 1024  # bytes of all text fields together (kept in memory)


# -------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class PartStart:
    """A part's header section is complete. ``filename`` is None for a text field."""

    name: str
    filename: str | None
    content_type: str
    headers: tuple[tuple[str, str], ...]  # (lower-case name, value), in order
    offset: int  # where the part's data starts, counted from the first byte fed


@dataclass(frozen=True)
class PartData:
    data: bytes


@dataclass(frozen=True)
class PartEnd:
    pass


@dataclass(frozen=True)
class FormEnd:
    """The closing boundary: every part has been read."""


# -------------------------------------------------------------------------------- parser

_PREAMBLE, _AFTER_BOUNDARY, _HEADERS, _DATA, _CLOSED, _EPILOGUE, _BROKEN = range(7)


class MultipartParser:
    """Bytes in, events out; a ``MultipartError`` leaves it broken."""

    def __init__(self, boundary: bytes, limits: FormLimits | None = None) -> None:
        self.limits = limits or FormLimits()
        self._dash_boundary = b"--" + boundary
        self._delimiter = b"\r\n--" + boundary
        self._buffer = bytearray()
        self._consumed = 0  # bytes taken off the buffer's front since the first feed
        self._state = _PREAMBLE
        self._events: list = []
        self._parts = 0
        self._padding = 0  # whitespace seen after the current boundary
        self._header_lines: list[tuple[str, str]] = []
        self._header_size = 0
        self._in_field = False  # the current part is a text field (no filename)
        self._fields_size = 0
        self._epilogue = 0
        self._readers = {
            _PREAMBLE: self._read_preamble, _AFTER_BOUNDARY: self._read_boundary_end,
            _HEADERS: self._read_header_line, _DATA: self._read_data,
            _CLOSED: self._read_after_close, _EPILOGUE: self._read_epilogue,
        }

    def feed(self, data: bytes) -> list:
        """The events ``data`` completes (data events may come in any number of pieces)."""
        if self._state == _BROKEN:
            raise MultipartError("the multipart body was already refused")
        self._buffer += data
        try:
            while self._readers[self._state]():
                pass
        except MultipartError:
            self._state = _BROKEN
            self._buffer = bytearray()
            raise
        events, self._events = self._events, []
        return events

    def finish(self) -> list:
        """The body has ended: the form must have too."""
        if self._state == _BROKEN:
            raise MultipartError("the multipart body was already refused")
        self._state, state = _BROKEN, self._state
        if state == _PREAMBLE:
            raise MultipartError("the body does not start with the boundary of its Content-Type")
        if state not in (_CLOSED, _EPILOGUE):
            raise MultipartError("the body ends before the closing boundary")
        if state == _CLOSED and self._buffer:
            raise MultipartError("data after the closing boundary")
        return []

    def _take(self, count: int) -> bytes:
        taken = bytes(self._buffer[:count])
        del self._buffer[:count]
        self._consumed += count
        return taken

    # Each reader returns True when it moved on (to call the next), False to wait for data.

    def _read_preamble(self) -> bool:
        buf, dash = self._buffer, self._dash_boundary
        if buf.startswith(dash):
            self._take(len(dash))
        elif len(buf) < len(dash) and dash.startswith(buf):
            return False  # perhaps the boundary, not all here yet
        else:
            at = buf.find(self._delimiter)
            # A boundary not yet seen could start no earlier than this.
            earliest = at if at >= 0 else len(buf) - len(self._delimiter) + 1
            if earliest > MAX_PREAMBLE:
                raise MultipartError(
                    "the body does not start with the boundary of its Content-Type")
            if at < 0:
                return False
            self._take(at + len(self._delimiter))
        self._state = _AFTER_BOUNDARY
        return True

    def _read_boundary_end(self) -> bool:
        """After a boundary: "--" (the last one), or transport padding and CRLF (a part)."""
        buf = self._buffer
        if self._padding == 0 and buf[:1] == b"-":
            if len(buf) < 2:
                return False
            if buf[1:2] != b"-":
                raise MultipartError("a boundary line with something after it")
            self._take(2)
            self._state = _CLOSED
            self._events.append(FormEnd())
            return True
        if not self._skip_padding():
            return False
        if buf[:2] != b"\r\n":
            if buf == b"\r":
                return False
            raise MultipartError("a boundary line with something after it")
        self._take(2)
        self._padding = 0
        self._parts += 1
        if self._parts > self.limits.max_parts:
            raise MultipartError(f"more than {self.limits.max_parts} parts in the form")
        self._state = _HEADERS
        return True

    def _skip_padding(self) -> bool:
        """Take spaces and tabs; True when something else follows them."""
        buf = self._buffer
        count = len(buf) - len(buf.lstrip(b" \t"))
        self._padding += count
        if self._padding > MAX_PADDING:
            raise MultipartError("too much whitespace after a boundary")
        self._take(count)
        return bool(buf)

    def _read_header_line(self) -> bool:
        buf, limits = self._buffer, self.limits
        budget = limits.max_part_header_size - self._header_size
        end = buf.find(b"\r\n")
        # Without a CRLF in n bytes the line takes at least n + 1 with its own.
        if (end < 0 and len(buf) >= budget) or end + 2 > budget:
            raise MultipartError(
                f"a part's header section is larger than {limits.max_part_header_size} bytes")
        if end < 0:
            return False
        line = self._take(end + 2)[:-2]
        self._header_size += end + 2
        if not line:
            self._start_part()
            return True
        if len(self._header_lines) == limits.max_part_header_lines:
            raise MultipartError(
                f"a part has more than {limits.max_part_header_lines} header lines")
        match = FIELD_LINE.fullmatch(line)
        if match is None:
            raise MultipartError(_why_header_is_bad(line))
        name, value = match.groups()
        self._header_lines.append((name.decode("ascii").lower(), _decode(value or b"")))
        return True

    def _start_part(self) -> None:
        part = _part_start(tuple(self._header_lines), self._consumed)
        self._header_lines = []
        self._header_size = 0
        self._in_field = part.filename is None
        self._state = _DATA
        self._events.append(part)

    def _read_data(self) -> bool:
        buf = self._buffer
        at = buf.find(self._delimiter)
        if at < 0:
            self._emit_data(self._undecided_from())
            return False
        self._emit_data(at)
        self._take(len(self._delimiter))
        self._events.append(PartEnd())
        self._state = _AFTER_BOUNDARY
        return True

    def _undecided_from(self) -> int:
        """Where the buffer's tail starts that may be the start of the next boundary."""
        buf, delimiter = self._buffer, self._delimiter
        held = buf.find(b"\r", max(0, len(buf) - len(delimiter) + 1))
        while held >= 0 and not delimiter.startswith(buf[held:]):
            held = buf.find(b"\r", held + 1)
        return len(buf) if held < 0 else held

    def _emit_data(self, count: int) -> None:
        if not count:
            return
        if self._in_field:
            self._fields_size += count
            if self._fields_size > self.limits.max_fields_size:
                raise MultipartError(
                    f"the text fields are larger than {self.limits.max_fields_size} bytes")
        self._events.append(PartData(self._take(count)))

    def _read_after_close(self) -> bool:
        """After the closing boundary: padding, then the end, or CRLF and an epilogue."""
        buf = self._buffer
        if not self._skip_padding():
            return False
        if buf[:2] == b"\r\n":
            self._take(2)
            self._state = _EPILOGUE
            return True
        if buf == b"\r":
            return False
        raise MultipartError("data after the closing boundary")

    def _read_epilogue(self) -> bool:
        self._epilogue += len(self._buffer)
        if self._epilogue > MAX_EPILOGUE:
            raise MultipartError(f"more than {MAX_EPILOGUE} bytes after the closing boundary")
        self._take(len(self._buffer))
        return False


def _decode(value: bytes) -> str:
    """Header text as clients send it: UTF-8 (browsers, curl, requests), else Latin-1."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


_HEADER_FAULTS = {
    "fold": "a part's header line starts with whitespace (obsolete line folding)",
    "colon": "a part's header line without a colon",
    "space": "whitespace before the colon in a part's header line",
    "character": "a part's header line with an invalid character (CR, LF, NUL or another control)",
}


def _why_header_is_bad(line: bytes) -> str:
    return _HEADER_FAULTS[field_line_fault(line)]


# ------------------------------------------------------------------ what a part's headers say


def _parameters(value: str, header: str) -> tuple[str, dict[str, str]]:
    """``type; name=value; ...`` -> (type lower case, {name lower case: value})."""
    match = _MEDIA_TYPE.match(value)
    if match is None:
        raise MultipartError(f"malformed {header}")
    kind, position, parameters = match.group(1).lower(), match.end(), {}
    while position < len(value):
        match = _PARAMETER.match(value, position)
        if match is None:
            if _TRAILING_SEMICOLON.fullmatch(value, position):
                break
            raise MultipartError(f"malformed {header}")
        name = match.group(1).lower()
        if name in parameters:
            raise MultipartError(f"{header} has {name} twice")
        quoted = match.group(2)
        parameters[name] = match.group(3) if quoted is None else _ESCAPE.sub(r"\1", quoted)
        position = match.end()
    return kind, parameters


def boundary_of(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type; ``MultipartError`` if none."""
    kind, parameters = _parameters(content_type, "Content-Type")
    if kind != "multipart/form-data":
        raise MultipartError("the Content-Type is not multipart/form-data")
    boundary = parameters.get("boundary")
    if boundary is None:
        raise MultipartError("multipart/form-data without a boundary")
    if _BOUNDARY.fullmatch(boundary) is None:
        raise MultipartError("the multipart boundary is not 1 to 70 characters of RFC 2046")
    return boundary.encode("ascii")


def safe_filename(raw: str) -> str:
    """The file name alone: no folder (after the last / or \\), no control character.

    "" stays "" (a browser's file input with no file chosen). A NUL, or a name that is
    left naming no file (".", "..", "folder/"), is refused.
    """
    if "\x00" in raw:
        raise MultipartError("a filename with a NUL character")
    name = _CONTROL.sub("", re.split(r"[/\\]", raw)[-1]).strip()
    if raw and name in ("", ".", ".."):
        raise MultipartError(f"the filename {raw[:64]!r} names no file")
    return name


def _part_start(headers: tuple[tuple[str, str], ...], offset: int) -> PartStart:
    """Check a part's header section (RFC 7578 section 4) and say what the part is."""
    found: dict[str, str] = {}
    for name, value in headers:
        if name in ("content-disposition", "content-type", "content-transfer-encoding"):
            if name in found:
                raise MultipartError(f"a part with two {name} header fields")
            found[name] = value
    encoding = found.get("content-transfer-encoding", "binary").strip().lower()
    if encoding not in _IDENTITY_ENCODINGS:
        raise MultipartError(f"Content-Transfer-Encoding {encoding[:32]!r} is not supported")
    if "content-disposition" not in found:
        raise MultipartError("a part without Content-Disposition")
    kind, parameters = _parameters(found["content-disposition"], "Content-Disposition")
    if kind != "form-data":
        raise MultipartError("a part whose Content-Disposition is not form-data")
    if "name" not in parameters:
        raise MultipartError("a part without a name")
    filename = parameters.get("filename")
    if "filename*" in parameters:  # RFC 8187; RFC 7578 4.2 asks senders not to use it
        match = _EXT_VALUE.fullmatch(parameters["filename*"])
        if match is None:
            raise MultipartError("malformed filename* in Content-Disposition")
        try:
            filename = unquote(match.group(2), encoding=match.group(1), errors="strict")
        except UnicodeDecodeError:
            raise MultipartError("filename* in Content-Disposition is not UTF-8") from None
    content_type = found.get("content-type", "text/plain").strip()  # RFC 7578 4.4
    if _parameters(content_type, "Content-Type of a part")[0].count("/") != 1:
        raise MultipartError("a part's Content-Type is not a media type")
    return PartStart(parameters["name"], None if filename is None else safe_filename(filename),
                     content_type, headers, offset)
