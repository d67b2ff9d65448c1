"""What a view receives: ``Requests`` (the seed's name), with its ``Headers``."""

from __future__ import annotations

import io
import json
from typing import BinaryIO
from urllib.parse import parse_qs, parse_qsl, unquote

from .errors import HTTPError
from .formdata import MultiDict, parse_form
from .headers import Headers
from .multipart import FormLimits

__all__ = ["Headers", "Requests"]


class Requests:
    """One HTTP request. Parsing of the query string, cookies and body is lazy."""

    # Set by the dispatcher: the server's ``state``, and the route or static mount
    # that answers (None until one matches).
    app_state = None
    route = None
    # What is parsed on first use (None: not yet); defaults here cost a request nothing.
    _query: dict[str, list[str]] | None = None
    _cookies: dict[str, str] | None = None
    _form: MultiDict | None = None

    def __init__(
        self,
        method: str,
        target: str,
        version: str = "HTTP/1.1",
        headers: Headers | None = None,
        body: bytes | BinaryIO = b"",
        remote_addr: str | None = None,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers if headers is not None else Headers()
        if type(body) is bytes:  # the server's case
            self._body: bytes | None = body
            self._file: BinaryIO | None = None
        elif isinstance(body, (bytes, bytearray)):  # as the body setter takes it
            self._body = bytes(body)
            self._file = None
        else:  # a body spooled to a temporary file
            self._body = None
            self._file = body
        self.remote_addr = remote_addr
        if "?" in target:
            raw_path, _, self.query_string = target.partition("?")
        else:  # the usual case: no tuple to build and take apart
            raw_path, self.query_string = target, ""
        self.path = unquote(raw_path) if "%" in raw_path else raw_path
        self.trailers: list[tuple[str, str]] = []

    # -- the seed's calls -------------------------------------------------

    def get_header(self, key: str, default=None):
        return self.headers.get(key, default)

    def get_cookie(self, key: str, default=None):
        return self.cookies.get(key, default)

    def get_parameter(self, key: str, default=None):
        values = self.query.get(key)
        return values[0] if values else default

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = _parse_cookies(self.headers.get("cookie", ""))
        return self._cookies

    @property
    def body(self) -> bytes:
        """The whole body, in memory (read from its temporary file if it was spooled:
        for a body of any size, read ``stream`` instead)."""
        if self._body is None:
            self._file.seek(0)
            self._body = self._file.read()
            self._file.seek(0)
        return self._body

    @body.setter
    def body(self, value: bytes | BinaryIO) -> None:
        """Bytes, or a binary file (a body the server spooled to disk)."""
        if isinstance(value, (bytes, bytearray)):
            self._body, self._file = bytes(value), None
        else:
            self._body, self._file = None, value

    # -- additions --------------------------------------------------------

    @property
    def stream(self) -> BinaryIO:
        """The body as a binary file, at its start: in memory or on disk, any size."""
        if self._file is None:
            self._file = io.BytesIO(self._body)
        return self._file

    def close(self) -> None:
        """Release the body (its temporary file is removed) and the uploaded files; the
        server calls it after the answer, whatever happened."""
        if self._files is not None:
            for _, uploads in self._files.lists():
                for upload in uploads:
                    upload.close()
        if self._file is not None:
            self._file.close()

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.query_string, keep_blank_values=True)
        return self._query

    @property
    def path_segments(self) -> list[str]:
        """The path's segments, each percent-decoded on its own (a new list each time).

        An encoded ``/`` (``%2F``) stays inside its segment instead of splitting
        it, so ``/a%2Fb/`` gives ``["a/b", ""]`` (the last one empty: the path
        ends with ``/``). Bytes that are not UTF-8 are kept as the surrogates
        ``os`` uses for such file names, so every file name can be asked for.
        """
        raw_path = self.target.partition("?")[0]
        segments = raw_path.split("/")[1:]
        if "%" not in raw_path:
            return segments
        return [unquote(segment, errors="surrogateescape") for segment in segments]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body parsed as JSON; a body that is not JSON is answered with 400."""
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise HTTPError(400, f"request body is not valid JSON: {error}") from None

    # Set by the dispatcher from the settings (MAX_FORM_PARTS...); None: FormLimits().
    form_limits: FormLimits | None = None
    _files: MultiDict | None = None

    @property
    def form(self) -> MultiDict:
        """The text fields of an ``application/x-www-form-urlencoded`` or ``multipart/form-data``
        body: ``form[name]`` is the first value, ``form.getlist(name)`` all of them."""
        if self._form is None:
            self._read_form()
        return self._form

    @property
    def files(self) -> MultiDict:
        """The files of a ``multipart/form-data`` body: ``files[name]`` is the first
        ``UploadedFile`` of that name, ``files.getlist(name)`` all of them."""
        if self._files is None:
            self._read_form()
        return self._files

    def _read_form(self) -> None:
        """Parse the form once; a malformed multipart body raises ``MultipartError`` (400)."""
        content_type = self.headers.get("content-type", "")
        media_type = content_type.split(";")[0].strip().lower()
        files = MultiDict()
        if media_type == "application/x-www-form-urlencoded":
            text = self.body.decode("utf-8", errors="replace")
            form = MultiDict(parse_qsl(text, keep_blank_values=True))
        elif media_type == "multipart/form-data":
            # From the stream in pieces: a body spooled to disk stays there.
            form, files = parse_form(self.stream, content_type, self.form_limits)
        else:
            form = MultiDict()
        self._form, self._files = form, files

    def __repr__(self) -> str:
        return f"<Requests {self.method} {self.target}>"


def _parse_cookies(header: str) -> dict[str, str]:
    """``name=value`` pairs split on ';' by hand: one odd cookie must not hide the others."""
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, eq, value = part.partition("=")
        name = name.strip()
        if not eq or not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        cookies.setdefault(name, value)  # the first is the most specific (RFC 6265 5.4)
    return cookies
