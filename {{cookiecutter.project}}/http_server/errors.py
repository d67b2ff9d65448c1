"""One exception class per failure, each carrying the status it is answered with.

Protocol errors (``ProtocolError`` and its subclasses) mean the byte stream can
no longer be trusted: the server answers once and closes the connection.
``HTTPError`` raised by a view is an ordinary answer on a healthy connection.
"""

from __future__ import annotations


class HTTPError(Exception):
    """Raise from a view or middleware to answer with ``status`` and a short text."""

    status = 500

    def __init__(self, status: int | None = None, message: str | None = None) -> None:
        if status is not None:
            self.status = status
        self.message = message
        super().__init__(message or str(self.status))


class ProtocolError(HTTPError):
    """The request is malformed or ambiguous: answer, then close the connection.

    Each subclass fixes its status, so these take only a message.
    """

    status = 400

    def __init__(self, message: str | None = None) -> None:
        super().__init__(None, message)


class BadRequest(ProtocolError):
    status = 400


class RequestTimeout(ProtocolError):
    status = 408


class PayloadTooLarge(ProtocolError):
    status = 413


class URITooLong(ProtocolError):
    status = 414


class ExpectationFailed(ProtocolError):
    status = 417


class HeaderFieldsTooLarge(ProtocolError):
    status = 431


class NotImplementedCoding(ProtocolError):
    """A transfer coding this server does not implement (RFC 9112 section 6.1)."""

    status = 501


class MethodNotImplemented(ProtocolError):
    """CONNECT: a method this server does not implement (RFC 9110 section 9.3.6)."""

    status = 501


class VersionNotSupported(ProtocolError):
    status = 505
