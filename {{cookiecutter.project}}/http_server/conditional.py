"""Conditional requests (RFC 9110 sections 8.8 and 13), for any view.

A view that knows its representation's entity tag or modification time calls
``not_modified(request, response, etag=..., last_modified=...)``: the
validators go on the response, and when the client's copy is current the
view is done (304, no body). A failed ``If-Match``/``If-Unmodified-Since``
raises ``HTTPError(412)``. The static files mount uses the same functions.

``evaluate_preconditions`` is the decision itself (section 13.2.2, in its
order) and ``if_range_allows`` the ``If-Range`` test (section 13.1.5); both
are pure and take the request's header lookup as a function.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from .errors import HTTPError
from .httpdate import http_date, parse_http_date

__all__ = [
    "etag_match",
    "evaluate_preconditions",
    "if_range_allows",
    "not_modified",
    "parse_etags",
]

MAX_CONDITION_HEADER = 4096

# entity-tag = [ weak ] opaque-tag ; opaque-tag = DQUOTE *etagc DQUOTE
_ETAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
_LIST_SEP = re.compile(r"[ \t]*,[ \t]*")
_SAFE_METHODS = ("GET", "HEAD")


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


def etag_match(header: str | None, etag: str | None, *, weak: bool) -> bool | None:
    """Whether ``etag`` matches the ``If-Match``/``If-None-Match`` value ``header``.

    ``weak=True`` compares opaque tags only; ``weak=False`` also requires both
    to be strong. ``etag=None`` (the representation has none) matches ``*``
    only. ``None``: the header is absent or malformed.
    """
    tags = parse_etags(header)
    if tags is None:
        return None
    if tags == "*":
        return True
    if etag is None:
        return False
    our_weak, our_opaque = _opaque(etag)
    for is_weak, opaque in tags:
        if opaque != our_opaque:
            continue
        if weak or not (is_weak or our_weak):
            return True
    return False


def evaluate_preconditions(
    get_header: Callable[[str], str | None],
    method: str,
    etag: str | None = None,
    mtime: int | None = None,
    now: float | None = None,
) -> int | None:
    """RFC 9110 section 13.2.2 for an existing representation: 412, 304, or ``None`` (go on).

    ``get_header(name)`` returns a request header's value or ``None``;
    ``etag`` is the representation's entity tag (quoted) and ``mtime`` its
    modification time in whole seconds, either ``None`` if it has none (the
    conditions on a missing validator are then ignored or fail, as the RFC
    says). ``now`` is the server's clock, ``time.time()`` by default.
    """
    if_match = get_header("If-Match")
    if if_match is not None:
        if not etag_match(if_match, etag, weak=False):
            return 412
    elif mtime is not None:
        since = parse_http_date(get_header("If-Unmodified-Since"))
        if since is not None and mtime > since:
            return 412
    if_none_match = get_header("If-None-Match")
    if if_none_match is not None:
        if etag_match(if_none_match, etag, weak=True):
            return 304 if method in _SAFE_METHODS else 412
    elif mtime is not None and method in _SAFE_METHODS:
        since = parse_http_date(get_header("If-Modified-Since"))
        if since is not None:
            now = time.time() if now is None else now
            # A date later than the server's clock is invalid and ignored.
            if since <= now and mtime <= since:
                return 304
    return None


def if_range_allows(value: str | None, etag: str | None, mtime: int | None) -> bool:
    """Whether the ``Range`` header may be honoured given ``If-Range`` (absent -> yes).

    An entity tag must match strongly; a date must equal ``Last-Modified``
    exactly. Anything else (weak tag, malformed, a validator the
    representation lacks) means: send the whole representation.
    """
    if value is None:
        return True
    value = value.strip(" \t")
    m = _ETAG.fullmatch(value)
    if m is not None:
        return (etag is not None and m.group(1) is None
                and _opaque(etag) == (False, m.group(2)))
    date = parse_http_date(value)
    return date is not None and date == mtime


def not_modified(request, response, *, etag: str | None = None,
                 last_modified: float | None = None) -> bool:
    """Put the validators on ``response`` and answer the request's preconditions.

    ``etag`` is an entity tag with its quotes (``'"v7"'``, or ``'W/"v7"'`` for
    a weak one); ``last_modified`` a time in seconds since the epoch. Returns
    ``True`` once a 304 is sent (the client's copy is current: the view
    returns at once), ``False`` when the view should send the representation.
    A failed precondition raises ``HTTPError(412)``, which the application's
    error handlers render.
    """
    headers = response.headers
    mtime = None
    if etag is not None:
        if _ETAG.fullmatch(etag) is None:
            raise ValueError(f"not an entity tag (it needs its quotes): {etag!r}")
        headers["ETag"] = etag
    if last_modified is not None:
        mtime = int(last_modified)
        headers["Last-Modified"] = http_date(mtime)
    status = evaluate_preconditions(request.get_header, request.method, etag, mtime)
    if status == 304:
        response.send(b"", 304, None)
        return True
    if status == 412:
        raise HTTPError(412, "precondition failed")
    return False
