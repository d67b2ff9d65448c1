"""Our request parser against h11's server side, over every request of the corpus.

h11 (python-hyper/h11) is a strict HTTP/1.1 parser with years of hostile input
behind it. Each corpus input goes through both, whole, and:

* we never accept what h11 refuses, unless the difference is deliberate and
  listed in ``DELIBERATE`` with its RFC section and the reason;
* where both accept, they agree on every request: method, target, version,
  header fields, body, trailers, persistence and 100-continue;
* and they agree on where each message ends, which is what request smuggling
  exploits: the input is sent again followed by one more request, and both
  must find that request, starting at the same byte.

The same checks then run over hostile mutations of the corpus
(``corpus.hostile_requests``), where a deliberate difference is recognised by
what h11 says when it refuses.

Refusing what h11 accepts is allowed (this parser is stricter in many places:
bare LF, obs-fold, control characters, duplicate framing fields, limits); the
corpus itself says which status each refusal must have.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import h11
import pytest
from corpus import INVALID, VALID, Parsed, hostile_requests
from http_server.errors import ProtocolError
from http_server.parser import (
    MAX_EMPTY_LINES,
    NEED_DATA,
    RequestBody,
    RequestHead,
    RequestParser,
)
from hypothesis import HealthCheck, given, settings


@dataclass(frozen=True)
class Difference:
    """A deliberate disagreement with h11, with the RFC section that allows our side."""

    rfc: str
    why: str
    h11_says: str = ""  # a regex matching h11's refusal; "" when h11 accepts too
    fields: tuple[str, ...] = ()  # when both accept: the request fields that differ


EMPTY_LINES = Difference(
    "RFC 9112 section 2.2",
    f"a server SHOULD ignore at least one empty line before a request line (we ignore up to "
    f"{MAX_EMPTY_LINES} and refuse more); h11 refuses any",
    h11_says=r"no request line received$",
)
CHUNK_EXTENSION_BWS = Difference(
    "RFC 9112 section 7.1.1",
    'chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ): whitespace '
    'may come before the ";"; h11 allows none there',
    h11_says=r"illegal chunk header: bytearray\(b'[0-9A-Fa-f]+( |\\t)+;",
)
HTTP10_KEEP_ALIVE = Difference(
    "RFC 9112 section 9.3 and appendix C.2.2",
    "an HTTP/1.0 request with the keep-alive connection option may persist; h11 closes "
    "every HTTP/1.0 connection after one request",
    fields=("keep_alive",),
)
REFUSED_BY_H11 = (EMPTY_LINES, CHUNK_EXTENSION_BWS)

# The corpus cases each difference shows on, by id: every other case must agree with h11.
# (Over mutated input, a refusal is recognised by what h11 says instead: REFUSED_BY_H11.)
DELIBERATE = {
    "leading-empty-lines-ignored": EMPTY_LINES,
    "four-empty-lines-before-a-request": EMPTY_LINES,
    "pipelined-requests-in-order": EMPTY_LINES,  # a stray CRLF between two requests
    "chunk-extensions-token-quoted-and-bws": CHUNK_EXTENSION_BWS,
    "chunk-extension-after-bws": CHUNK_EXTENSION_BWS,
    "http10-keep-alive": HTTP10_KEEP_ALIVE,
}

# Sent after an input both parsers accept: each must read it as the next request.
NEXT = b"GET /next HTTP/1.1\r\nHost: next.example\r\n\r\n"
NEXT_PARSED = Parsed("GET", "/next", headers=(("host", "next.example"),))

MAX_HEADER_SIZE = RequestParser().max_header_size  # so that h11's own limit is not the cause


@dataclass(frozen=True)
class Verdict:
    """What one parser made of one input."""

    requests: tuple[Parsed, ...]  # the complete requests, in order
    refused: str | None  # why the input was refused, None if it was not
    pending: bool  # part of a request has arrived and the parser waits for the rest
    rest: bytes = b""  # h11 only: bytes left unread because the connection must close

    @property
    def accepted(self) -> bool:
        return self.refused is None and not self.pending


def ours(data: bytes, limits: dict) -> Verdict:
    parser = RequestParser(**limits)
    parser.feed(data)
    requests, head = [], None
    while True:
        try:
            event = parser.next_event()
        except ProtocolError as error:
            return Verdict(tuple(requests), f"{error.status} {error}", parser.in_request)
        if event is NEED_DATA:
            return Verdict(tuple(requests), None, parser.in_request)
        if isinstance(event, RequestHead):
            head = event
            continue
        assert isinstance(event, RequestBody)
        requests.append(Parsed(
            head.method, head.target, head.version, tuple(head.headers), event.data,
            tuple(event.trailers), head.keep_alive, head.expect_continue,
        ))


def theirs(data: bytes) -> Verdict:
    """h11's server side reading ``data``, answering each request so it reads the next."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_SIZE)
    conn.receive_data(data)
    requests, head, body, expect_continue = [], None, bytearray(), False
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as error:
            return Verdict(tuple(requests), str(error), False)
        if isinstance(event, h11.Request):
            head, body = event, bytearray()
            expect_continue = conn.client_is_waiting_for_100_continue
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            target, authority = _as_origin_form(head.target.decode("ascii"))
            headers = tuple((n.decode("ascii"), v.decode("latin-1")) for n, v in head.headers)
            if authority is not None:  # RFC 9112 3.2.2: the target's authority wins over Host
                headers = tuple((n, authority if n == "host" else v) for n, v in headers)
            requests.append(Parsed(
                head.method.decode("ascii"),
                target,
                _version(head.http_version),
                headers,
                bytes(body),
                tuple((n.decode("ascii"), v.decode("latin-1")) for n, v in event.headers),
                conn.their_state is not h11.MUST_CLOSE,
                expect_continue,
            ))
            head = None
            if conn.their_state is not h11.DONE:
                break  # it must close (or would switch protocols): it reads no further
            conn.send(h11.Response(status_code=204, headers=[]))
            conn.send(h11.EndOfMessage())
            conn.start_next_cycle()
        else:  # NEED_DATA
            break
    rest = bytes(conn.trailing_data[0])
    if conn.their_state is h11.IDLE:
        return Verdict(tuple(requests), None, pending=bool(rest))
    return Verdict(tuple(requests), None, pending=head is not None, rest=rest)


def _as_origin_form(target: str) -> tuple[str, str | None]:
    """h11 hands on absolute-form as sent; ours turns it into the path the router needs,
    and takes the authority as the Host (RFC 9112 section 3.2.2): (path, authority)."""
    match = re.fullmatch(r"(?i)https?://([^/?]*)(.*)", target)
    if match is None:
        return target, None
    authority, path = match.groups()
    return (path if path.startswith("/") else "/" + path), authority


def _version(http_version: bytes) -> str:
    # RFC 9110 section 2.5: a later HTTP/1.x minor version is answered as HTTP/1.1.
    if http_version == b"1.0":
        return "HTTP/1.0"
    return "HTTP/1.1" if http_version.startswith(b"1.") else "HTTP/" + http_version.decode()


def _comparable(requests: tuple[Parsed, ...], ignored: tuple[str, ...]) -> tuple[Parsed, ...]:
    """The requests with the ``ignored`` fields blanked, and h11's one rewrite undone.

    h11 lower-cases the value of Transfer-Encoding (the coding names it acts on); ours
    hands every value on as sent, so that field's value is compared without case.
    """
    blank = {field: None for field in ignored}

    def fields(pairs):
        return tuple((n, v.lower() if n == "transfer-encoding" else v) for n, v in pairs)

    return tuple(
        dataclasses.replace(request, headers=fields(request.headers), **blank)
        for request in requests
    )


# (case id, input, limits) for every corpus case; the corpus's own xfail marks are about
# the status it expects, not about h11, so they are not carried over.
CASES = [
    pytest.param(param.id, param.values[0], param.values[-1], id=param.id)
    for param in VALID + INVALID
]


@pytest.mark.parametrize(("case_id", "data", "limits"), CASES)
def test_corpus_request_against_h11(case_id, data, limits):
    difference = DELIBERATE.get(case_id)
    if difference is not None and difference.h11_says:
        mine, h11s = ours(data, limits), theirs(data)
        assert mine.accepted, "listed in DELIBERATE, yet we refuse it: remove the entry"
        assert h11s.refused is not None and re.match(difference.h11_says, h11s.refused), (
            f"listed in DELIBERATE, yet h11 says {h11s.refused!r}: remove or fix the entry"
        )
        return
    assert_agrees_with_h11(data, limits, difference.fields if difference else ())


@settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    database=None,  # no replay of past failures: every run tries the very same inputs
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(hostile_requests())
def test_mutated_request_against_h11(case):
    data, limits = case
    h11s = theirs(data)
    if h11s.refused is not None and any(
        re.match(difference.h11_says, h11s.refused) for difference in REFUSED_BY_H11
    ):
        # h11 stops where we deliberately read on; up to there, we read what it read.
        mine = ours(data, limits)
        shared = min(len(mine.requests), len(h11s.requests))
        assert _comparable(mine.requests[:shared], ()) == _comparable(h11s.requests[:shared], ())
        return
    # An HTTP/1.0 request anywhere in the input: it may persist here, never in h11.
    http10 = b"HTTP/1.0" in data
    assert_agrees_with_h11(data, limits, HTTP10_KEEP_ALIVE.fields if http10 else ())


def assert_agrees_with_h11(data: bytes, limits: dict, ignored: tuple[str, ...]) -> None:
    """We accept only what h11 accepts, and read the same requests, ending at the same byte.

    ``ignored``: request fields left out of the comparison (a deliberate difference).
    """
    mine, h11s = ours(data, limits), theirs(data)
    # Every request we hand on, h11 reads too, and the same: the application acts on each
    # as it comes, even when the input is refused further on. (Once h11 must close the
    # connection it reads no further, and neither does our server.)
    delivered = mine.requests if not h11s.rest else mine.requests[: len(h11s.requests)]
    assert len(delivered) <= len(h11s.requests), (
        f"we hand on a request h11 never reads (h11: {h11s.refused or 'it waits for more'}): "
        "a bug, or a deliberate difference to list with its RFC section"
    )
    assert _comparable(delivered, ignored) == _comparable(
        h11s.requests[: len(delivered)], ignored
    )
    if not mine.accepted:
        return  # refusing more than h11 is allowed; the corpus says with which status
    assert h11s.accepted, (
        f"we accept what h11 refuses ({h11s.refused or 'it waits for more'}): "
        "a bug, or a deliberate difference to list with its RFC section"
    )
    assert _comparable(mine.requests, ignored) == _comparable(h11s.requests, ignored)

    # Where the message ends: both must find the next request, at the same byte.
    mine_next, h11_next = ours(data + NEXT, limits), theirs(data + NEXT)
    assert mine_next.accepted
    assert mine_next.requests == (*mine.requests, NEXT_PARSED)
    if h11_next.rest == NEXT:  # h11 stops reading (Connection: close) just before it
        h11_requests = (*h11_next.requests, NEXT_PARSED)
    else:
        assert h11_next.accepted and not h11_next.rest
        h11_requests = h11_next.requests
    assert _comparable(mine_next.requests, ignored) == _comparable(h11_requests, ignored)


def test_every_deliberate_difference_names_a_corpus_case():
    assert set(DELIBERATE) <= {param.id for param in VALID + INVALID}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", id="length"),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
            id="chunked-with-trailer",
        ),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", id="close"),
    ],
)
def test_the_harness_sees_where_h11_ends_a_message(data):
    """The harness itself: h11 reads the request that follows, or leaves it unread on close."""
    verdict = theirs(data + NEXT)
    assert verdict.accepted
    if verdict.requests[-1].keep_alive:
        assert verdict.requests[-1] == NEXT_PARSED and not verdict.rest
    else:
        assert len(verdict.requests) == 1 and verdict.rest == NEXT
