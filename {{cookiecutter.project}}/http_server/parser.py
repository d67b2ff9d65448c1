"""A sans-IO HTTP/1.1 request parser: bytes in, events out, no sockets.

    parser = RequestParser()
    parser.feed(data)
    event = parser.next_event()   # NEED_DATA, a RequestHead, or a RequestBody

Each request yields a ``RequestHead`` once its header section is complete,
then a ``RequestBody`` once its body is (empty for requests without one);
after that the parser is ready for the next pipelined request. Anything
malformed or ambiguous raises a ``ProtocolError`` carrying its status, and
the parser stays broken: the connection must answer once and close.
"""

from __future__ import annotations

from collections.abc import Callable

from . import grammar
from .body import MemoryBody
from .errors import (
    BadRequest,
    ExpectationFailed,
    HeaderFieldsTooLarge,
    NotImplementedCoding,
    PayloadTooLarge,
    ProtocolError,
    URITooLong,
    VersionNotSupported,
)
from .events import RequestBody, RequestHead
from .target import checked_target

NEED_DATA = "NEED_DATA"

# Host values already found valid: a service is reached under a few names, and each is
# checked against the grammar once. Bounded, since clients choose them.
_VALID_HOSTS: set[str] = set()
MAX_VALID_HOSTS = 256

# Field lines already found valid (without their CRLF), and their (lower-case name, value).
# Emptied when full, so that it holds the lines clients send now, not the first ones
# ever seen. Not kept: long lines, and credentials, which must not outlive their request.
_KNOWN_FIELDS: dict[str, tuple[str, str]] = {}
MAX_KNOWN_FIELDS = 1024
MAX_KNOWN_FIELD_LINE = 512
_PRIVATE_FIELDS = frozenset({"authorization", "proxy-authorization", "cookie"})

# Field sections (every field line of a head, each with its CRLF) already found valid,
# and what they decided (_framing's tuple). Emptied when full, like the field lines.
_KNOWN_SECTIONS: dict[str, tuple] = {}
MAX_KNOWN_SECTIONS = 256
MAX_KNOWN_SECTION = 2048

# Parser states.
_HEAD = 0
_BODY_LENGTH = 1
_CHUNK_SIZE = 2
_CHUNK_DATA = 3
_TRAILERS = 4
_BROKEN = 5
_NO_BODY = 6  # head done, an empty RequestBody is the next event

MAX_CHUNK_LINE = 4096
# Empty lines a client may send before a request line (RFC 9112 section 2.2 asks a server
# to ignore at least one); more, and it is holding the connection open with nothing.
MAX_EMPTY_LINES = 4

class RequestParser:
    def __init__(
        self,
        max_request_line: int = 8192,
        max_header_size: int = 65536,
        max_header_count: int = 100,
        max_body_size: int = 10 * 1024 * 1024,
        body_sink: Callable[[], object] = MemoryBody,
    ) -> None:
        self.max_request_line = max_request_line
        self.max_header_size = max_header_size
        self.max_header_count = max_header_count
        self.max_body_size = max_body_size
        self.buffer = bytearray()  # received, not yet parsed: callers read it, never change it
        self._state = _HEAD
        self._scanned = 0  # bytes of an incomplete head already checked for bare LF
        self._remaining = 0  # body bytes still expected (length or current chunk)
        self._new_body = body_sink  # makes the sink each body is written into (body.py)
        self._body = body_sink()
        self._trailers: list[tuple[str, str]] = []
        self._trailer_size = 0
        self._empty_lines = 0  # empty lines seen before the current request line
        self._authority: str | None = None  # of an absolute-form target
        self._sections_repeat = True  # the last head's field section was known or kept
        # The method of the request being read, once known, also when it is refused:
        # an answer to HEAD never has a body, not even an error's (RFC 9110 9.3.2).
        self.method: str | None = None

    # -- public -----------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.buffer += data

    @property
    def in_request(self) -> bool:
        """True when part of a request has arrived but not all of it."""
        return self._state not in (_HEAD, _NO_BODY) or bool(self.buffer)

    @property
    def empty_lines(self) -> int:
        """Empty lines received since the last request head (ignored, but counted)."""
        return self._empty_lines

    @property
    def awaiting_body(self) -> bool:
        return self._state in (_BODY_LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILERS)

    @property
    def body_received(self) -> int:
        """Bytes of the current body read so far (de-chunked)."""
        return self._body.size

    def skip_empty_body(self) -> bool:
        """Right after a ``RequestHead``: True if the request has no body, and the parser
        is then ready for the next request, its empty ``RequestBody`` taken as read."""
        if self._state == _NO_BODY:
            self._state = _HEAD
            return True
        return False

    def close(self) -> None:
        """Drop a body still being read (the connection is closing)."""
        self._body.discard()

    def next_event(self):
        state = self._state
        try:
            if state == _HEAD:
                # Nothing more has arrived: the usual case after a request.
                return self._read_head() if self.buffer else NEED_DATA
            if state == _NO_BODY:
                self._state = _HEAD
                return RequestBody(b"", [])
            if state == _BODY_LENGTH:
                return self._read_length_body()
            if state in (_CHUNK_SIZE, _CHUNK_DATA, _TRAILERS):
                return self._read_chunked_body()
        except ProtocolError:
            self._state = _BROKEN
            self._body.discard()
            raise
        raise BadRequest("the connection is no longer usable after an error")

    # -- the head ---------------------------------------------------------

    def _read_head(self):
        buf = self.buffer
        self.method = None
        # RFC 9112 section 2.2: ignore empty lines before the request line, a few of
        # them: a client must not hold the connection open with empty lines alone.
        if buf[0] == 0x0D:  # a CR where a method starts: empty lines first (the caller saw a byte)
            while buf.startswith(b"\r\n"):
                del buf[:2]
                self._empty_lines += 1
                if self._empty_lines > MAX_EMPTY_LINES:
                    raise BadRequest("too many empty lines before the request")
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self._check_incomplete_head()
            return NEED_DATA
        size = end + 4
        # The request line and field lines, each ending in CRLF, decoded once: latin-1 maps
        # each byte to one character, so the grammar's byte classes hold as they are.
        head = buf[: end + 2].decode("latin-1")
        # The request line, and the field section: the field lines, each with its CRLF.
        request_line, _, section = head.partition("\r\n")
        if size > self.max_header_size or len(request_line) > self.max_request_line:
            self._raise_earliest_violation(size)
        # A client sends the same field lines with every request: a section seen before is
        # known with what its fields decided (see _framing), for one HTTP version. Not
        # looked up when this client's last one could not be kept: finding none would
        # cost a hash of the whole section each time.
        known = _KNOWN_SECTIONS.get(section) if self._sections_repeat else None
        try:
            if known is None:
                lines = section.split("\r\n")  # "" after the last CRLF
                count = len(lines) - 1
            else:
                count = known[1]
            if count > self.max_header_count:
                raise HeaderFieldsTooLarge("too many header fields")
            common = grammar.COMMON_REQUEST_LINE_TEXT.fullmatch(request_line)
            if common is not None:
                method, target, minor = common.groups()
                self.method = method
                version = "HTTP/1.1" if minor == "1" else "HTTP/1.0"
                self._authority = None
            else:
                method, target, version = self._parse_request_line(
                    request_line.encode("latin-1"))
            if known is None or known[0] != version or self._authority is not None:
                if known is not None:
                    lines = section.split("\r\n")
                # Each field line as (lower-case name, value): a line seen before is known
                # too (a section may differ in one line, such as a request id).
                pairs = []
                fields = _KNOWN_FIELDS
                all_known = True
                for line in lines[:-1]:
                    pair = fields.get(line)
                    if pair is None:
                        pair = _checked_field(line)
                        all_known = False
                    pairs.append(pair)
                known = self._framing(version, count, pairs)
                # Kept once all its lines are known: it holds no credential and no long
                # line then, and has come before (one with a line new each time never is).
                self._sections_repeat = (all_known and self._authority is None
                                         and len(section) <= MAX_KNOWN_SECTION)
                if self._sections_repeat:
                    if len(_KNOWN_SECTIONS) >= MAX_KNOWN_SECTIONS:
                        _KNOWN_SECTIONS.clear()
                    _KNOWN_SECTIONS[section] = known
            elif known[3] > self.max_body_size:  # known from another server's requests
                raise PayloadTooLarge("body larger than the limit")
        except ProtocolError:
            # The checks of an incomplete head come first, and the earliest in the stream
            # wins, as it would have while the head was incomplete: the answer must not
            # depend on how the bytes were split. A bare LF is among them: it is in a
            # line that the grammar refused (no line it accepts, or knows, has an LF).
            self._raise_earliest_violation(size)
            raise
        del buf[:size]
        self._scanned = 0
        self._empty_lines = 0
        _, _, headers, content_length, chunked, keep_alive, expect_continue = known
        if chunked:
            self._state = _CHUNK_SIZE
        elif content_length:
            self._state = _BODY_LENGTH
            self._remaining = content_length
        else:
            self._state = _NO_BODY
        return RequestHead(method, target, version, headers, content_length, chunked,
                           keep_alive, expect_continue)

    def _check_incomplete_head(self) -> None:
        """Refuse, before the head is complete, a head that can only be refused when it is."""
        buf = self.buffer
        self._raise_earliest_violation(len(buf), complete=False)
        self._scanned = len(buf)

    def _raise_earliest_violation(self, size: int, complete: bool = True) -> None:
        """Of a bare LF, an overlong request line and an oversized head, raise the earliest.

        ``size`` bytes of the buffer belong to this head (all of it while incomplete).
        Each violation has a position in the stream; raising the one with the lowest
        makes the answer the same however the bytes are split, since a prefix that
        shows a violation already shows every one before it.
        """
        buf = self.buffer
        found: list[tuple[int, ProtocolError]] = []
        limit = self.max_request_line
        line_end = buf.find(b"\r\n", 0, size)
        # While incomplete, a line of exactly the limit may be waiting for the LF after its CR.
        if line_end > limit or (line_end < 0 and not complete and len(buf) > limit + 1):
            found.append((limit, URITooLong("request line too long")))
        if size > self.max_header_size:
            found.append((self.max_header_size, HeaderFieldsTooLarge("header section too large")))
        # A bare LF; the LFs of a complete head's final CRLFCRLF end it, so are not scanned.
        scan_end = size - 3 if complete else size
        position = buf.find(b"\n", max(self._scanned - 1, 0), scan_end)
        while position >= 0:
            if position == 0 or buf[position - 1] != 0x0D:
                found.append((position, BadRequest("bare LF in the request head")))
                break
            position = buf.find(b"\n", position + 1, scan_end)
        if found:
            self._note_method_of(buf)
            raise min(found, key=lambda item: item[0])[1]

    def _parse_request_line(self, line: bytes) -> tuple[str, str, str]:
        match = grammar.REQUEST_LINE.fullmatch(line)
        if match is None:
            self._note_method_of(line)
            parts = line.split(b" ")
            if len(parts) == 3:
                version = grammar.HTTP_VERSION.fullmatch(parts[2])
                if version is not None and version.group(1) != b"1":
                    raise VersionNotSupported("only HTTP/1.x is supported")
            raise BadRequest("malformed request line")
        method, target, version = match.groups()
        self.method = method = method.decode("ascii")
        if version[5:6] != b"1":
            raise VersionNotSupported("only HTTP/1.x is supported")
        target, self._authority = checked_target(method, target)
        # HTTP/1.2 and later minor versions are answered as HTTP/1.1 (RFC 9110 2.5).
        return method, target, "HTTP/1.0" if version == b"HTTP/1.0" else "HTTP/1.1"

    def _note_method_of(self, data: bytes) -> None:
        """Remember the method of a head refused before it was parsed (HEAD gets no body)."""
        match = grammar.METHOD_PREFIX.match(data)
        if match is not None:
            self.method = match.group(1).decode("ascii")

    def _framing(self, version: str, count: int, pairs: list[tuple[str, str]]) -> tuple:
        """Decide the body's framing and the connection's fate from the header fields
        (``pairs``: (lower-case name, value), as they came; ``count`` of them), for a
        request of ``version``: ``(version, count, headers, content_length, chunked,
        keep_alive, expect_continue)``, ``headers`` the pairs as a tuple.

        A plain tuple, not a class: building one costs nothing in the interpreter."""
        http11 = version == "HTTP/1.1"
        content_length = None
        transfer_encoding = None
        host_count = 0
        connection = ""
        expectations: list[str] = []
        content_type = None
        framing_fields = grammar.FRAMING_FIELDS
        for name, value in pairs:
            if name not in framing_fields:
                continue
            if name == "content-length":
                if content_length is not None:
                    raise BadRequest("more than one Content-Length")
                # 1*DIGIT, at most 18 of them (an int64): ASCII digits only, as
                # isdigit() alone also takes "²" and other digits of latin-1.
                if not (value.isdigit() and value.isascii() and len(value) <= 18):
                    raise BadRequest("Content-Length is not a decimal number")
                content_length = int(value)
            elif name == "transfer-encoding":
                if transfer_encoding is not None:
                    raise BadRequest("more than one Transfer-Encoding")
                transfer_encoding = value
            elif name == "host":
                host_count += 1
                if value not in _VALID_HOSTS:
                    if grammar.HOST.fullmatch(value) is None:
                        raise BadRequest("invalid Host")
                    if len(_VALID_HOSTS) < MAX_VALID_HOSTS:
                        _VALID_HOSTS.add(value)
            elif name == "connection":
                connection = connection + "," + value.lower() if connection else value.lower()
            elif name == "expect":
                # A list: empty elements are ignored (RFC 9110 section 5.6.1.2).
                expectations += [e.strip().lower() for e in value.split(",") if e.strip()]
            elif name == "content-type":
                # Two different values: the app and a front end could each read another.
                if content_type is not None and value != content_type:
                    raise BadRequest("more than one Content-Type")
                content_type = value

        if http11 and host_count != 1:
            raise BadRequest("HTTP/1.1 needs exactly one Host" if host_count else "missing Host")
        if host_count > 1:
            raise BadRequest("more than one Host")
        if self._authority is not None:  # absolute-form: its authority wins over Host
            authority = self._authority
            pairs = [(name, authority if name == "host" else value) for name, value in pairs]
            if not host_count:
                pairs.append(("host", authority))

        chunked = False
        if transfer_encoding is not None:
            if not http11:
                raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
            if content_length is not None:
                raise BadRequest("both Content-Length and Transfer-Encoding")
            if transfer_encoding.lower() != "chunked":
                codings = [c.strip().lower() for c in transfer_encoding.split(",")]
                # RFC 9112 6.3: chunked must be the final coding, and only once (6.1).
                if codings[-1] != "chunked" or codings.count("chunked") > 1:
                    raise BadRequest("chunked must be the final transfer coding, once")
                if all(grammar.TOKEN.fullmatch(c.encode("latin-1")) for c in codings):
                    raise NotImplementedCoding("only the 'chunked' transfer coding is supported")
                raise BadRequest("malformed Transfer-Encoding")
            chunked = True

        if content_length is not None and content_length > self.max_body_size:
            raise PayloadTooLarge("body larger than the limit")

        expect_continue = False
        if expectations:
            if any(e != "100-continue" for e in expectations):
                raise ExpectationFailed("only 100-continue is supported")
            expect_continue = http11  # RFC 9110 10.1.1: ignore it from HTTP/1.0 clients

        tokens = {t.strip() for t in connection.split(",")} if connection else ()
        keep_alive = "close" not in tokens and (http11 or "keep-alive" in tokens)
        return (version, count, tuple(pairs), content_length or 0, chunked, keep_alive,
                expect_continue)

    # -- bodies -----------------------------------------------------------

    def _read_length_body(self):
        buf = self.buffer
        remaining = self._remaining
        body = self._body
        if body.size == 0 and len(buf) >= remaining:  # the whole body at once: no sink copy
            data = bytes(buf[:remaining])
            del buf[:remaining]
            self._state = _HEAD
            return RequestBody(data, [])
        take = min(len(buf), remaining)
        if take:
            body.write(buf[:take])  # as it arrives: a large body never sits whole in buf
            del buf[:take]
            self._remaining = remaining = remaining - take
        if remaining:
            return NEED_DATA
        self._state = _HEAD
        return RequestBody(body.finish(), [])

    def _read_chunked_body(self):
        buf = self.buffer
        while True:
            if self._state == _CHUNK_SIZE:
                line = self._take_line(MAX_CHUNK_LINE, BadRequest("chunk line too long"),
                                       "a chunk line")
                if line is None:
                    return NEED_DATA
                match = grammar.CHUNK_LINE.fullmatch(line)
                if match is None:
                    raise BadRequest("malformed chunk size or extension")
                size = int(match.group(1), 16)
                if size == 0:
                    self._state = _TRAILERS
                    continue
                if self._body.size + size > self.max_body_size:
                    raise PayloadTooLarge("body larger than the limit")
                self._remaining = size
                self._state = _CHUNK_DATA
            elif self._state == _CHUNK_DATA:
                if len(buf) < self._remaining + 2:
                    # Take what has arrived so a large chunk does not sit in two buffers.
                    if len(buf) > self._remaining:
                        return NEED_DATA
                    take = len(buf)
                    self._body.write(buf)
                    del buf[:]
                    self._remaining -= take
                    return NEED_DATA
                self._body.write(buf[: self._remaining])
                if buf[self._remaining : self._remaining + 2] != b"\r\n":
                    raise BadRequest("chunk data not followed by CRLF")
                del buf[: self._remaining + 2]
                self._remaining = 0
                self._state = _CHUNK_SIZE
            else:  # _TRAILERS
                line = self._take_line(self.max_header_size - self._trailer_size - 2,
                                       HeaderFieldsTooLarge("trailer section too large"),
                                       "the trailer section")
                if line is None:
                    return NEED_DATA
                self._trailer_size += len(line) + 2
                if line:
                    self._add_trailer(line)
                    continue
                body = RequestBody(self._body.finish(), self._trailers)
                self._trailers = []
                self._trailer_size = 0
                self._state = _HEAD
                return body

    def _take_line(self, limit: int, too_long: ProtocolError, where: str) -> bytes | None:
        """The next line of the body's framing, without its CRLF; None until it is whole.

        ``limit`` is the longest the line may be. The checks do not depend on how
        the bytes were split: a line is too long as soon as ``limit`` + 2 bytes show no
        CRLF, and a bare LF is refused wherever it stands.
        """
        buf = self.buffer
        end = buf.find(b"\r\n")
        if end < 0:
            if len(buf) > limit + 1:  # + 1: a line of exactly the limit may await its LF
                raise too_long
            if b"\n" in buf:
                raise BadRequest(f"bare LF in {where}")
            return None
        if end > limit:
            raise too_long
        if buf.find(b"\n", 0, end) >= 0:
            raise BadRequest(f"bare LF in {where}")
        line = bytes(buf[:end])
        del buf[: end + 2]
        return line

    def _add_trailer(self, line: bytes) -> None:
        match = grammar.FIELD_LINE.fullmatch(line)
        if match is None:
            raise BadRequest(_why_field_is_bad(line))
        name = match.group(1).decode("ascii").lower()
        if name in grammar.FORBIDDEN_TRAILERS:
            raise BadRequest(f"{name} is not allowed in a trailer")
        if len(self._trailers) >= self.max_header_count:
            raise HeaderFieldsTooLarge("too many trailer fields")
        self._trailers.append((name, (match.group(2) or b"").decode("latin-1")))


def _checked_field(line: str) -> tuple[str, str]:
    """A field line of a head, without its CRLF, as (lower-case name, value); BadRequest
    if it is not one. Remembered in ``_KNOWN_FIELDS`` if it may be."""
    match = grammar.FIELD_LINE_TEXT.fullmatch(line)
    if match is None:
        raise BadRequest(_why_field_is_bad(line.encode("latin-1")))
    name, value = match.groups("")
    pair = (name.lower(), value)
    if len(line) <= MAX_KNOWN_FIELD_LINE and pair[0] not in _PRIVATE_FIELDS:
        if len(_KNOWN_FIELDS) >= MAX_KNOWN_FIELDS:
            _KNOWN_FIELDS.clear()
        _KNOWN_FIELDS[line] = pair
    return pair


# What a refused field line is told, by grammar.field_line_fault's answer.
_FIELD_FAULTS = {
    "fold": "obsolete line folding or whitespace before a field",
    "colon": "header line without a colon",
    "space": "whitespace before the colon",
    "character": "invalid character in a header field",
}


def _why_field_is_bad(line: bytes) -> str:
    return _FIELD_FAULTS[grammar.field_line_fault(line)]
