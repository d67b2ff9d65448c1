"""The sans-IO request parser (http_server.parser), tested without sockets.

Two corpora drive most of this file (the shape of h11's and gunicorn's parser
tests): valid requests paired with the parse they must give, and invalid
requests paired with the status they must be answered with. They live in
corpus.py, shared with the other harnesses that replay them. Every input goes
through ``parse()``, which feeds it whole, one byte at a time and in a few
seeded random splits, and asserts that every way of cutting it gives the very
same events: a parser that only works when a CRLF arrives in one piece is a
parser that breaks on the first slow client.

Expectations follow RFC 9110 / RFC 9112. Where the parser disagrees, the test
keeps the RFC's answer and is marked ``xfail(strict=True, reason="parser
bug: ...")``, so fixing the parser turns it into an XPASS that must be
un-marked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from corpus import HOST, INVALID, VALID, Parsed, http
from http_server.errors import ProtocolError
from http_server.parser import NEED_DATA, RequestBody, RequestHead, RequestParser
from support.splits import splits

# --------------------------------------------------------------------------- helpers



@dataclass(frozen=True)
class Outcome:
    """Everything the parser produced from one input, however the input was cut."""

    events: tuple  # normalised events, in order
    status: int | None  # status of the ProtocolError class raised, None if none was
    pending: bool  # the parser holds part of a request and waits for more

    @property
    def requests(self) -> tuple[Parsed, ...]:
        requests, head = [], None
        for event in self.events:
            if event[0] == "head":
                assert head is None, "two heads without a body between them"
                head = event[1]
            else:
                assert head is not None, "a body without a head"
                _, data, trailers = event
                requests.append(Parsed(body=data, trailers=trailers, **head))
                head = None
        assert head is None, "a head whose body never came"
        return tuple(requests)


def _normalise(event):
    if isinstance(event, RequestHead):
        # content_length / chunked must agree with what the body turns out to be.
        if event.chunked:
            assert event.content_length == 0
        return (
            "head",
            dict(
                method=event.method,
                target=event.target,
                version=event.version,
                headers=tuple(event.headers),
                keep_alive=event.keep_alive,
                expect_continue=event.expect_continue,
            ),
        )
    assert isinstance(event, RequestBody), f"unexpected event {event!r}"
    return ("body", event.data, tuple(event.trailers))


def _feed(chunks: list[bytes], limits: dict) -> Outcome:
    parser = RequestParser(**limits)
    events = []
    for chunk in chunks:
        parser.feed(chunk)
        while True:
            try:
                event = parser.next_event()
            except ProtocolError as error:
                # The status the parser chose is its exception class's; whether the
                # instance carries it too is test_every_error_carries_its_numeric_status.
                return Outcome(tuple(events), type(error).status, parser.in_request)
            if event is NEED_DATA:
                break
            events.append(_normalise(event))
    return Outcome(tuple(events), None, parser.in_request)


def parse(data: bytes, **limits) -> Outcome:
    """Parse ``data`` cut every way ``splits`` knows; all must agree. Returns the outcome."""
    outcomes = {name: _feed(chunks, limits) for name, chunks in splits(data)}
    whole = outcomes["whole"]
    differ = {name: o for name, o in outcomes.items() if o != whole}
    assert not differ, f"the result depends on how the input is split: whole={whole}, {differ}"
    return whole



@pytest.mark.parametrize(("data", "expected", "limits"), VALID)
def test_valid_request(data, expected, limits):
    outcome = parse(data, **limits)
    assert outcome.status is None
    assert outcome.requests == expected
    assert not outcome.pending



@pytest.mark.parametrize(("data", "status", "limits"), INVALID)
def test_invalid_request(data, status, limits):
    assert parse(data, **limits).status == status


def test_every_error_carries_its_numeric_status():
    """What connection.py answers with is ``error.status``: it must be the class's number."""
    wrong = {}
    for param in INVALID:
        data, _, limits = param.values
        parser = RequestParser(**limits)
        parser.feed(data)
        try:
            while parser.next_event() is not NEED_DATA:
                pass
        except ProtocolError as error:
            if error.status != type(error).status:
                wrong[param.id] = error.status
    assert wrong == {}


# --------------------------------------------------------------------------- focused behaviour


def test_bare_lf_fails_before_the_head_could_end():
    """No CRLFCRLF ever arrives, yet the first bare LF is refused at once."""
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\n")
    with pytest.raises(ProtocolError) as error:
        parser.next_event()
    assert error.type.status == 400


def test_content_length_over_limit_is_refused_before_any_body_byte():
    parser = RequestParser(max_body_size=10)
    parser.feed(http("PUT /upload HTTP/1.1", HOST, "Content-Length: 11"))
    with pytest.raises(ProtocolError) as error:
        parser.next_event()
    assert error.type.status == 413


def test_second_request_is_not_read_into_the_first_body():
    """A pipelined request's head is not mistaken for body bytes, and vice versa."""
    second = http("GET /next HTTP/1.1", HOST)
    data = http("POST / HTTP/1.1", HOST, f"Content-Length: {len(second)}", body=second)
    requests = parse(data + second).requests
    assert [(r.method, r.target, r.body) for r in requests] == [
        ("POST", "/", second),
        ("GET", "/next", b""),
    ]


def test_head_events_come_before_the_body_arrives():
    """The head is reported as soon as it is complete, so 100-continue can be answered."""
    parser = RequestParser()
    parser.feed(http("POST / HTTP/1.1", HOST, "Content-Length: 3", "Expect: 100-continue"))
    head = parser.next_event()
    assert isinstance(head, RequestHead)
    assert head.expect_continue and head.has_body and head.content_length == 3
    assert parser.next_event() is NEED_DATA
    assert parser.awaiting_body
    parser.feed(b"abc")
    body = parser.next_event()
    assert isinstance(body, RequestBody) and body.data == b"abc"
    assert parser.next_event() is NEED_DATA
    assert not parser.in_request


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(http("GET / HTTP/1.1", HOST, "X : y"), id="error-in-the-head"),
        pytest.param(
            http("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", body=b"zz\r\n"),
            id="error-in-a-chunk-line",
        ),
        pytest.param(http("GET / HTTP/2.0", HOST), id="505"),
        pytest.param(b"\n", id="bare-lf"),
    ],
)
def test_parser_stays_broken_after_an_error(data):
    parser = RequestParser()
    parser.feed(data)
    with pytest.raises(ProtocolError):
        while parser.next_event() is not NEED_DATA:
            pass
    # Even a perfectly good request afterwards is refused: the stream is out of sync.
    parser.feed(http("GET / HTTP/1.1", HOST))
    for _ in range(2):
        with pytest.raises(ProtocolError):
            parser.next_event()


def test_long_chunked_body_fed_one_byte_at_a_time():
    rng = random.Random(2026)
    chunks = [rng.randbytes(rng.randint(1, 700)) for _ in range(40)]
    # Mix upper- and lower-case hex sizes and a few extensions.
    body = b"".join(
        (b"%X" if i % 2 else b"%x") % len(c) + (b";i=%d" % i if i % 5 == 0 else b"")
        + b"\r\n" + c + b"\r\n"
        for i, c in enumerate(chunks)
    ) + b"0\r\nX-Count: 40\r\n\r\n"
    data = http("POST /bulk HTTP/1.1", HOST, "Transfer-Encoding: chunked", body=body)
    (request,) = parse(data).requests  # parse() includes the one-byte-at-a-time feed
    assert request.body == b"".join(chunks)
    assert request.trailers == (("x-count", "40"),)


def test_splits_cover_the_input_in_many_different_ways():
    """The helper itself: every split reassembles the input, and the splits differ."""
    data = http("GET / HTTP/1.1", HOST, "X-Padding: " + "p" * 50)
    ways = dict(splits(data))
    assert all(b"".join(chunks) == data for chunks in ways.values())
    assert all(all(chunks) for chunks in ways.values())  # no empty feeds
    assert len({tuple(map(len, chunks)) for chunks in ways.values()}) == len(ways)


def test_skip_empty_body_finishes_a_request_without_a_body_at_once():
    parser = RequestParser()
    parser.feed(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.skip_empty_body()  # no RequestBody event: the next request comes next
    head = parser.next_event()
    assert head.method == "POST" and not parser.skip_empty_body()
    body = parser.next_event()  # a body that is there is never skipped
    assert isinstance(body, RequestBody) and body.data == b"ok"
    assert parser.next_event() is NEED_DATA and not parser.in_request


def _outcomes(cases) -> dict:
    outcomes = {}
    for param in cases:
        data, _, limits = param.values
        outcomes[param.id] = _feed([data], limits)
    return outcomes


def test_field_lines_seen_before_parse_as_if_never_seen(monkeypatch):
    """Field lines and whole field sections found valid are remembered with what they
    decide: every request of both corpora must parse the same with nothing known, with
    every valid line known, and with every valid section known too."""
    from http_server import parser as parser_module

    known: dict = {}
    sections: dict = {}
    monkeypatch.setattr(parser_module, "_KNOWN_FIELDS", known)
    monkeypatch.setattr(parser_module, "MAX_KNOWN_FIELDS", 1 << 30)
    monkeypatch.setattr(parser_module, "MAX_KNOWN_FIELD_LINE", 1 << 30)
    monkeypatch.setattr(parser_module, "_KNOWN_SECTIONS", sections)
    monkeypatch.setattr(parser_module, "MAX_KNOWN_SECTIONS", 1 << 30)
    monkeypatch.setattr(parser_module, "MAX_KNOWN_SECTION", 1 << 30)
    monkeypatch.setattr(parser_module, "_PRIVATE_FIELDS", frozenset())
    cases = [*VALID, *INVALID]
    cold = {}
    for param in cases:
        known.clear()
        sections.clear()
        cold.update(_outcomes([param]))
    _outcomes(cases)  # every valid line of both corpora is known now
    _outcomes(cases)  # and every valid section: one is kept once its lines are known
    assert len(known) > 50 and len(sections) > 30
    assert _outcomes(cases) == cold
    sections.clear()  # lines known, sections not
    assert _outcomes(cases) == cold


def test_known_field_lines_are_bounded_and_hold_no_credentials(monkeypatch):
    from http_server import parser as parser_module

    known: dict = {}
    monkeypatch.setattr(parser_module, "_KNOWN_FIELDS", known)
    monkeypatch.setattr(parser_module, "MAX_KNOWN_FIELDS", 3)
    sections: dict = {}
    monkeypatch.setattr(parser_module, "_KNOWN_SECTIONS", sections)
    monkeypatch.setattr(parser_module, "MAX_KNOWN_SECTIONS", 2)

    def head(*lines: bytes) -> RequestHead:
        parser = RequestParser()
        parser.feed(b"GET / HTTP/1.1\r\n" + b"".join(line + b"\r\n" for line in lines)
                    + b"\r\n")
        return parser.next_event()

    long_value = b"v" * parser_module.MAX_KNOWN_FIELD_LINE
    parsed = head(b"Host: a", b"Authorization: Bearer secret", b"Cookie: id=secret",
                  b"X-Long: " + long_value, b"Accept:  */* ")
    assert parsed.headers == (("host", "a"), ("authorization", "Bearer secret"),
                              ("cookie", "id=secret"), ("x-long", long_value.decode()),
                              ("accept", "*/*"))
    assert known == {"Host: a": ("host", "a"), "Accept:  */* ": ("accept", "*/*")}
    with pytest.raises(ProtocolError):
        head(b"Host: a", b"Bad : x")
    assert "Bad : x" not in known
    head(b"Host: a", b"X-One: 1", b"X-Two: 2")  # X-One fills it: X-Two empties it first
    assert known == {"X-Two: 2": ("x-two", "2")}
    # A whole section is kept once all its lines are known: never one with a credential or
    # a long line (those lines are never known), nor one with a line new each time.
    sections.clear()
    monkeypatch.setattr(parser_module, "MAX_KNOWN_FIELDS", 100)
    secret = (b"Host: a", b"Authorization: Bearer secret")
    long = (b"Host: a", b"X-Long: " + long_value)
    for _ in range(3):
        head(*secret)
        head(*long)
        head(b"Host: a", b"X-Id: %d" % random.randrange(1 << 60))
    assert sections == {}
    head(b"Host: b")
    assert sections == {}  # seen once
    assert head(b"Host: b").headers == (("host", "b"),)
    assert list(sections) == ["Host: b\r\n"]
    assert head(b"Host: b").headers == (("host", "b"),)  # from the section
    for host in (b"c", b"c", b"d", b"d"):  # the third fills it: emptied first
        head(b"Host: " + host)
    assert list(sections) == ["Host: d\r\n"]


def test_a_known_section_obeys_each_parser_and_each_version():
    """A field section is known from any request of the process: what it decided for
    one HTTP version or one server's limits must not leak into another's."""
    section = b"Host: x\r\nContent-Length: 100\r\nX-A: b\r\n\r\n"

    def first(data: bytes, **limits):
        parser = RequestParser(**limits)
        parser.feed(data)
        try:
            return parser.next_event()
        except ProtocolError as error:
            return type(error).status

    for _ in range(2):  # the second time, the section is known
        assert first(b"POST / HTTP/1.1\r\n" + section).content_length == 100
        assert first(b"POST / HTTP/1.1\r\n" + section, max_body_size=99) == 413
        assert first(b"POST / HTTP/1.1\r\n" + section, max_header_count=2) == 431
        assert first(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").keep_alive
        assert not first(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").keep_alive
        assert first(b"GET http://y/ HTTP/1.1\r\nHost: x\r\n\r\n").headers == (("host", "y"),)
        assert first(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").headers == (("host", "x"),)


def test_a_host_is_checked_whatever_hosts_came_before(monkeypatch):
    """Host values found valid are remembered (a bounded set), so a service's few names
    are checked once each; an invalid one is refused before and after the set is full."""
    from http_server import parser as parser_module

    monkeypatch.setattr(parser_module, "_VALID_HOSTS", set())
    monkeypatch.setattr(parser_module, "MAX_VALID_HOSTS", 2)

    def host_status(host: str) -> int | None:
        parser = RequestParser()
        parser.feed(b"GET / HTTP/1.1\r\nHost: " + host.encode("latin-1") + b"\r\n\r\n")
        try:
            event = parser.next_event()
        except ProtocolError as error:
            return error.status
        assert isinstance(event, RequestHead)
        return None

    assert host_status("a.example") is None
    assert host_status("bad host") == 400
    assert host_status("b.example:8080") is None
    assert host_status("c.example") is None  # valid, and not remembered: the set is full
    assert parser_module._VALID_HOSTS == {"a.example", "b.example:8080"}
    assert host_status("a.example") is None
    assert host_status("bad<host") == 400
    assert host_status("c.example") is None
