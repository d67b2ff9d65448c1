"""What a view receives: ``Requests`` (the seed's name) and case-insensitive ``Headers``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, MutableMapping
from urllib.parse import parse_qs, unquote

from .errors import HTTPError


class Headers(MutableMapping):
    """A case-insensitive mapping of header names to values that keeps the names as given."""

    __slots__ = ("_values", "_names")

    def __init__(self, items: Iterable[tuple[str, str]] | dict | None = None) -> None:
        self._values: dict[str, str] = {}
        self._names: dict[str, str] = {}
        if items:
            self.update(items)

    @classmethod
    def from_wire(cls, fields: list[tuple[str, str]]) -> Headers:
        """Build from parsed (lower-case name, value) pairs; repeated fields are joined."""
        headers = cls.__new__(cls)
        values: dict[str, str] = {}
        for name, value in fields:
            if name in values:
                values[name] += ("; " if name == "cookie" else ", ") + value
            else:
                values[name] = value
        headers._values = values
        headers._names = {}
        return headers

    def __getitem__(self, key: str) -> str:
        return self._values[key.lower()]

    def __setitem__(self, key: str, value: str) -> None:
        lower = key.lower()
        self._values[lower] = value
        self._names[lower] = key

    def __delitem__(self, key: str) -> None:
        lower = key.lower()
        del self._values[lower]
        self._names.pop(lower, None)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._values

    def get(self, key: str, default=None):
        return self._values.get(key.lower(), default)

    def __iter__(self) -> Iterator[str]:
        names = self._names
        return (names.get(lower, lower) for lower in self._values)

    def __len__(self) -> int:
        return len(self._values)

    def items_for_wire(self) -> Iterator[tuple[str, str]]:
        names = self._names
        for lower, value in self._values.items():
            yield names.get(lower, lower), value

    def __repr__(self) -> str:
        return f"Headers({dict(self.items_for_wire())!r})"


class Requests:
    """One HTTP request. Parsing of the query string, cookies and body is lazy."""

    def __init__(
        self,
        method: str,
        target: str,
        version: str = "HTTP/1.1",
        headers: Headers | None = None,
        body: bytes = b"",
        remote_addr: str | None = None,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.remote_addr = remote_addr
        raw_path, _, self.query_string = target.partition("?")
        self.path = unquote(raw_path) if "%" in raw_path else raw_path
        self._query: dict[str, list[str]] | None = None
        self._cookies: dict[str, str] | None = None
        self._form: dict[str, str] | None = None
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

    # -- additions --------------------------------------------------------

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.query_string, keep_blank_values=True)
        return self._query

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body parsed as JSON; a body that is not JSON is answered with 400."""
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise HTTPError(400, f"request body is not valid JSON: {error}") from None

    @property
    def form(self) -> dict[str, str]:
        """Fields of an ``application/x-www-form-urlencoded`` body (first value of each)."""
        if self._form is None:
            content_type = self.headers.get("content-type", "")
            if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
                text = self.body.decode("utf-8", errors="replace")
                self._form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
            else:
                self._form = {}
        return self._form

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
