"""However a request's bytes are split on the way in, the parser's answer is the same.

test_parser.py feeds each corpus case whole, byte by byte and at a few seeded
splits. Here hypothesis searches further: inputs drawn from the corpus (valid
and invalid), made hostile by a few mutations (``corpus.hostile_requests``: a
CR, LF, space, tab, NUL, ":" or ";" inserted anywhere, a line repeated, a digit
changed, a byte dropped), then cut into up to six pieces, anywhere or at a
line ending. Fed piece by piece, the parser must give the same events, then the
same error (or none), as fed whole: an answer that depends on where a TCP
segment ended is an answer an attacker can choose.

The search is bounded and derandomized, so every run tries the same inputs.
"""

from __future__ import annotations

import re
from itertools import pairwise

from corpus import hostile_requests
from http_server.errors import ProtocolError
from http_server.parser import NEED_DATA, RequestHead, RequestParser
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

MAX_PIECES = 6
LINE_ENDING = re.compile(rb"[\r\n]")

BOUNDED = settings(
    deadline=None,
    derandomize=True,
    database=None,  # no replay of past failures: every run tries the very same inputs
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def outcome(pieces: list[bytes], limits: dict) -> tuple:
    """(events, error, waiting for more) after feeding ``pieces`` one after the other."""
    parser = RequestParser(**limits)
    events = []
    for piece in pieces:
        parser.feed(piece)
        while True:
            try:
                event = parser.next_event()
            except ProtocolError as error:
                return tuple(events), (type(error).__name__, error.status), parser.in_request
            if event is NEED_DATA:
                break
            events.append(_normalised(event))
    return tuple(events), None, parser.in_request


def _normalised(event) -> tuple:
    if isinstance(event, RequestHead):
        return (
            "head", event.method, event.target, event.version, tuple(event.headers),
            event.content_length, event.chunked, event.keep_alive, event.expect_continue,
        )
    return ("body", event.data, tuple(event.trailers))


@st.composite
def split_requests(draw) -> tuple[bytes, dict, list[bytes]]:
    """(input, limits, the input cut into at most ``MAX_PIECES`` non-empty pieces)."""
    data, limits = draw(hostile_requests())
    cuts = set()
    if len(data) > 1:
        cuts = {_cut(draw, data) for _ in range(draw(st.integers(0, MAX_PIECES - 1)))}
    bounds = [0, *sorted(cuts), len(data)]
    return data, limits, [data[a:b] for a, b in pairwise(bounds)]


def _cut(draw, data: bytes) -> int:
    """Where to cut ``data``: anywhere, or (half the time) at or just after a CR or LF.

    Line-ending bugs live where a piece ends between a CR and its LF, or starts with an LF.
    """
    at = draw(st.integers(1, len(data) - 1))
    if draw(st.booleans()):
        found = LINE_ENDING.search(data, at)
        if found is not None:
            at = min(found.start() + draw(st.integers(0, 1)), len(data) - 1)
    return at


@settings(BOUNDED, max_examples=1000)
@given(split_requests())
# Issue 14 item 3: a 505 whole but a 400 when cut after the bare LF (at byte 17).
@example((b"GET / HTTP/2.0\r\n\n\r\n\r\n", {}, [b"GET / HTTP/2.0\r\n\n", b"\r\n\r\n"]))
# The same race with a limit: 414 whole, 400 when the leading bare LF comes alone.
@example((
    b"\nGET /aaaaaaaaaaaaaaa HTTP/1.1\r\nHost: example.com\r\n\r\n",
    {"max_request_line": 29},
    [b"\n", b"GET /aaaaaaaaaaaaaaa HTTP/1.1\r\nHost: example.com\r\n\r\n"],
))
def test_the_outcome_never_depends_on_the_split(case):
    data, limits, pieces = case
    assert outcome(pieces, limits) == outcome([data], limits)


@settings(BOUNDED, max_examples=100)
@given(split_requests())
def test_split_requests_are_pieces_that_rebuild_the_input(case):
    """The strategy itself: the pieces rebuild the input, none is empty, at most six."""
    data, _, pieces = case
    assert b"".join(pieces) == data
    assert all(pieces) and len(pieces) <= MAX_PIECES
