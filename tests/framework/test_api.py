"""The public API of ``http_server``, against a live server with ``requests``.

Part 1 exercises every call the seed README names, written the way the seed
writes it. Part 2 covers the additions documented in docs/api.md. Part 3 runs
the same application through the in-process ``TestClient``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import pytest
import requests
from http_server import HTTPError, Path, Requests, Response, WebServer, reverse
from http_server.testing import LiveServer, TestClient
from http_server.url import Redirect
from support.rawhttp import raw_request

TIMEOUT = 5

# ======================================================================= the seed's example


def index(request: Requests, response: Response):
    response.send("hello world !", 200, "text/html")


def seed_redirect(request: Requests, response: Response):
    return Redirect("/")


def Referer(request: Requests, response: Response):  # noqa: N802 - the seed's name
    if "Referer" in request.headers:
        print(request.headers["Referer"])
    return request, response


@pytest.fixture(scope="module")
def seed_live(tmp_path_factory):
    """The seed README's program, line for line (``"^\\/$"`` is the seed's regex)."""
    media = tmp_path_factory.mktemp("seed") / "media"
    media.mkdir()
    (media / "hello.txt").write_bytes(b"hello from media\n")
    urlpatterns = [
        Path("^\\/$", index, name="index"),
        Path("^\\/go$", seed_redirect, name="seed-go"),
    ]
    server = WebServer(port=8080, route=urlpatterns, access_log=False)
    server.Middlewares.append(Referer)
    server.fileServer("/media/", str(media))
    with LiveServer(server) as live:
        live.app = server
        yield live


@pytest.fixture(scope="module")
def seed_url(seed_live):
    return seed_live.url


def test_seed_route_reverses_to_root(seed_live):
    assert seed_live.app.reverse("index") == "/"
    assert reverse("seed-go") == "/go"


def test_seed_example_answers_hello_world(seed_url):
    resp = requests.get(seed_url + "/", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.text == "hello world !"
    assert resp.headers["Content-Type"].startswith("text/html")


def test_seed_example_unknown_path_is_404(seed_url):
    assert requests.get(seed_url + "/nothing-here", timeout=TIMEOUT).status_code == 404


def test_seed_redirect_import_path_gives_302_with_location(seed_url):
    resp = requests.get(seed_url + "/go", allow_redirects=False, timeout=TIMEOUT)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/"
    assert requests.get(seed_url + "/go", timeout=TIMEOUT).text == "hello world !"


def test_seed_referer_middleware_via_Middlewares_append(seed_url, capsys):
    capsys.readouterr()
    resp = requests.get(seed_url + "/", headers={"Referer": "http://example.test/from"},
                        timeout=TIMEOUT)
    assert resp.text == "hello world !"
    assert "http://example.test/from" in capsys.readouterr().out
    requests.get(seed_url + "/", timeout=TIMEOUT)  # no Referer: nothing printed
    assert capsys.readouterr().out == ""


def test_seed_fileServer_serves_a_file(seed_url):
    resp = requests.get(seed_url + "/media/hello.txt", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.content == b"hello from media\n"
    assert resp.headers["Content-Type"].startswith("text/plain")


def test_seed_fileServer_with_relative_folder_as_in_seed(tmp_path, monkeypatch):
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.txt").write_bytes(b"relative\n")
    monkeypatch.chdir(tmp_path)
    server = WebServer(port=8080, route=[], access_log=False)
    server.fileServer("/media/", "./media")
    monkeypatch.chdir("/")  # the folder was fixed when fileServer was called
    with LiveServer(server) as live:
        resp = requests.get(live.url + "/media/a.txt", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.content == b"relative\n"


# ======================================================================= the application


def echo_request(request: Requests, response: Response):
    response.sendJson({
        "method": request.method,
        "path": request.path,
        "version": request.version,
        "x_custom_from_headers": request.headers["X-Custom"],
        "x_custom_lower_in": "x-custom" in request.headers,
        "get_header_lower": request.get_header("x-custom"),
        "get_header_upper": request.get_header("X-CUSTOM"),
        "get_header_missing": request.get_header("X-Missing", "fallback"),
        "cookies": dict(request.cookies),
        "get_cookie": request.get_cookie("session"),
        "get_cookie_missing": request.get_cookie("absent", "none"),
        "name": request.get_parameter("name"),
        "first_a": request.get_parameter("a"),
        "missing_param": request.get_parameter("missing", "dflt"),
        "missing_param_no_default": request.get_parameter("missing"),
        "query": request.query,
        "target": request.target,
        "remote_addr": request.remote_addr,
    })


def echo_body(request: Requests, response: Response):
    response.send(request.body, 200, "application/octet-stream")


def client_info(request: Requests, response: Response):
    client = response.client
    response.sendJson({
        "is_socket": isinstance(client, socket.socket),
        "peer": client.getpeername()[0] if client is not None else None,
    })


def response_headers(request: Requests, response: Response):
    response.headers["X-Answer"] = "42"
    response.cookies["plain"] = "value1"
    response.send("with headers", 201, "text/plain")


def json_view(request: Requests, response: Response):
    response.sendJson({"a": 1, "text": "é"}, 202)


def json_string_view(request: Requests, response: Response):
    response.sendJsonString('{"raw": true}', 203)


def article(request: Requests, response: Response, year, slug):
    response.sendJson({"year": year, "slug": slug})


def first(request, response):
    return "first"


def second(request, response):
    return "second"


def post_only(request, response):
    return "posted"


def get_only(request, response):
    return "got"


def reverse_view(request, response):
    return {
        "module": reverse("api-article", year="2024", slug="hello-world"),
        "server": request_server.reverse("api-article", year=1999, slug="x"),
        "plain": reverse("api-first"),
    }


def json_body(request: Requests, response: Response):
    return {"received": request.json()}


def form_view(request: Requests, response: Response):
    return {"form": request.form, "text": request.text}


def cookie_setter(request: Requests, response: Response):
    response.set_cookie("full", "abc", max_age=3600, expires=0, path="/x",
                        domain="example.test", secure=True, httponly=True, samesite="Lax")
    response.set_cookie("simple", "xyz")
    response.delete_cookie("old")
    return "cookies set"


def permanent(request, response):
    return Redirect("/api/first", status=301)


def str_view(request, response):
    return "plain <b>text</b>"


def dict_view(request, response):
    return {"kind": "dict"}


def list_view(request, response):
    return [1, 2, 3]


async def async_view(request, response):
    await asyncio.sleep(0)
    return {"async": True, "path": request.path}


async def async_send_view(request, response):
    await asyncio.sleep(0.01)
    response.send("async sent", 200, "text/plain")


def teapot(request, response):
    raise HTTPError(418, "short and stout")


def forbidden(request, response):
    raise HTTPError(403)


def boom(request, response):
    raise RuntimeError("SECRET-INTERNAL-DETAIL")


def streamed(request, response):
    response.stream(iter(["alpha-", b"beta-", "gamma"]), 200, "text/plain")


def header_injection(request, response):
    response.headers["X-Evil"] = "a\r\nSet-Cookie: injected=1"
    return "never sent"


def login(request, response):
    response.set_cookie("sid", "abc123", httponly=True)
    return Redirect("/api/first")


def cookie_echo(request, response):
    return {"session": request.get_cookie("session"), "cookies": request.cookies}


def explicit_content_type(request, response):
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.send("a,b\n1,2\n")


def version_view(request, response):
    return {"version": request.version}


def passthrough_view(request, response):
    return "view ran"


def marking_middleware(request: Requests, response: Response):
    response.headers["X-Middleware"] = "seen"
    if request.path == "/mw/stop":
        response.send("stopped by middleware", 403, "text/plain")
    return request, response


def redirecting_middleware(request: Requests, response: Response):
    if request.path == "/mw/unauthorized":
        raise HTTPError(401, "log in first")
    if request.path == "/mw/redirect":
        return Redirect("/api/first")
    return request, response


async def async_middleware(request: Requests, response: Response):
    await asyncio.sleep(0)
    response.headers["X-Async-Middleware"] = "yes"
    return request, response


ROUTES = [
    Path(r"^/api/echo$", echo_request, name="api-echo"),
    Path(r"^/api/body$", echo_body, name="api-body"),
    Path(r"^/api/client$", client_info, name="api-client"),
    Path(r"^/api/headers$", response_headers, name="api-headers"),
    Path(r"^/api/json$", json_view, name="api-json"),
    Path(r"^/api/json-string$", json_string_view, name="api-json-string"),
    Path(r"^/api/articles/(?P<year>[0-9]{4})/(?P<slug>[-\w]+)$", article, name="api-article"),
    Path(r"^/api/first$", first, name="api-first"),
    Path(r"^/api/first", second, name="api-second"),  # also matches /api/first: never reached
    Path(r"^/api/post-only$", post_only, name="api-post-only", methods=["POST"]),
    Path(r"^/api/get-only$", get_only, name="api-get-only", methods=["GET"]),
    Path(r"^/api/reverse$", reverse_view, name="api-reverse"),
    Path(r"^/api/json-body$", json_body, name="api-json-body", methods=["POST"]),
    Path(r"^/api/form$", form_view, name="api-form", methods=["POST"]),
    Path(r"^/api/cookies$", cookie_setter, name="api-cookies"),
    Path(r"^/api/permanent$", permanent, name="api-permanent"),
    Path(r"^/api/str$", str_view, name="api-str"),
    Path(r"^/api/dict$", dict_view, name="api-dict"),
    Path(r"^/api/list$", list_view, name="api-list"),
    Path(r"^/api/async$", async_view, name="api-async"),
    Path(r"^/api/async-send$", async_send_view, name="api-async-send"),
    Path(r"^/api/teapot$", teapot, name="api-teapot"),
    Path(r"^/api/forbidden$", forbidden, name="api-forbidden"),
    Path(r"^/api/boom$", boom, name="api-boom"),
    Path(r"^/api/stream$", streamed, name="api-stream"),
    Path(r"^/api/inject$", header_injection, name="api-inject"),
    Path(r"^/api/login$", login, name="api-login"),
    Path(r"^/api/cookie-echo$", cookie_echo, name="api-cookie-echo"),
    Path(r"^/api/csv$", explicit_content_type, name="api-csv"),
    Path(r"^/api/version$", version_view, name="api-version"),
    Path(r"^/mw/", passthrough_view, name="api-mw"),
]

request_server: WebServer  # set by build_server, used by reverse_view


def build_server(media_folder, error_handlers: bool = False) -> WebServer:
    global request_server
    server = WebServer(route=ROUTES, access_log=False)
    server.Middlewares.append(marking_middleware)
    server.Middlewares.append(redirecting_middleware)
    server.Middlewares.append(async_middleware)
    server.fileServer("/static/", str(media_folder))
    if error_handlers:
        @server.errorhandler(404)
        def not_found(request, response, error):
            response.send(f"custom 404 for {request.path}", 404, "text/plain")

        @server.errorhandler(500)
        def server_error(request, response, error):
            response.sendJson({"error": "custom 500"}, 500)
    request_server = server
    return server


@pytest.fixture(scope="module")
def media_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-static")
    (folder / "file.txt").write_bytes(b"static content\n")
    return folder


@pytest.fixture(scope="module")
def app(media_folder):
    return build_server(media_folder)


@pytest.fixture(scope="module")
def live(app):
    with LiveServer(app) as running:
        yield running.url


# ======================================================================= requests


def test_request_method_path_version_headers_cookies_parameters(live):
    resp = requests.get(
        live + "/api/echo?name=J%C3%BCrgen+M%C3%BCller&a=1&a=2&empty=",
        headers={"X-Custom": "custom-value"},
        cookies={"session": "s3cr3t", "theme": "dark"},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200
    data = resp.json()
    assert data["method"] == "GET"
    assert data["path"] == "/api/echo"
    assert data["version"] == "HTTP/1.1"
    assert data["x_custom_from_headers"] == "custom-value"
    assert data["x_custom_lower_in"] is True
    assert data["get_header_lower"] == data["get_header_upper"] == "custom-value"
    assert data["get_header_missing"] == "fallback"
    assert data["cookies"] == {"session": "s3cr3t", "theme": "dark"}
    assert data["get_cookie"] == "s3cr3t"
    assert data["get_cookie_missing"] == "none"
    assert data["name"] == "Jürgen Müller"  # URL-decoded, '+' is a space
    assert data["first_a"] == "1"
    assert data["missing_param"] == "dflt"
    assert data["missing_param_no_default"] is None
    assert data["query"] == {"name": ["Jürgen Müller"], "a": ["1", "2"], "empty": [""]}
    assert data["target"] == "/api/echo?name=J%C3%BCrgen+M%C3%BCller&a=1&a=2&empty="
    assert data["remote_addr"] == "127.0.0.1"


def test_repeated_header_fields_reach_the_view_joined(live):
    """A field sent twice is one value for the view: joined with ", ", Cookie with "; "
    (the form a single line would have had), each time the client sends them."""
    port = int(live.rsplit(":", 1)[1])
    head = (b"GET /api/echo HTTP/1.1\r\nHost: x\r\nX-Custom: a\r\nCookie: session=1\r\n"
            b"x-custom: b\r\nCookie: theme=dark\r\nConnection: close\r\n\r\n")
    for _ in range(3):  # the lines known, then the whole section
        answer = raw_request(port, head)
        data = json.loads(answer.partition(b"\r\n\r\n")[2])
        assert data["x_custom_from_headers"] == "a, b"
        assert data["cookies"] == {"session": "1", "theme": "dark"}


def test_request_path_is_percent_decoded_without_query(live):
    resp = requests.get(live + "/api/articles/2024/caf%C3%A9?x=1", timeout=TIMEOUT)
    assert resp.json() == {"year": "2024", "slug": "café"}


def test_request_version_http10(live):
    port = int(live.rsplit(":", 1)[1])
    data = raw_request(port, b"GET /api/version HTTP/1.0\r\n\r\n", TIMEOUT)
    assert data.endswith(b'{"version":"HTTP/1.0"}')


def test_cookies_with_plain_values(live):
    resp = requests.get(live + "/api/cookie-echo", headers={"Cookie": "a=1; session=abc; b=x,y"},
                        timeout=TIMEOUT)
    assert resp.json() == {"session": "abc", "cookies": {"a": "1", "session": "abc", "b": "x,y"}}


@pytest.mark.parametrize("odd", ['weird=a"b', 'prefs={"k":2}', "name=Jos\u00e9"],
                         ids=["quote", "json", "non-ascii"])
def test_an_odd_cookie_does_not_hide_the_others(live, odd):
    header = f"a=1; {odd}; session=abc".encode()
    resp = requests.get(live + "/api/cookie-echo", headers={"Cookie": header}, timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.json()["session"] == "abc"


def test_request_body_as_bytes(live):
    payload = bytes(range(256)) * 10
    resp = requests.post(live + "/api/body", data=payload, timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.content == payload


def test_request_chunked_body_is_dechunked(live):
    resp = requests.post(live + "/api/body", data=iter([b"one-", b"two-", b"three"]),
                         timeout=TIMEOUT)
    assert resp.content == b"one-two-three"


def test_request_json_parses_body(live):
    resp = requests.post(live + "/api/json-body", json={"x": [1, 2]}, timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.json() == {"received": {"x": [1, 2]}}


def test_request_json_with_bad_body_is_400(live):
    resp = requests.post(live + "/api/json-body", data=b"{not json",
                         headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert resp.status_code == 400


def test_request_form_and_text(live):
    resp = requests.post(live + "/api/form", data={"name": "a b", "x": "é&="}, timeout=TIMEOUT)
    assert resp.json()["form"] == {"name": "a b", "x": "é&="}
    assert "name=a+b" in resp.json()["text"]


def test_request_form_is_empty_for_other_content_types(live):
    resp = requests.post(live + "/api/form", data=b"name=x",
                         headers={"Content-Type": "text/plain"}, timeout=TIMEOUT)
    assert resp.json()["form"] == {}


# ======================================================================= responses


def test_response_headers_and_plain_cookies(live):
    resp = requests.get(live + "/api/headers", timeout=TIMEOUT)
    assert resp.status_code == 201
    assert resp.text == "with headers"
    assert resp.headers["X-Answer"] == "42"
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert resp.cookies["plain"] == "value1"


def test_response_client_is_the_client_socket(live):
    assert requests.get(live + "/api/client", timeout=TIMEOUT).json() == {
        "is_socket": True, "peer": "127.0.0.1"}


def test_response_sendJson(live):
    resp = requests.get(live + "/api/json", timeout=TIMEOUT)
    assert resp.status_code == 202
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == {"a": 1, "text": "é"}


def test_response_sendJsonString(live):
    resp = requests.get(live + "/api/json-string", timeout=TIMEOUT)
    assert resp.status_code == 203
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.content == b'{"raw": true}'


def test_set_cookie_every_attribute_one_header_per_cookie(live):
    resp = requests.get(live + "/api/cookies", timeout=TIMEOUT)
    assert resp.status_code == 200
    lines = resp.raw.headers.getlist("Set-Cookie")
    assert len(lines) == 3
    by_name = {line.split("=", 1)[0]: line for line in lines}
    full = [part.strip() for part in by_name["full"].split(";")]
    assert full[0] == "full=abc"
    assert set(full[1:]) == {
        "Max-Age=3600", "Expires=Thu, 01 Jan 1970 00:00:00 GMT", "Domain=example.test",
        "Path=/x", "Secure", "HttpOnly", "SameSite=Lax",
    }
    simple = [part.strip() for part in by_name["simple"].split(";")]
    assert simple == ["simple=xyz", "Path=/"]


def test_delete_cookie_expires_it(live):
    resp = requests.get(live + "/api/cookies", timeout=TIMEOUT)
    old = next(line for line in resp.raw.headers.getlist("Set-Cookie")
               if line.startswith("old="))
    parts = [part.strip() for part in old.split(";")]
    assert parts[0] == "old="
    assert "Max-Age=0" in parts
    assert "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in parts
    assert "Path=/" in parts


def test_set_cookie_survives_a_redirect(live):
    resp = requests.get(live + "/api/login", allow_redirects=False, timeout=TIMEOUT)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/api/first"
    assert resp.raw.headers.getlist("Set-Cookie") == ["sid=abc123; Path=/; HttpOnly"]


def test_content_type_set_in_headers_is_sent_once(live):
    resp = requests.get(live + "/api/csv", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.raw.headers.getlist("Content-Type") == ["text/csv; charset=utf-8"]


def test_redirect_with_status_301(live):
    resp = requests.get(live + "/api/permanent", allow_redirects=False, timeout=TIMEOUT)
    assert resp.status_code == 301
    assert resp.headers["Location"] == "/api/first"


def test_view_returning_str_is_html(live):
    resp = requests.get(live + "/api/str", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.text == "plain <b>text</b>"
    assert resp.headers["Content-Type"].startswith("text/html")


def test_view_returning_dict_or_list_is_json(live):
    resp = requests.get(live + "/api/dict", timeout=TIMEOUT)
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == {"kind": "dict"}
    assert requests.get(live + "/api/list", timeout=TIMEOUT).json() == [1, 2, 3]


def test_async_views(live):
    assert requests.get(live + "/api/async", timeout=TIMEOUT).json() == {
        "async": True, "path": "/api/async"}
    resp = requests.get(live + "/api/async-send", timeout=TIMEOUT)
    assert resp.text == "async sent"


def test_stream_is_sent_chunked(live):
    resp = requests.get(live + "/api/stream", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in resp.headers
    assert resp.text == "alpha-beta-gamma"


def test_stream_over_http10_is_delimited_by_close(live):
    port = int(live.rsplit(":", 1)[1])
    data = raw_request(port, b"GET /api/stream HTTP/1.0\r\n\r\n", TIMEOUT)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding" not in head.lower()
    assert body == b"alpha-beta-gamma"


def test_header_with_crlf_is_refused_with_500(live):
    resp = requests.get(live + "/api/inject", timeout=TIMEOUT)
    assert resp.status_code == 500
    assert "injected" not in resp.cookies
    assert "X-Evil" not in resp.headers


# ======================================================================= routing


def test_named_groups_are_view_kwargs(live):
    assert requests.get(live + "/api/articles/1999/some-slug", timeout=TIMEOUT).json() == {
        "year": "1999", "slug": "some-slug"}


def test_first_matching_route_wins(live):
    assert requests.get(live + "/api/first", timeout=TIMEOUT).text == "first"
    assert requests.get(live + "/api/firstly", timeout=TIMEOUT).text == "second"


def test_methods_restriction_gives_405_with_allow(live):
    assert requests.post(live + "/api/post-only", timeout=TIMEOUT).text == "posted"
    resp = requests.get(live + "/api/post-only", timeout=TIMEOUT)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "POST"
    resp = requests.delete(live + "/api/get-only", timeout=TIMEOUT)
    assert resp.status_code == 405
    assert {m.strip() for m in resp.headers["Allow"].split(",")} == {"GET", "HEAD"}


def test_get_route_answers_head(live):
    resp = requests.head(live + "/api/get-only", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.content == b""
    assert resp.headers["Content-Length"] == "3"


def test_reverse_module_and_server(live, app):
    assert reverse("api-article", year=2024, slug="hello-world") == "/api/articles/2024/hello-world"
    assert app.reverse("api-article", year="1999", slug="x") == "/api/articles/1999/x"
    assert app.reverse("api-first") == "/api/first"
    assert requests.get(live + "/api/reverse", timeout=TIMEOUT).json() == {
        "module": "/api/articles/2024/hello-world",
        "server": "/api/articles/1999/x",
        "plain": "/api/first",
    }


def test_reverse_rejects_bad_names_and_values(app):
    with pytest.raises(LookupError):
        reverse("no-such-route-name")
    with pytest.raises(LookupError):
        app.reverse("no-such-route-name")
    with pytest.raises(ValueError):
        reverse("api-article", year="abcd", slug="x")  # year must be 4 digits
    with pytest.raises(ValueError):
        reverse("api-article", year="2024")  # slug missing


# ======================================================================= errors


def test_http_error_gives_its_status(live):
    resp = requests.get(live + "/api/teapot", timeout=TIMEOUT)
    assert resp.status_code == 418
    assert "short and stout" in resp.text
    assert requests.get(live + "/api/forbidden", timeout=TIMEOUT).status_code == 403


def test_exception_in_view_is_generic_500(live):
    resp = requests.get(live + "/api/boom", timeout=TIMEOUT)
    assert resp.status_code == 500
    assert "SECRET-INTERNAL-DETAIL" not in resp.text
    assert "Traceback" not in resp.text


def test_errorhandler_404_and_500(media_folder):
    server = build_server(media_folder, error_handlers=True)
    with LiveServer(server) as running:
        resp = requests.get(running.url + "/nowhere", timeout=TIMEOUT)
        assert resp.status_code == 404
        assert resp.text == "custom 404 for /nowhere"
        resp = requests.get(running.url + "/api/boom", timeout=TIMEOUT)
        assert resp.status_code == 500
        assert resp.json() == {"error": "custom 500"}
        # the handlers do not touch other statuses
        assert requests.get(running.url + "/api/teapot", timeout=TIMEOUT).status_code == 418


# ======================================================================= middleware


def test_middleware_runs_before_views(live):
    resp = requests.get(live + "/mw/anything", timeout=TIMEOUT)
    assert resp.text == "view ran"
    assert resp.headers["X-Middleware"] == "seen"
    assert resp.headers["X-Async-Middleware"] == "yes"


def test_middleware_stops_chain_by_sending(live):
    resp = requests.get(live + "/mw/stop", timeout=TIMEOUT)
    assert resp.status_code == 403
    assert resp.text == "stopped by middleware"
    assert "X-Async-Middleware" not in resp.headers  # later middleware did not run


def test_middleware_stops_chain_by_returning_redirect(live):
    resp = requests.get(live + "/mw/redirect", allow_redirects=False, timeout=TIMEOUT)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/api/first"
    assert "X-Async-Middleware" not in resp.headers


def test_middleware_raising_http_error(live):
    resp = requests.get(live + "/mw/unauthorized", timeout=TIMEOUT)
    assert resp.status_code == 401
    assert "log in first" in resp.text


def test_middleware_runs_for_404(live):
    resp = requests.get(live + "/definitely/not/here", timeout=TIMEOUT)
    assert resp.status_code == 404
    assert resp.headers["X-Middleware"] == "seen"
    assert resp.headers["X-Async-Middleware"] == "yes"


def test_middleware_runs_for_static_files(live):
    resp = requests.get(live + "/static/file.txt", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.content == b"static content\n"
    assert resp.headers["X-Middleware"] == "seen"


# ======================================================================= TestClient


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


def test_testclient_seed_example():
    server = WebServer(port=8080, route=[Path("^\\/$", index, name="index")])
    resp = TestClient(server).get("/")
    assert resp.status_code == 200
    assert resp.text == "hello world !"
    assert resp.headers["content-type"].startswith("text/html")


def test_testclient_status_headers_json_cookies(client):
    resp = client.get("/api/echo", params={"name": "Jürgen", "a": ["1", "2"]},
                      headers={"X-Custom": "tc"}, cookies={"session": "abc"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    data = resp.json()
    assert data["name"] == "Jürgen"
    assert data["first_a"] == "1"
    assert data["get_header_lower"] == "tc"
    assert data["get_cookie"] == "abc"
    resp = client.get("/api/cookies")
    assert resp.cookies["full"] == "abc"
    assert resp.cookies["simple"] == "xyz"
    assert resp.cookies["old"] == ""


def test_testclient_response_client_is_none(client):
    assert client.get("/api/client").json() == {"is_socket": False, "peer": None}


def test_testclient_errors_methods_middleware_static(client):
    assert client.get("/api/teapot").status_code == 418
    assert client.post("/api/json-body", data=b"{bad").status_code == 400
    assert client.post("/api/json-body", json={"k": 1}).json() == {"received": {"k": 1}}
    assert client.post("/api/form", data={"f": "v"}).json()["form"] == {"f": "v"}
    resp = client.get("/api/post-only")
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "POST"
    resp = client.get("/nowhere")
    assert resp.status_code == 404
    assert resp.headers["X-Middleware"] == "seen"
    resp = client.get("/static/file.txt")
    assert resp.content == b"static content\n"
    resp = client.get("/api/permanent")
    assert resp.status_code == 301
    assert resp.headers["Location"] == "/api/first"
    assert client.get("/api/stream").text == "alpha-beta-gamma"
    assert client.get("/api/async").json()["async"] is True
    assert client.head("/api/get-only").content == b""


def test_testclient_and_live_server_agree(client, live):
    for path in ("/api/json", "/api/dict", "/api/str", "/api/teapot", "/nowhere"):
        in_process = client.get(path)
        over_socket = requests.get(live + path, timeout=TIMEOUT)
        assert in_process.status_code == over_socket.status_code, path
        assert in_process.content == over_socket.content, path
        assert json.dumps(in_process.headers.get("Content-Type")) == json.dumps(
            over_socket.headers.get("Content-Type")), path


def test_reverse_fills_a_group_called_name():
    route = Path(r"^/people/(?P<name>[a-z]+)$", lambda request, response: None, name="person")
    server = WebServer(route=[route])
    assert reverse("person", name="ada") == "/people/ada"
    assert server.reverse("person", name="ada") == "/people/ada"


def test_header_values_go_out_in_latin_1_where_they_can_and_in_utf_8_otherwise():
    response = Response()
    response.headers["X-Plain"] = "abc"
    response.headers["X-Latin"] = "café"
    response.headers["X-Euro"] = "5 €"
    response.send(b"", 204, None)
    lines = response.head_bytes().split(b"\r\n")
    assert b"X-Plain: abc" in lines
    assert "X-Latin: café".encode("latin-1") in lines
    assert "X-Euro: 5 €".encode() in lines
    assert lines[-2:] == [b"", b""]  # the header section ends with one empty line


@pytest.mark.parametrize("content", [
    {"a": 1, "text": "é✓\u2028\x00\"\\", "list": [1, 2.5, None, True, False], "nested": {"x": []}},
    [], {}, "a str", 3, 1.0, -0.0, 1e300, 12345678901234567890, float("nan"), float("inf"),
    {"keys": {1: "int", 2.5: "float", None: "none", False: "bool"}},
])
def test_send_json_writes_what_json_dumps_writes(content):
    response = Response()
    response.sendJson(content)
    expected = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    assert response.body == expected.encode("utf-8")
    assert response.content_type == "application/json"


def test_send_json_refuses_what_json_refuses():
    circular: list = []
    circular.append(circular)
    with pytest.raises(ValueError, match="Circular reference"):
        Response().sendJson(circular)
    with pytest.raises(TypeError, match="not JSON serializable"):
        Response().sendJson({"a": object()})
    deep: list = []
    for _ in range(sys.getrecursionlimit() * 2):
        deep = [deep]
    with pytest.raises(RecursionError):
        json.dumps(deep)
    with pytest.raises(RecursionError):  # not circular: refused as json.dumps refuses it
        Response().sendJson(deep)
    response = Response()
    response.sendJson([circular[:0], {"again": 1}])  # the encoder still works after a refusal
    assert response.body == b'[[],{"again":1}]'

