"""HTTP dates (RFC 9110 section 5.6.7): written, read, and the current second's ``Date``.

``http_date`` writes the IMF-fixdate every sender must use; ``parse_http_date``
reads the three formats every recipient must accept. ``once_per_second`` keeps
a value derived from the clock for as long as the second lasts: the ``Date``
line of every response is one, any other per-second stamp can be another.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import timezone
from email.utils import formatdate, parsedate_to_datetime
from typing import TypeVar

__all__ = ["date_line", "http_date", "once_per_second", "parse_http_date"]

MAX_DATE_LENGTH = 64  # the longest of the three formats is 29 characters; room for spaces

T = TypeVar("T")


def _imf_fixdate(seconds: int) -> str:
    return formatdate(seconds, usegmt=True)


# Files keep their modification time for long: the Last-Modified of a served folder
# is formatted once per file, not once per request.
_cached_fixdate = functools.lru_cache(maxsize=1024)(_imf_fixdate)


def http_date(timestamp: float) -> str:
    """An IMF-fixdate for ``timestamp`` (seconds since the epoch), e.g.
    ``Sun, 06 Nov 1994 08:49:37 GMT``; fractions of a second are dropped."""
    return _cached_fixdate(int(timestamp))


def parse_http_date(value: str | None) -> int | None:
    """Seconds since the epoch for an HTTP date (any of the three formats), or ``None``."""
    if not value or len(value) > MAX_DATE_LENGTH:
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


def once_per_second(render: Callable[[int], T],
                    clock: Callable[[], float] = time.time) -> Callable[[], T]:
    """A function giving ``render(now)`` for the current whole second of ``clock``,
    computed at most once per second.

    The second and its value are kept as one tuple, so a thread never sees the
    value of one second paired with another.
    """
    last: tuple[int, T | None] = (-1, None)  # no second is -1: the first call renders

    def current() -> T:
        nonlocal last
        now = int(clock())
        second, value = last
        if second != now:
            value = render(now)
            last = (now, value)
        return value

    return current


date_line = once_per_second(lambda now: b"Date: " + _imf_fixdate(now).encode("ascii") + b"\r\n")
date_line.__doc__ = "The ``Date`` header line of a response, formatted at most once per second."
