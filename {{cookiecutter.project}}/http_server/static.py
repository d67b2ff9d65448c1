"""Static files: the ``fileServer`` mounts, served the way nginx would.

``StaticFiles(prefix, root)`` answers GET and HEAD for the files below
``root`` under the URL ``prefix``. This module chooses and opens the file;
the HTTP around it is general and lives apart: validators and 304/412 in
``conditional``, ``Range`` and 206/416 in ``ranges``, the type in
``mediatypes``, dates in ``httpdate``.

* Safety first. The file is chosen from ``request.path_segments``: the path
  the parser checked, split at its slashes and each segment percent-decoded
  once. A segment that contains ``/`` (an encoded ``%2F``), ``\\``, NUL or
  another control character, that is ``.`` or ``..`` (also with a
  ``;parameter``, the ``..;/`` trick), or that is empty
  (``/media//etc/hostname``) refuses the request with 404. The joined path is
  then resolved with ``os.path.realpath`` and must lie inside
  ``realpath(root)`` (found again per request: the root may be a symlink
  switched to a new release), so a symlink pointing out of the folder is refused too;
  after ``os.open`` the opened descriptor is checked once more through
  ``/proc/self/fd`` where there is one (no check-then-open race).
  Hidden names (a segment starting with ``.``) are refused unless
  ``allow_hidden=True``; only regular files are served; a directory is a 404
  unless ``listing=True``.
* ``Content-Type`` from the extension, ``X-Content-Type-Options: nosniff``,
  a strong ``ETag`` and ``Last-Modified``, a settable ``Cache-Control``.
* HEAD answers exactly the headers GET would, ``Range`` included (as nginx
  and Apache do; download tools probe with HEAD + Range). Other methods: 405
  with ``Allow: GET, HEAD``.
* The body goes out with ``response.send_file`` (``socket.sendfile``): a file
  is never read into memory.
* A mount remembers, for each path it served a file for (up to
  ``MAX_REMEMBERED_PATHS``), what depends on the path alone: its segments,
  checked, and the file's type. The file itself is found below the root,
  checked and opened on every request. A request with no conditional or
  ``Range`` field goes straight to the whole file.
"""

from __future__ import annotations

import html
import os
import re
import stat
from urllib.parse import quote

from .conditional import not_modified
from .errors import HTTPError
from .headers import Headers
from .httpdate import http_date
from .mediatypes import content_type_for
from .ranges import MULTIPART_LIMIT, send_with_ranges
from .response import check_header

__all__ = ["StaticFiles", "UnsafePath"]

ALLOWED_METHODS = ("GET", "HEAD")
MAX_SEGMENTS = 64
# A mount remembers the paths it has served a file for, checked (see StaticFiles.serve):
# at most this many, so that requests for ever new names cannot grow it without end.
MAX_REMEMBERED_PATHS = 1024
# The request fields that make a file's answer conditional or partial. Without any of
# them, the usual GET, the answer is the whole file and none of that machinery runs.
_CONDITIONAL_FIELDS = frozenset({"if-match", "if-none-match", "if-modified-since",
                                 "if-unmodified-since", "range", "if-range"})

# O_NONBLOCK: opening a FIFO someone left in the folder must not block the worker.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_OPEN_FLAGS = os.O_RDONLY | _NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
# The root is opened only to learn its real path: O_PATH reads nothing, where there is one.
_DIRECTORY_FLAGS = (getattr(os, "O_PATH", os.O_RDONLY) | getattr(os, "O_DIRECTORY", 0)
                    | getattr(os, "O_CLOEXEC", 0))


class UnsafePath(ValueError):
    """The request path cannot be mapped safely to a file below the root."""


# ---------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------

# Control characters, and the separators that must never come out of a decoding.
_FORBIDDEN_IN_SEGMENT = re.compile(r"[\x00-\x1f\x7f/\\]")


def normalize_prefix(prefix: str) -> str:
    """``"media"``, ``"/media"`` and ``"/media/"`` all become ``"/media/"``; ``""`` is ``"/"``."""
    if not isinstance(prefix, str):
        raise TypeError(f"static prefix must be a str, got {prefix!r}")
    inner = prefix.strip("/")
    for seg in inner.split("/") if inner else []:
        if seg in ("", ".", "..") or _FORBIDDEN_IN_SEGMENT.search(seg) or "%" in seg:
            raise ValueError(f"bad static prefix {prefix!r}")
    return "/" + inner + "/" if inner else "/"


def segments_below(prefix_segments: list[str],
                   path_segments: list[str]) -> tuple[list[str], bool]:
    """The segments of a path below a mount, and whether the path ends with ``/``.

    ``path_segments`` are a request's (``Requests.path_segments``), the
    prefix's are its names (``[]`` for ``/``). A path that does not start
    with every segment of the prefix, one that has too many segments, and an
    empty segment (``//``: after the prefix it would make an absolute path)
    raise ``UnsafePath``.
    """
    trailing = bool(path_segments) and path_segments[-1] == ""
    segments = path_segments[:-1] if trailing else path_segments
    if len(segments) > MAX_SEGMENTS:
        raise UnsafePath("too many segments")
    n = len(prefix_segments)
    if segments[:n] != prefix_segments:
        # The decoded path matched the prefix, its segments do not: "/media%2F..".
        raise UnsafePath("path outside the prefix")
    return segments[n:], trailing


def check_segment(name: str, *, allow_hidden: bool = False) -> None:
    """Refuse (``UnsafePath``) a decoded segment that is not a plain name below the root."""
    if not name:
        raise UnsafePath("empty segment")
    if _FORBIDDEN_IN_SEGMENT.search(name):
        raise UnsafePath("separator or control character in a segment")
    # "..;/" and ".;x": a path parameter glued to a dot segment (Tomcat & co).
    if name.split(";", 1)[0] in (".", ".."):
        raise UnsafePath("dot segment")
    if not allow_hidden and name.startswith("."):
        raise UnsafePath("hidden name")


def is_inside(root_real: str, path_real: str) -> bool:
    """Whether ``path_real`` is ``root_real`` or below it.

    Both are absolute and normalised (from ``realpath``, or the kernel's name
    of an open descriptor), so comparing the strings is exact and much
    cheaper than ``commonpath`` on every request.
    """
    if path_real == root_real:
        return True
    base = root_real if root_real.endswith(os.sep) else root_real + os.sep
    return path_real.startswith(base)


def resolve(root_real: str, segments: list[str], *, allow_hidden: bool = False) -> str:
    """The real path of ``segments`` below ``root_real`` (a ``realpath``), checked to stay inside.

    Raises ``UnsafePath`` for a segment ``check_segment`` refuses and for
    anything that resolves, through symlinks, outside ``root_real``. The file
    need not exist (``realpath`` is not strict); opening tells.
    """
    for segment in segments:
        check_segment(segment, allow_hidden=allow_hidden)
    return resolve_checked(root_real, segments)


def resolve_checked(root_real: str, segments: list[str]) -> str:
    """``resolve`` for segments that ``check_segment`` has already let through."""
    candidate = _real_below(root_real, segments)
    if not is_inside(root_real, candidate):
        raise UnsafePath("outside the root")
    return candidate


def _real_below(root_real: str, segments: list[str]) -> str:
    """``realpath(join(root_real, *segments))``, looking only at the segments: the root
    is real already, and a path with no symlink in it is its own real path (one
    ``lstat`` per segment instead of one per component of the whole path)."""
    path = root_real
    for index, segment in enumerate(segments):
        path = os.path.join(path, segment)
        try:
            mode = os.lstat(path).st_mode
        except OSError:  # missing (realpath is not strict either: opening tells)
            return os.path.join(path, *segments[index + 1:])
        if stat.S_ISLNK(mode):
            return os.path.realpath(os.path.join(root_real, *segments))
    return path


def fd_path(fd: int) -> str | None:
    """The path the kernel has for an open descriptor (Linux), or ``None`` if unknown."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def open_inside(root_real: str, path_real: str) -> int:
    """``os.open`` a resolved path, refusing a descriptor that the kernel places outside
    ``root_real`` (a symlink swapped in between ``resolve`` and the open)."""
    try:
        fd = os.open(path_real, _OPEN_FLAGS)
    except (OSError, ValueError):
        raise UnsafePath("cannot open") from None
    opened = fd_path(fd)
    if opened is not None and opened.startswith("/") and not is_inside(root_real, opened):
        os.close(fd)
        raise UnsafePath("swapped for a symlink between check and open")
    return fd


def make_etag(st: os.stat_result) -> str:
    """A strong entity tag from the modification time (ns) and size, quoted.

    No inode: replicas of a container serving the same files give the same tag.
    """
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'


# ---------------------------------------------------------------------------
# Directory listing (off by default)
# ---------------------------------------------------------------------------


def listing_page(url_path: str, directory: str, root_real: str, *,
                 allow_hidden: bool = False) -> str:
    """A plain HTML index of ``directory`` (below ``root_real``); names escaped for HTML
    and for URLs.

    Symlinks that lead outside ``root_real`` are left out (they would only
    give 404), and so is the ``../`` link at the mount's root.
    """
    entries = []
    with os.scandir(directory) as it:
        for entry in it:
            if not allow_hidden and entry.name.startswith("."):
                continue
            if entry.is_symlink() and not is_inside(root_real, os.path.realpath(entry.path)):
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
    if directory != root_real:
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
    ``multipart_limit``: the most bytes of ranges one multipart answer carries.
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
        self.prefix_segments = self.prefix.strip("/").split("/") if self.prefix != "/" else []
        self.root = os.path.abspath(os.fspath(root))
        if cache_control is not None:
            check_header("Cache-Control", cache_control)
        self.cache_control = cache_control
        self.listing = bool(listing)
        self.allow_hidden = bool(allow_hidden)
        self.multipart_limit = multipart_limit
        # raw request path -> (segments below the mount, each let through by check_segment;
        # the file's Content-Type). Only what depends on the path alone: the file itself is
        # found, checked and opened again on every request.
        self.checked_paths: dict[str, tuple[list[str], str]] = {}

    def __repr__(self) -> str:
        return f"StaticFiles({self.prefix!r}, {self.root!r})"

    def matches(self, path: str) -> bool:
        """Whether the (decoded) request path is under this mount's prefix."""
        return path.startswith(self.prefix)

    def real_root(self) -> str:
        """``realpath(root)``, found again on every request: the folder may be a symlink
        switched to a new release while the server runs.

        Where the kernel names open descriptors, it resolves the whole path in one
        ``open``, instead of one ``lstat`` per component of the path.
        """
        try:
            fd = os.open(self.root, _DIRECTORY_FLAGS)
        except OSError:
            return os.path.realpath(self.root)  # missing: every file is a 404
        try:
            named = fd_path(fd)
        finally:
            os.close(fd)
        if named is None or not named.startswith("/"):
            return os.path.realpath(self.root)
        return named

    # -- the answer ---------------------------------------------------------

    def serve(self, request, response) -> None:
        """Fill ``response`` in for ``request`` (whose path ``matches``).

        Refusals (404, 405, 412, 416) raise ``HTTPError`` so that the
        application's error handlers render them; headers set before
        (``Allow``, ``Content-Range``, ``ETag``) stay on the response.
        """
        if request.method not in ALLOWED_METHODS:
            response.headers["Allow"] = ", ".join(ALLOWED_METHODS)
            raise HTTPError(405, "method not allowed")
        target = request.target
        raw_path = target.partition("?")[0] if "?" in target else target
        known = self.checked_paths.get(raw_path)
        try:
            root_real = self.real_root()
            if known is None:
                segments, trailing = segments_below(self.prefix_segments,
                                                    request.path_segments)
                real = resolve(root_real, segments, allow_hidden=self.allow_hidden)
            else:  # its segments passed check_segment when it was remembered
                segments, trailing = known[0], False
                real = resolve_checked(root_real, segments)
            fd = open_inside(root_real, real)
        except UnsafePath:
            raise HTTPError(404, "not found") from None
        fileobj = None
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                self._directory(request, response, real, trailing, root_real)
                return
            if not stat.S_ISREG(st.st_mode) or trailing:
                raise HTTPError(404, "not found")  # FIFOs, devices, sockets; "file.txt/"
            if _NONBLOCK:
                os.set_blocking(fd, True)  # was only there so that a FIFO cannot block open()
            fileobj = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed below or by the writer
            fd = None
            if known is None:
                known = (segments, content_type_for(segments[-1] if segments else real))
                if len(self.checked_paths) < MAX_REMEMBERED_PATHS:
                    self.checked_paths[raw_path] = known
            etag = make_etag(st)
            mtime = int(st.st_mtime)
            headers = response.headers
            headers["Accept-Ranges"] = "bytes"
            headers["X-Content-Type-Options"] = "nosniff"
            if self.cache_control is not None:
                headers["Cache-Control"] = self.cache_control
            fields = request.headers
            if type(fields) is Headers and not fields.has_any(_CONDITIONAL_FIELDS):
                headers["ETag"] = etag
                headers["Last-Modified"] = http_date(mtime)
                if st.st_size:
                    body, fileobj = fileobj, None  # send_file takes the file over
                    response.send_file(body, 0, st.st_size, 200, known[1])
                else:  # nothing for sendfile to do: the file is closed below
                    response.send(b"", 200, known[1])
                return
            if not_modified(request, response, etag=etag, last_modified=mtime):
                return
            body, fileobj = fileobj, None  # send_with_ranges takes the file over
            send_with_ranges(request, response, body, known[1], size=st.st_size, etag=etag,
                             last_modified=mtime, multipart_limit=self.multipart_limit)
        finally:
            if fileobj is not None:
                fileobj.close()
            elif fd is not None:
                os.close(fd)

    def _directory(self, request, response, real: str, trailing: bool, root_real: str) -> None:
        if not self.listing:
            raise HTTPError(404, "not found")
        if not trailing:
            raw_path = request.target.partition("?")[0]
            query = request.query_string
            response.headers["Location"] = raw_path + "/" + ("?" + query if query else "")
            response.send("Moved Permanently\n", 301, "text/plain; charset=utf-8")
            return
        try:
            page = listing_page(request.path, real, root_real, allow_hidden=self.allow_hidden)
        except OSError:
            raise HTTPError(404, "not found") from None
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.send(page, 200, "text/html; charset=utf-8")
