"""Middleware: functions that see every request before its view (404s and media too).

Each takes and returns ``(request, response)``; MIDDLEWARE is the order they run in.
"""

from __future__ import annotations

import logging
import re
import uuid

from http_server import Requests, Response

REQUEST_ID_HEADER = "X-Request-ID"
# An id set by a proxy or client is kept only if it is short and plain, so it
# is safe in a header and a log line; anything else is replaced.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# A child of the framework's logger: the same stderr handler, format and LOG_LEVEL.
logger = logging.getLogger("http_server.middleware")


def request_id(request: Requests, response: Response) -> tuple[Requests, Response]:
    """Give every request an X-Request-ID: the caller's if valid, a new uuid4 hex otherwise.

    The id is set on the request too, so that views and the access log (with
    LOG_FORMAT=json) see the same value as the client.
    """
    incoming = request.get_header(REQUEST_ID_HEADER)
    if incoming is not None and VALID_REQUEST_ID.fullmatch(incoming):
        value = incoming
    else:
        value = uuid.uuid4().hex
    request.headers[REQUEST_ID_HEADER] = value
    response.headers[REQUEST_ID_HEADER] = value
    return request, response


def referer(request: Requests, response: Response) -> tuple[Requests, Response]:
    """Log where a visitor came from, when the browser says (the framework's example)."""
    came_from = request.get_header("Referer")
    if came_from is not None:
        # %r quotes and escapes: a decoded path or a Referer cannot forge a log line.
        logger.info("%r reached from %r", request.path, came_from)
    return request, response


MIDDLEWARE = [request_id, referer]
