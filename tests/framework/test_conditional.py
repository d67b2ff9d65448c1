"""Conditional requests (http_server.conditional): the pure decision of RFC 9110 section 13,
and a plain view with its own entity tag answering 304 and 412, in-process and over a socket."""

from __future__ import annotations

import pytest
import requests
from http_server import WebServer
from http_server.conditional import (
    etag_match,
    evaluate_preconditions,
    if_range_allows,
    not_modified,
    parse_etags,
)
from http_server.errors import HTTPError
from http_server.headers import Headers
from http_server.httpdate import http_date, parse_http_date
from http_server.request import Requests
from http_server.response import Response
from http_server.testing import LiveServer, TestClient

# --------------------------------------------------------------------------- the decision


def test_parse_etags():
    assert parse_etags('"abc"') == [(False, "abc")]
    assert parse_etags('W/"abc"') == [(True, "abc")]
    assert parse_etags('"a", W/"b" ,"c"') == [(False, "a"), (True, "b"), (False, "c")]
    assert parse_etags(' , "a",,') == [(False, "a")]
    assert parse_etags("*") == "*"
    assert parse_etags('"a,b"') == [(False, "a,b")]
    for bad in [None, "", "abc", '"a" "b"', '"a', 'w/"a"', '"a"x', '"a b"']:
        assert parse_etags(bad) is None


def test_etag_match():
    tag = '"1-2"'
    assert etag_match('"1-2"', tag, weak=True)
    assert etag_match('W/"1-2"', tag, weak=True)
    assert etag_match('"x", "1-2"', tag, weak=True)
    assert etag_match("*", tag, weak=True)
    assert not etag_match('"x"', tag, weak=True)
    assert etag_match('"1-2"', tag, weak=False)
    assert not etag_match('W/"1-2"', tag, weak=False)
    assert etag_match(None, tag, weak=True) is None
    assert etag_match("garbage", tag, weak=True) is None


def _headers(**kw):
    names = {k.replace("_", "-").lower(): v for k, v in kw.items()}
    return lambda name: names.get(name.lower())


MTIME = 1_700_000_000
LASTMOD = "Tue, 14 Nov 2023 22:13:20 GMT"  # == MTIME
ETAG = '"abc"'
NOW = MTIME + 1000


def pre(method="GET", **kw):
    return evaluate_preconditions(_headers(**kw), method, ETAG, MTIME, now=NOW)


def test_preconditions_none():
    assert parse_http_date(LASTMOD) == MTIME
    assert pre() is None


def test_if_none_match():
    assert pre(if_none_match=ETAG) == 304
    assert pre("HEAD", if_none_match=ETAG) == 304
    assert pre(if_none_match='W/"abc"') == 304  # weak comparison
    assert pre(if_none_match='"x", "abc"') == 304
    assert pre(if_none_match="*") == 304
    assert pre(if_none_match='"x"') is None
    assert pre(if_none_match="junk") is None
    # If-None-Match wins over If-Modified-Since.
    assert pre(if_none_match='"x"', if_modified_since=LASTMOD) is None


def test_if_modified_since():
    assert pre(if_modified_since=LASTMOD) == 304
    assert pre(if_modified_since="Tue, 14 Nov 2023 22:13:21 GMT") == 304
    assert pre(if_modified_since="Tue, 14 Nov 2023 22:13:19 GMT") is None
    assert pre(if_modified_since="not a date") is None
    # A date in the future is invalid: ignored.
    assert pre(if_modified_since="Fri, 01 Jan 2100 00:00:00 GMT") is None


def test_if_match_and_unmodified_since():
    assert pre(if_match=ETAG) is None
    assert pre(if_match="*") is None
    assert pre(if_match='"x"') == 412
    assert pre(if_match='W/"abc"') == 412  # strong comparison
    assert pre(if_unmodified_since=LASTMOD) is None
    assert pre(if_unmodified_since="Tue, 14 Nov 2023 22:13:19 GMT") == 412
    # If-Match present: If-Unmodified-Since is not looked at.
    assert pre(if_match=ETAG, if_unmodified_since="Tue, 14 Nov 2023 22:13:19 GMT") is None


def test_if_range():
    assert if_range_allows(None, ETAG, MTIME)
    assert if_range_allows(ETAG, ETAG, MTIME)
    assert not if_range_allows('"other"', ETAG, MTIME)
    assert not if_range_allows('W/"abc"', ETAG, MTIME)
    assert if_range_allows(LASTMOD, ETAG, MTIME)
    assert not if_range_allows("Tue, 14 Nov 2023 22:13:21 GMT", ETAG, MTIME)
    assert not if_range_allows("junk", ETAG, MTIME)


def test_a_representation_without_an_entity_tag():
    # If-Match needs a current tag: only "*" holds; If-None-Match "*" matches any existing one.
    assert etag_match('"abc"', None, weak=True) is False
    assert etag_match("*", None, weak=False) is True
    assert evaluate_preconditions(_headers(if_match='"abc"'), "GET", None, MTIME) == 412
    assert evaluate_preconditions(_headers(if_match="*"), "GET", None, MTIME) is None
    assert evaluate_preconditions(_headers(if_none_match='"abc"'), "GET", None, MTIME) is None
    assert evaluate_preconditions(_headers(if_none_match="*"), "GET", None, MTIME) == 304
    assert evaluate_preconditions(_headers(if_modified_since=LASTMOD), "GET", None, MTIME,
                                  now=NOW) == 304
    assert not if_range_allows(ETAG, None, MTIME)


def test_a_representation_without_a_modification_time_ignores_the_dates():
    # RFC 9110 sections 13.1.3 and 13.1.4: no date to compare, the condition is not evaluated.
    assert evaluate_preconditions(_headers(if_modified_since=LASTMOD), "GET", ETAG, None) is None
    assert evaluate_preconditions(
        _headers(if_unmodified_since="Tue, 14 Nov 2023 22:13:19 GMT"), "GET", ETAG, None) is None
    assert not if_range_allows(LASTMOD, ETAG, None)


def test_if_none_match_on_an_unsafe_method_fails_the_precondition():
    assert pre("PUT", if_none_match="*") == 412
    assert pre("POST", if_none_match=ETAG) == 412
    assert pre("POST", if_modified_since=LASTMOD) is None  # only GET and HEAD look at it


# --------------------------------------------------------------------------- not_modified


def call(method="GET", **headers):
    """not_modified() for a request with ``headers``: (its answer, the response)."""
    request = Requests(method, "/doc", "HTTP/1.1",
                       Headers({k.replace("_", "-"): v for k, v in headers.items()}))
    response = Response()
    return not_modified(request, response, etag=ETAG, last_modified=MTIME + 0.75), response


def test_not_modified_sets_the_validators_and_answers_304():
    done, response = call(if_none_match=ETAG)
    assert done is True
    assert response.status == 304 and response.sent and response.body == b""
    assert response.headers["ETag"] == ETAG
    assert response.headers["Last-Modified"] == LASTMOD  # whole seconds
    done, response = call(if_modified_since=LASTMOD)
    assert done is True and response.status == 304


def test_not_modified_lets_the_view_go_on():
    done, response = call()
    assert done is False and not response.sent
    assert response.headers["ETag"] == ETAG
    done, response = call(if_none_match='"other"')
    assert done is False and not response.sent


def test_not_modified_raises_412_for_a_failed_precondition():
    with pytest.raises(HTTPError) as caught:
        call("PUT", if_match='"other"')
    assert caught.value.status == 412


def test_not_modified_refuses_an_entity_tag_without_its_quotes():
    with pytest.raises(ValueError, match="entity tag"):
        not_modified(Requests("GET", "/"), Response(), etag="abc")


# --------------------------------------------------------------------------- from a plain view

DOCUMENT = {"version": 7, "text": "hello"}
DOCUMENT_ETAG = '"doc-v7"'
DOCUMENT_TIME = 1_600_000_000


def document_server(**settings) -> WebServer:
    server = WebServer(route=[], access_log=False, **settings)

    @server.route(r"^/doc$", methods=["GET", "PUT"])
    def document(request, response):
        if not_modified(request, response, etag=DOCUMENT_ETAG, last_modified=DOCUMENT_TIME):
            return
        if request.method == "PUT":
            response.sendJson({"saved": True})
            return
        response.sendJson(DOCUMENT)

    @server.errorhandler(412)
    def precondition_failed(request, response, error):
        response.sendJson({"error": "precondition failed"}, 412)

    return server


def test_a_view_with_its_own_etag_answers_304_through_the_test_client():
    client = TestClient(document_server())
    first = client.get("/doc")
    assert first.status_code == 200 and first.json() == DOCUMENT
    assert first.headers["ETag"] == DOCUMENT_ETAG
    assert first.headers["Last-Modified"] == http_date(DOCUMENT_TIME)
    again = client.get("/doc", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == DOCUMENT_ETAG
    assert "Content-Length" not in again.headers
    assert client.head("/doc", headers={"If-None-Match": DOCUMENT_ETAG}).status_code == 304
    dated = client.get("/doc", headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert dated.status_code == 304
    assert client.get("/doc", headers={"If-None-Match": '"doc-v6"'}).status_code == 200
    # A write that expects another version is refused through the 412 handler.
    stale = client.put("/doc", headers={"If-Match": '"doc-v6"'}, data=b"{}")
    assert stale.status_code == 412 and stale.json() == {"error": "precondition failed"}
    fresh = client.put("/doc", headers={"If-Match": DOCUMENT_ETAG}, data=b"{}")
    assert fresh.status_code == 200 and fresh.json() == {"saved": True}


def test_a_view_with_its_own_etag_answers_304_over_a_socket():
    with LiveServer(document_server(host="127.0.0.1", port=0)) as live:
        with requests.Session() as session:
            first = session.get(live.url + "/doc", timeout=10)
            assert first.status_code == 200 and first.json() == DOCUMENT
            again = session.get(live.url + "/doc", timeout=10,
                                headers={"If-None-Match": first.headers["ETag"]})
            assert again.status_code == 304 and again.content == b""
            assert again.headers["ETag"] == DOCUMENT_ETAG
            # The keep-alive connection carries on cleanly after the body-less 304.
            last = session.get(live.url + "/doc", timeout=10)
            assert last.status_code == 200 and last.json() == DOCUMENT
            stale = session.put(live.url + "/doc", headers={"If-Match": '"doc-v6"'}, timeout=10)
            assert stale.status_code == 412
