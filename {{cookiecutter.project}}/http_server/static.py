"""Static files: the ``fileServer`` mounts, served the way nginx would.

``StaticFiles(prefix, root)`` answers GET and HEAD for the files below
``root`` under the URL ``prefix``:

* Safety first. The file is chosen from the *raw* request target, segment by
  segment: each segment is percent-decoded once, and a decoded segment that
  contains ``/``, ``\\``, NUL or another control character, or that is ``.``
  or ``..`` (also with a ``;parameter``, the ``..;/`` trick), or that is empty
  (``/media//etc/hostname``) refuses the request with 404. The joined path is
  then resolved with ``os.path.realpath`` and must lie inside
  ``realpath(root)``, so a symlink pointing out of the folder is refused too;
  after ``os.open`` the opened descriptor is checked once more through
  ``/proc/self/fd`` where there is one (no check-then-open race).
  Hidden names (a segment starting with ``.``) are refused unless
  ``allow_hidden=True``; only regular files are served; a directory is a 404
  unless ``listing=True``.
* ``Content-Type`` from the extension (a fixed table, the same on every
  machine), ``charset=utf-8`` for text, ``application/octet-stream``
  otherwise; ``X-Content-Type-Options: nosniff``.
* A strong ``ETag`` and ``Last-Modified``; the preconditions of RFC 9110
  section 13.2.2 (``If-Match``/``If-Unmodified-Since`` -> 412,
  ``If-None-Match``/``If-Modified-Since`` -> 304); a settable
  ``Cache-Control``.
* ``Range`` (single ranges -> 206, unsatisfiable -> 416 with
  ``Content-Range: bytes */size``, malformed -> ignored, several ranges ->
  coalesced, then ``multipart/byteranges`` up to ``multipart_limit`` bytes in
  all, else the whole file), ``If-Range``, ``Accept-Ranges: bytes``.
* HEAD answers exactly the headers GET would, ``Range`` included (as nginx
  and Apache do; download tools probe with HEAD + Range). Other methods: 405
  with ``Allow: GET, HEAD``.
* The body goes out with ``response.send_file`` (``socket.sendfile``): a file
  is never read into memory.

The pure parts (path decoding, content type, ETag, preconditions, ranges) are
module-level functions, tested without sockets.
"""

from __future__ import annotations

import functools
import html
import mimetypes
import os
import re
import secrets
import stat
import time
from datetime import timezone
from email.utils import formatdate, parsedate_to_datetime
from typing import NoReturn
from urllib.parse import quote, unquote_to_bytes

from .errors import HTTPError

__all__ = ["StaticFiles", "UnsafePath"]

ALLOWED_METHODS = ("GET", "HEAD")
MAX_TARGET_LENGTH = 8192
MAX_SEGMENTS = 64
MAX_RANGE_HEADER = 1024
MAX_RANGES = 32
MULTIPART_LIMIT = 1024 * 1024  # at most this many bytes of ranges go out as multipart
MAX_CONDITION_HEADER = 4096


# O_NONBLOCK: opening a FIFO someone left in the folder must not block the worker.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_OPEN_FLAGS = os.O_RDONLY | _NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class UnsafePath(ValueError):
    """The request target cannot be mapped safely to a file below the root."""


# ---------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------

_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Control characters, and the separators that must never come out of a decoding.
_FORBIDDEN_IN_SEGMENT = re.compile(r"[\x00-\x1f\x7f/\\]")


def split_target(target: str | bytes) -> tuple[str, str]:
    """Split a raw request target into its raw path and raw query (fragment dropped).

    The absolute form (``http://host/path``) is reduced to its path; anything
    that is not a path (``*``, the authority form) raises ``UnsafePath``.
    """
    if isinstance(target, (bytes, bytearray)):
        target = bytes(target).decode("latin-1")
    if len(target) > MAX_TARGET_LENGTH:
        raise UnsafePath("target too long")
    target = target.split("#", 1)[0]
    if not target.startswith("/"):
        m = _ABSOLUTE_FORM.match(target)
        if m is None:
            raise UnsafePath("not an origin-form or absolute-form target")
        target = target[m.end():] or "/"
        if not target.startswith("/"):  # "http://host?x"
            target = "/" + target
    path, _, query = target.partition("?")
    return path, query


def decode_segment(raw: str) -> str:
    """Percent-decode one raw path segment once, refusing anything that is not a plain name.

    The decoded bytes are UTF-8 (undecodable bytes kept as surrogates, the way
    ``os`` functions read file names), so any real file name can be asked for.
    """
    if _BAD_PERCENT.search(raw):
        raise UnsafePath("bad percent-encoding")
    if "\\" in raw:
        raise UnsafePath("backslash")
    # Characters that were not percent-encoded (only an in-process caller sends
    # them; the wire allows ASCII only) count as UTF-8.
    name = unquote_to_bytes(raw).decode("utf-8", "surrogateescape")
    if not name:
        raise UnsafePath("empty segment")
    if _FORBIDDEN_IN_SEGMENT.search(name):
        raise UnsafePath("separator or control character in a segment")
    # "..;/" and ".;x": a path parameter glued to a dot segment (Tomcat & co).
    if name.split(";", 1)[0] in (".", ".."):
        raise UnsafePath("dot segment")
    return name


def decode_path(raw_path: str) -> tuple[list[str], bool]:
    """Decode a raw absolute path into its segments and whether it ends with ``/``.

    ``"/"`` gives ``([], True)``. Empty segments (``//``) are refused: after a
    mount's prefix they would make an absolute path.
    """
    if not raw_path.startswith("/"):
        raise UnsafePath("relative path")
    body = raw_path[1:]
    if body == "":
        return [], True
    trailing = body.endswith("/")
    if trailing:
        body = body[:-1]
    parts = body.split("/")
    if len(parts) > MAX_SEGMENTS:
        raise UnsafePath("too many segments")
    return [decode_segment(p) for p in parts], trailing


def normalize_prefix(prefix: str) -> str:
    """``"media"``, ``"/media"`` and ``"/media/"`` all become ``"/media/"``; ``""`` is ``"/"``."""
    if not isinstance(prefix, str):
        raise TypeError(f"static prefix must be a str, got {prefix!r}")
    inner = prefix.strip("/")
    for seg in inner.split("/") if inner else []:
        if seg in ("", ".", "..") or _FORBIDDEN_IN_SEGMENT.search(seg) or "%" in seg:
            raise ValueError(f"bad static prefix {prefix!r}")
    return "/" + inner + "/" if inner else "/"


def relative_segments(target: str | bytes, prefix: str) -> tuple[list[str], bool] | None:
    """The decoded segments of ``target`` below ``prefix`` (normalized), or ``None``.

    ``None`` means the target is not under this mount. ``UnsafePath`` means
    it is, or might be, and must be refused.
    """
    raw_path, _ = split_target(target)
    segments, trailing = decode_path(raw_path)
    prefix_segments = [s for s in prefix.split("/") if s]
    n = len(prefix_segments)
    if segments[:n] != prefix_segments:
        return None
    rest = segments[n:]
    if not rest and not trailing:
        # "/media" for the mount "/media/": the folder itself, without its slash.
        return [], False
    return rest, trailing


def is_inside(root_real: str, path_real: str) -> bool:
    """Whether the resolved ``path_real`` is ``root_real`` or below it.

    Both come from ``realpath`` (absolute, normalised), so comparing the
    strings is exact and much cheaper than ``commonpath`` on every request.
    """
    if not (os.path.isabs(root_real) and os.path.isabs(path_real)):
        return False
    if path_real == root_real:
        return True
    base = root_real if root_real.endswith(os.sep) else root_real + os.sep
    return path_real.startswith(base)


def resolve(
    root: str, segments: list[str], *, allow_hidden: bool = False, root_real: str | None = None
) -> str:
    """The real path of ``segments`` below ``root``, checked to stay inside it.

    Raises ``UnsafePath`` for hidden names (unless allowed) and for anything
    that resolves, through ``..`` or symlinks, outside ``realpath(root)``.
    The file need not exist (``realpath`` is not strict); opening tells.
    """
    for seg in segments:
        if seg in ("", ".", "..") or _FORBIDDEN_IN_SEGMENT.search(seg):
            raise UnsafePath("bad segment")  # decode_segment already refuses these
        if not allow_hidden and seg.startswith("."):
            raise UnsafePath("hidden name")
    if root_real is None:
        root_real = os.path.realpath(root)
    candidate = os.path.realpath(os.path.join(root_real, *segments))
    if not is_inside(root_real, candidate):
        raise UnsafePath("outside the root")
    return candidate


def fd_path(fd: int) -> str | None:
    """The path the kernel has for an open descriptor (Linux), or ``None`` if unknown."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


# ---------------------------------------------------------------------------
# Content types
# ---------------------------------------------------------------------------

# The standard library's built-in table (MimeTypes() does not read the
# machine's /etc/mime.types, so the answer is the same everywhere), plus
# what it lacks or gets old-fashioned.
_TYPES: dict[str, str] = dict(mimetypes.MimeTypes().types_map[True])
_TYPES.update(
    {
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".cjs": "text/javascript",
        ".map": "application/json",
        ".md": "text/markdown",
        ".markdown": "text/markdown",
        ".yaml": "application/yaml",
        ".yml": "application/yaml",
        ".toml": "application/toml",
        ".jsonld": "application/ld+json",
        ".webp": "image/webp",
        ".avif": "image/avif",
        ".ico": "image/x-icon",
        ".woff": "font/woff",
        ".woff2": "font/woff2",
        ".ttf": "font/ttf",
        ".otf": "font/otf",
        ".gz": "application/gzip",
        ".tgz": "application/gzip",
        ".bz2": "application/x-bzip2",
        ".xz": "application/x-xz",
        ".zst": "application/zstd",
        ".br": "application/octet-stream",
        ".7z": "application/x-7z-compressed",
        ".xml": "application/xml",
        ".opus": "audio/ogg",
        ".ogg": "audio/ogg",
        ".oga": "audio/ogg",
        ".ogv": "video/ogg",
        ".flac": "audio/flac",
        ".m4a": "audio/mp4",
        ".mkv": "video/x-matroska",
        ".apng": "image/apng",
        ".heic": "image/heic",
    }
)
_TEXTUAL = {
    "application/javascript",
    "application/json",
    "application/ld+json",
    "application/manifest+json",
    "application/xml",
    "application/yaml",
    "application/toml",
    "image/svg+xml",
}
OCTET_STREAM = "application/octet-stream"


def content_type_for(name: str) -> str:
    """The ``Content-Type`` for a file name, from its last extension only.

    ``a.tar.gz`` is ``application/gzip`` (no ``Content-Encoding``: the bytes
    are served as they are stored).
    """
    ext = os.path.splitext(name)[1].lower()
    ctype = _TYPES.get(ext)
    if ctype is None:
        return OCTET_STREAM
    if ctype.startswith("text/") or ctype in _TEXTUAL:
        return ctype + "; charset=utf-8"
    return ctype


# ---------------------------------------------------------------------------
# Validators and preconditions (RFC 9110 sections 8.8 and 13)
# ---------------------------------------------------------------------------


def make_etag(st: os.stat_result) -> str:
    """A strong entity tag from the modification time (ns) and size, quoted.

    No inode: replicas of a container serving the same files give the same tag.
    """
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'


@functools.lru_cache(maxsize=1024)
def _http_date(seconds: int) -> str:
    return formatdate(seconds, usegmt=True)


def http_date(timestamp: float) -> str:
    """An IMF-fixdate, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return _http_date(int(timestamp))


def parse_http_date(value: str | None) -> int | None:
    """Seconds since the epoch for an HTTP date (any of the three formats), or ``None``."""
    if not value or len(value) > 64:
        return None
    try:
        dt = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:  # "-0000" or asctime: HTTP dates are always GMT
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return int(dt.timestamp())
    except (OverflowError, ValueError, OSError):
        return None


# entity-tag = [ weak ] opaque-tag ; opaque-tag = DQUOTE *etagc DQUOTE
_ETAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
_LIST_SEP = re.compile(r"[ \t]*,[ \t]*")


def parse_etags(value: str | None) -> list[tuple[bool, str]] | str | None:
    """Parse ``If-Match``/``If-None-Match``: ``"*"``, a list of ``(weak, opaque)``, or ``None``.

    ``None`` means absent or malformed. Empty list elements are allowed, as
    RFC 9110 section 5.6.1 asks of recipients.
    """
    if value is None:
        return None
    value = value.strip(" \t")
    if value == "*":
        return "*"
    if not value or len(value) > MAX_CONDITION_HEADER:
        return None
    tags: list[tuple[bool, str]] = []
    pos = 0
    n = len(value)
    while pos < n:
        m = _LIST_SEP.match(value, pos)
        if m and m.end() > pos:
            pos = m.end()
            continue
        m = _ETAG.match(value, pos)
        if m is None:
            return None
        tags.append((m.group(1) is not None, m.group(2)))
        pos = m.end()
        sep = _LIST_SEP.match(value, pos)
        if pos < n and (sep is None or sep.end() == pos):
            return None
    return tags or None


def _opaque(etag: str) -> tuple[bool, str]:
    weak = etag.startswith("W/")
    return weak, etag[2:].strip('"') if weak else etag.strip('"')


def etag_match(header: str | None, etag: str, *, weak: bool) -> bool | None:
    """Whether ``etag`` matches the ``If-Match``/``If-None-Match`` value ``header``.

    ``weak=True`` compares opaque tags only; ``weak=False`` also requires both
    to be strong. ``None``: the header is absent or malformed.
    """
    tags = parse_etags(header)
    if tags is None:
        return None
    if tags == "*":
        return True
    our_weak, our_opaque = _opaque(etag)
    for is_weak, opaque in tags:
        if opaque != our_opaque:
            continue
        if weak or not (is_weak or our_weak):
            return True
    return False


def evaluate_preconditions(
    get_header, method: str, etag: str, mtime: int, now: float | None = None
) -> int | None:
    """RFC 9110 section 13.2.2 for an existing file: 412, 304, or ``None`` (go on).

    ``get_header(name)`` returns a request header's value or ``None``;
    ``mtime`` is the file's modification time in whole seconds.
    """
    now = time.time() if now is None else now
    if_match = get_header("If-Match")
    if if_match is not None:
        if not etag_match(if_match, etag, weak=False):
            return 412
    else:
        since = parse_http_date(get_header("If-Unmodified-Since"))
        if since is not None and mtime > since:
            return 412
    if_none_match = get_header("If-None-Match")
    if if_none_match is not None:
        if etag_match(if_none_match, etag, weak=True):
            return 304 if method in ("GET", "HEAD") else 412
    elif method in ("GET", "HEAD"):
        since = parse_http_date(get_header("If-Modified-Since"))
        # A date later than the server's clock is invalid and ignored.
        if since is not None and since <= now and mtime <= since:
            return 304
    return None


def if_range_allows(value: str | None, etag: str, mtime: int) -> bool:
    """Whether the ``Range`` header may be honoured given ``If-Range`` (absent -> yes).

    An entity tag must match strongly; a date must equal ``Last-Modified``
    exactly. Anything else (weak tag, malformed) means: send the whole file.
    """
    if value is None:
        return True
    value = value.strip(" \t")
    m = _ETAG.fullmatch(value)
    if m is not None:
        return m.group(1) is None and _opaque(etag) == (False, m.group(2))
    date = parse_http_date(value)
    return date is not None and date == mtime


# ---------------------------------------------------------------------------
# Ranges (RFC 9110 section 14)
# ---------------------------------------------------------------------------

UNSATISFIABLE = "unsatisfiable"
_RANGE_UNIT = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)=(.*)", re.S)
_RANGE_SPEC = re.compile(r"([0-9]+)-([0-9]*)|-([0-9]+)")
_HUGE = 1 << 63


def _number(digits: str) -> int:
    """ASCII digits (already matched) to an int, saturating absurd lengths."""
    return _HUGE if len(digits) > 18 else int(digits)


def parse_range(value: str | None, size: int) -> list[tuple[int, int]] | str | None:
    """Parse a ``Range`` header against a representation of ``size`` bytes.

    Returns ``None`` (absent, malformed, not ``bytes``, too many ranges, or an
    empty file: send the whole file), ``UNSATISFIABLE`` (416), or the
    satisfiable ranges as inclusive ``(first, last)`` pairs, in request order.
    """
    if value is None or len(value) > MAX_RANGE_HEADER or size <= 0:
        return None
    m = _RANGE_UNIT.fullmatch(value.strip(" \t"))
    if m is None or m.group(1).lower() != "bytes":
        return None
    elements = [e.strip(" \t") for e in m.group(2).split(",")]
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


# ---------------------------------------------------------------------------
# Directory listing (off by default)
# ---------------------------------------------------------------------------


def listing_page(
    url_path: str,
    directory: str,
    *,
    allow_hidden: bool = False,
    parent: bool = True,
    root_real: str | None = None,
) -> str:
    """A plain HTML index of ``directory``; names escaped for HTML and for URLs.

    ``parent``: link ``../`` (not at the mount's root). ``root_real``: leave
    out symlinks that lead outside it (they would only give 404).
    """
    entries = []
    with os.scandir(directory) as it:
        for entry in it:
            if not allow_hidden and entry.name.startswith("."):
                continue
            if root_real is not None and entry.is_symlink():
                if not is_inside(root_real, os.path.realpath(entry.path)):
                    continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            entries.append((not is_dir, entry.name, is_dir))
    entries.sort()
    title = html.escape(url_path)
    lines = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>Index of {title}</title></head>",
        f"<body><h1>Index of {title}</h1><ul>",
    ]
    if parent:
        lines.append('<li><a href="../">../</a></li>')
    for _, name, is_dir in entries:
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        href = quote(name.encode("utf-8", "surrogateescape"), safe="") + ("/" if is_dir else "")
        label = html.escape(shown + ("/" if is_dir else ""))
        lines.append(f'<li><a href="{html.escape(href)}">{label}</a></li>')
    lines.append("</ul></body></html>")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# The mount
# ---------------------------------------------------------------------------


class StaticFiles:
    """One ``fileServer(prefix, root)`` mount.

    ``cache_control``: the ``Cache-Control`` value for files (none if ``None``).
    ``listing``: answer a directory (URL ending in ``/``) with an HTML index
    instead of 404. ``allow_hidden``: serve names starting with ``.``.
    """

    def __init__(
        self,
        prefix: str,
        root: str,
        *,
        cache_control: str | None = None,
        listing: bool = False,
        allow_hidden: bool = False,
        multipart_limit: int = MULTIPART_LIMIT,
    ) -> None:
        self.prefix = normalize_prefix(prefix)
        self.root = os.path.abspath(os.fspath(root))
        if cache_control is not None and re.search(r"[\x00-\x1f\x7f]", cache_control):
            raise ValueError("cache_control contains a control character")
        self.cache_control = cache_control
        self.listing = bool(listing)
        self.allow_hidden = bool(allow_hidden)
        self.multipart_limit = multipart_limit

    def __repr__(self) -> str:
        return f"StaticFiles({self.prefix!r}, {self.root!r})"

    def matches(self, path: str) -> bool:
        """Whether the (decoded) request path is under this mount's prefix."""
        return path.startswith(self.prefix)

    # -- the answer ---------------------------------------------------------

    def serve(self, request, response) -> None:
        """Fill ``response`` in for ``request`` (whose path ``matches``).

        Refusals (404, 405, 412, 416) raise ``HTTPError`` so that the
        application's error handlers render them; headers set before
        (``Allow``, ``Content-Range``, ``ETag``) stay on the response.
        """
        method = request.method
        if method not in ALLOWED_METHODS:
            response.headers["Allow"] = ", ".join(ALLOWED_METHODS)
            raise HTTPError(405, "method not allowed")
        target = _raw_target(request)
        try:
            found = relative_segments(target, self.prefix)
            if found is None:  # the decoded path matched, the raw one does not
                raise UnsafePath("target outside the prefix")
            segments, trailing = found
            # Resolved per request, not once: the folder may be a symlink that is
            # switched to a new release while the server runs.
            root_real = os.path.realpath(self.root)
            real = resolve(self.root, segments, allow_hidden=self.allow_hidden,
                           root_real=root_real)
        except UnsafePath:
            self._not_found(response)
            return
        try:
            fd = os.open(real, _OPEN_FLAGS)
        except (OSError, ValueError):
            self._not_found(response)
            return
        fileobj = None
        try:
            st = os.fstat(fd)
            opened = fd_path(fd)
            if opened is not None and opened.startswith("/") and not is_inside(
                root_real, opened
            ):
                self._not_found(response)  # swapped for a symlink between check and open
            if stat.S_ISDIR(st.st_mode):
                self._directory(request, response, real, trailing, root_real)
                return
            if not stat.S_ISREG(st.st_mode) or trailing:
                self._not_found(response)  # FIFOs, devices, sockets; "file.txt/"
            if _NONBLOCK:
                os.set_blocking(fd, True)  # was only there so that a FIFO cannot block open()
            fileobj = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed by the writer
            name = segments[-1] if segments else real
            if self._file(request, response, fileobj, st, name):
                fd = fileobj = None  # the response owns it now
        finally:
            if fileobj is not None:
                fileobj.close()
            elif fd is not None:
                os.close(fd)

    def _file(self, request, response, fileobj, st: os.stat_result, name: str) -> bool:
        """Answer with the open regular file; True if ``send_file`` took it over."""
        size = st.st_size
        etag = make_etag(st)
        mtime = int(st.st_mtime)
        ctype = content_type_for(name)
        get = request.get_header
        headers = response.headers
        headers["ETag"] = etag
        headers["Last-Modified"] = http_date(mtime)
        headers["Accept-Ranges"] = "bytes"
        headers["X-Content-Type-Options"] = "nosniff"
        if self.cache_control is not None:
            headers["Cache-Control"] = self.cache_control

        status = evaluate_preconditions(get, request.method, etag, mtime)
        if status == 304:
            response.send(b"", 304, ctype)
            return False
        if status == 412:
            raise HTTPError(412, "precondition failed")

        ranges = None
        range_header = get("Range")
        if range_header is not None and if_range_allows(get("If-Range"), etag, mtime):
            ranges = parse_range(range_header, size)
        if ranges == UNSATISFIABLE:
            headers["Content-Range"] = f"bytes */{size}"
            raise HTTPError(416, "range not satisfiable")
        if ranges:
            ranges = coalesce(ranges)
            if len(ranges) == 1:
                start, end = ranges[0]
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
                return self._send_file(response, fileobj, start, end - start + 1, 206, ctype)
            if sum(e - s + 1 for s, e in ranges) <= self.multipart_limit:
                boundary = secrets.token_hex(16)
                body = multipart_body(fileobj, ranges, size, ctype, boundary)
                response.send(body, 206, f"multipart/byteranges; boundary={boundary}")
                return False
            # Many or large ranges: the whole file, as RFC 9110 permits.
        if size == 0:
            response.send(b"", 200, ctype)
            return False
        return self._send_file(response, fileobj, 0, size, 200, ctype)

    @staticmethod
    def _send_file(response, fileobj, offset: int, count: int, status: int, ctype: str) -> bool:
        response.send_file(fileobj, offset, count, status, ctype)
        return True

    def _directory(self, request, response, real: str, trailing: bool, root_real: str) -> None:
        if not self.listing:
            self._not_found(response)
            return
        raw_path, query = split_target(_raw_target(request))
        if not trailing:
            location = raw_path + "/" + ("?" + query if query else "")
            response.headers["Location"] = location
            response.send("Moved Permanently\n", 301, "text/plain; charset=utf-8")
            return
        try:
            page = listing_page(
                request.path,
                real,
                allow_hidden=self.allow_hidden,
                parent=real != root_real,
                root_real=root_real,
            )
        except OSError:
            self._not_found(response)
            return
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.send(page, 200, "text/html; charset=utf-8")

    @staticmethod
    def _not_found(response) -> NoReturn:
        """404 through the application's error handlers (a custom 404 page applies)."""
        raise HTTPError(404, "not found")


def _raw_target(request) -> str:
    """The raw request target; a request object without one has its decoded path re-encoded."""
    target = getattr(request, "target", None)
    if target:
        return target
    return quote(request.path, safe="/")
