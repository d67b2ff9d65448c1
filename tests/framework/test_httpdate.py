"""HTTP dates (http_server.httpdate): the IMF-fixdate written, the three formats read, and the
per-second cache behind every response's Date line."""

from __future__ import annotations

import re
import time
from email.utils import formatdate

from http_server.httpdate import date_line, http_date, once_per_second, parse_http_date


def test_http_date_format():
    assert http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert http_date(784111777.9) == "Sun, 06 Nov 1994 08:49:37 GMT"  # whole seconds
    assert parse_http_date(http_date(time.time())) is not None


def test_parse_http_date():
    when = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == when
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == when
    assert parse_http_date("Sun Nov  6 08:49:37 1994") == when
    for bad in [None, "", "yesterday", "Sun, 06 Nov 1994 08:49:37 GMT" * 5, "Sun, 99 Nov 1994"]:
        assert parse_http_date(bad) is None


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_once_per_second_renders_once_per_whole_second():
    clock = FakeClock(100.2)
    rendered = []

    def render(second):
        rendered.append(second)
        return f"stamp {second}"

    current = once_per_second(render, clock)
    assert current() == "stamp 100"
    clock.now = 100.9
    assert current() == "stamp 100"
    assert rendered == [100]
    clock.now = 101.0
    assert current() == "stamp 101"
    clock.now = 99.5  # the clock stepped back: a new value, not the cached one
    assert current() == "stamp 99"
    assert rendered == [100, 101, 99]


def test_date_line_is_the_date_header_of_this_second():
    before = int(time.time())
    line = date_line()
    after = int(time.time())
    assert re.fullmatch(rb"Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n",
                        line)
    value = line[len(b"Date: "):-2].decode()
    assert value in {formatdate(second, usegmt=True) for second in range(before, after + 1)}
