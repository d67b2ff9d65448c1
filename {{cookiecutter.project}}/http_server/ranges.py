"""Range requests (RFC 9110 section 14), for any view.

``send_with_ranges(request, response, body, content_type, ...)`` sends
``body`` (bytes, or a binary file opened for reading) whole with 200, or the
part the ``Range`` header asks for:

* one range -> 206 with ``Content-Range``; several -> coalesced, then one
  ``multipart/byteranges`` body of at most ``multipart_limit`` bytes of
  ranges in all, else the whole body (RFC 9110 lets a server ignore Range);
* nothing satisfiable -> ``HTTPError(416)`` with ``Content-Range: bytes */size``;
* a malformed header, a unit other than ``bytes``, an ``If-Range`` that no
  longer matches, a method other than GET or HEAD, an empty body -> 200.

``Accept-Ranges: bytes`` is set. A file is sent with ``response.send_file``
(``sendfile``, never read into memory) and closed once written, or at once
when the answer does not need it. The pure parts (``parse_range``,
``coalesce``, ``multipart_body``) are tested on their own.
"""

from __future__ import annotations

import io
import os
import re
import secrets
from collections.abc import Callable

from .conditional import if_range_allows
from .errors import HTTPError

__all__ = [
    "MULTIPART_LIMIT",
    "UNSATISFIABLE",
    "coalesce",
    "multipart_body",
    "parse_range",
    "send_with_ranges",
    "wanted_ranges",
]

MAX_RANGE_HEADER = 1024
MAX_RANGES = 32
MULTIPART_LIMIT = 1024 * 1024  # at most this many bytes of ranges go out as multipart
UNSATISFIABLE = "unsatisfiable"

_RANGE_SPEC = re.compile(r"([0-9]+)-([0-9]*)|-([0-9]+)")
_HUGE = 1 << 63
_BYTES_LIKE = (bytes, bytearray, memoryview)
_RANGE_METHODS = ("GET", "HEAD")  # the only ones with range handling (RFC 9110 section 14.2)


def _number(digits: str) -> int:
    """ASCII digits (already matched) to an int, saturating absurd lengths."""
    return _HUGE if len(digits) > 18 else int(digits)


def parse_range(value: str | None, size: int) -> list[tuple[int, int]] | str | None:
    """Parse a ``Range`` header against a representation of ``size`` bytes.

    Returns ``None`` (absent, malformed, not ``bytes``, too many ranges, or an
    empty representation: send it whole), ``UNSATISFIABLE`` (416), or the
    satisfiable ranges as inclusive ``(first, last)`` pairs, in request order.
    """
    if value is None or len(value) > MAX_RANGE_HEADER or size <= 0:
        return None
    # ranges-specifier = range-unit "=" range-set; the only unit there is, is "bytes".
    unit, equals, range_set = value.strip(" \t").partition("=")
    if not equals or not unit.isascii() or unit.lower() != "bytes":
        return None
    elements = [e.strip(" \t") for e in range_set.split(",")]
    specs = [e for e in elements if e]
    if not specs or len(specs) > MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for spec in specs:
        sm = _RANGE_SPEC.fullmatch(spec)
        if sm is None:
            return None
        first, last, suffix = sm.groups()
        if suffix is not None:
            length = _number(suffix)
            if length == 0:
                continue  # unsatisfiable on its own
            ranges.append((max(0, size - length), size - 1))
            continue
        start = _number(first)
        if last:
            end = _number(last)
            if end < start:
                return None  # invalid range-spec: the whole header is ignored
            end = min(end, size - 1)
        else:
            end = size - 1
        if start >= size:
            continue  # unsatisfiable on its own
        ranges.append((start, end))
    if not ranges:
        return UNSATISFIABLE
    return ranges


def coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and merge overlapping or adjacent ranges."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def multipart_body(
    fileobj, ranges: list[tuple[int, int]], size: int, content_type: str, boundary: str
) -> bytes:
    """A ``multipart/byteranges`` body (RFC 9110 section 14.6) read from ``fileobj``."""
    out = bytearray()
    for start, end in ranges:
        out += (
            f"--{boundary}\r\nContent-Type: {content_type}\r\n"
            f"Content-Range: bytes {start}-{end}/{size}\r\n\r\n"
        ).encode("latin-1")
        fileobj.seek(start)
        remaining = end - start + 1
        while remaining:
            chunk = fileobj.read(min(remaining, 65536))
            if not chunk:
                raise OSError("file shrank while reading")
            out += chunk
            remaining -= len(chunk)
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode("latin-1")
    return bytes(out)


def wanted_ranges(
    get_header: Callable[[str], str | None],
    size: int,
    etag: str | None = None,
    mtime: int | None = None,
) -> list[tuple[int, int]] | str | None:
    """The ranges a request asks of a representation (``parse_range``'s answer), once
    ``If-Range`` allowed them: ``None`` means send the whole representation."""
    value = get_header("Range")
    if value is None or not if_range_allows(get_header("If-Range"), etag, mtime):
        return None
    return parse_range(value, size)


def send_with_ranges(
    request,
    response,
    body,
    content_type: str,
    *,
    size: int | None = None,
    etag: str | None = None,
    last_modified: float | None = None,
    multipart_limit: int = MULTIPART_LIMIT,
) -> None:
    """Send ``body`` whole or the ranges the request asks for (see the module's docstring).

    ``size``: the number of bytes a file body has (its ``fstat`` size if not
    given). ``etag`` and ``last_modified`` are the validators ``If-Range`` is
    compared with: the same ones ``not_modified`` was given.
    """
    file = None if isinstance(body, _BYTES_LIKE) else body
    handed_over = False
    try:
        if size is None:
            size = len(body) if file is None else os.fstat(file.fileno()).st_size
        headers = response.headers
        if "accept-ranges" not in headers:
            headers["Accept-Ranges"] = "bytes"
        ranges = None
        if request.method in _RANGE_METHODS:
            mtime = None if last_modified is None else int(last_modified)
            ranges = wanted_ranges(request.get_header, size, etag, mtime)
        if ranges == UNSATISFIABLE:
            headers["Content-Range"] = f"bytes */{size}"
            raise HTTPError(416, "range not satisfiable")
        if ranges:
            ranges = coalesce(ranges)
            if len(ranges) == 1:
                start, end = ranges[0]
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
                handed_over = _send_part(response, body, file, start, end - start + 1, 206,
                                         content_type)
                return
            if sum(end - start + 1 for start, end in ranges) <= multipart_limit:
                boundary = secrets.token_hex(16)
                source = file if file is not None else io.BytesIO(body)
                parts = multipart_body(source, ranges, size, content_type, boundary)
                response.send(parts, 206, f"multipart/byteranges; boundary={boundary}")
                return
            # Many or large ranges: the whole body, as RFC 9110 permits.
        handed_over = _send_part(response, body, file, 0, size, 200, content_type)
    finally:
        if file is not None and not handed_over:
            file.close()


def _send_part(response, body, file, offset: int, count: int, status: int,
               content_type: str) -> bool:
    """Send ``count`` bytes from ``offset``; True if ``send_file`` took the file over."""
    if file is None:
        whole = offset == 0 and count == len(body)
        response.send(body if whole else bytes(memoryview(body)[offset:offset + count]),
                      status, content_type)
        return False
    if count == 0:  # an empty file: nothing for sendfile to do
        response.send(b"", status, content_type)
        return False
    response.send_file(file, offset, count, status, content_type)
    return True
