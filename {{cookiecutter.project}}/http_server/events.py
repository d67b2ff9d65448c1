"""The parser's events: a request's head once its header section is complete, then its body."""

from __future__ import annotations


class RequestHead:
    """The request line and header fields of one request, checked and decoded."""

    __slots__ = (
        "method", "target", "version", "headers", "content_length", "chunked",
        "keep_alive", "expect_continue",
    )

    def __init__(self, method, target, version, headers, content_length, chunked,
                 keep_alive, expect_continue):
        self.method: str = method
        self.target: str = target
        self.version: str = version
        self.headers: list[tuple[str, str]] = headers  # (lower-case name, value)
        self.content_length: int = content_length
        self.chunked: bool = chunked
        self.keep_alive: bool = keep_alive
        self.expect_continue: bool = expect_continue

    @property
    def has_body(self) -> bool:
        return self.chunked or self.content_length > 0

    def __repr__(self) -> str:
        return f"RequestHead({self.method} {self.target} {self.version})"


class RequestBody:
    """The whole body of the current request (de-chunked), and its trailer fields.

    ``data`` is bytes, or a binary file positioned at its start when the parser's
    sink spooled the body to disk (body.py).
    """

    __slots__ = ("data", "trailers")

    def __init__(self, data: bytes, trailers: list[tuple[str, str]]):
        self.data = data
        self.trailers = trailers

    def __repr__(self) -> str:
        size = len(self.data) if isinstance(self.data, bytes) else "spooled"
        return f"RequestBody({size} bytes)"
