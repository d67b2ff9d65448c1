"""``TestClient`` behaves like a ``requests.Session``.

The oracle: most tests run one scenario twice on the same app, once with the
in-process ``TestClient`` and once with a real ``requests.Session`` against the
app served by ``LiveServer`` on a socket, and assert that both observe the same
thing (and that this is the expected thing). The few deliberate differences
from requests have their own tests, named after what the test client does.
"""

from __future__ import annotations

import pytest
import requests
from http_server import Path, WebServer
from http_server.testing import HTTPStatusError, LiveServer, TestClient
from http_server.url import Redirect

TIMEOUT = 5


def echo(request, response):
    """What the app received: the exact target, the Cookie header, the method and body."""
    return {
        "target": request.target,
        "cookie": request.headers.get("cookie"),
        "method": request.method,
        "body": request.text,
        "content_type": request.headers.get("content-type"),
        "team": request.headers.get("x-team"),
        "trace": request.headers.get("x-trace"),
    }


def login(request, response):
    response.set_cookie("session", "s1", httponly=True, samesite="Lax")
    response.set_cookie("theme", "dark", max_age=3600)
    response.set_cookie("scoped", "yes", path="/account")
    response.set_cookie("secure_only", "1", secure=True)
    response.set_cookie("elsewhere", "1", domain="example.test")
    response.set_cookie("host_domain", "1", domain=request.headers["host"].split(":")[0])
    return "logged in"


def logout(request, response):
    response.delete_cookie("session")  # Max-Age=0 and an Expires in 1970
    response.set_cookie("theme", "", max_age=0)
    response.set_cookie("host_domain", "", expires=0,
                        domain=request.headers["host"].split(":")[0])
    return "logged out"


def redirect(request, response):
    response.set_cookie("hop", "1")
    return Redirect(request.get_parameter("to", "/echo"), int(request.get_parameter("status")))


def loop(request, response):
    return Redirect("/loop")


def status(request, response):
    response.send("", int(request.get_parameter("code")), "text/plain")


def streamed(request, response):
    response.stream(iter(["a", "b", "c"]), 200, "text/plain")


ROUTES = [
    Path(r"^/(?:[a-z]+/)?echo.*$", echo, name="echo"),
    Path(r"^/login$", login, name="login"),
    Path(r"^/logout$", logout, name="logout"),
    Path(r"^/redirect$", redirect, name="redirect"),
    Path(r"^/loop$", loop, name="loop"),
    Path(r"^/status$", status, name="status"),
    Path(r"^/stream$", streamed, name="stream"),
]


class Session(requests.Session):
    """A requests session with a timeout on every call."""

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(*args, **kwargs)


@pytest.fixture(scope="module")
def server():
    return WebServer(route=ROUTES, access_log=False)


@pytest.fixture(scope="module")
def live(server):
    with LiveServer(server) as running:
        yield running.url


@pytest.fixture
def client(server):
    return TestClient(server)


@pytest.fixture
def both(server, live):
    """``both(scenario)`` runs ``scenario(client, base)`` with a fresh ``TestClient`` (base
    ``""``) and a fresh ``requests.Session`` (base the live URL): (in_process, over_socket)."""

    def run(scenario):
        with Session() as session:
            over_socket = scenario(session, live)
        return scenario(TestClient(server), ""), over_socket

    return run


def headers_but_date(response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.items()
            if name.lower() != "date"}


# ======================================================================= params and URLs


def test_params_are_appended_to_the_query_already_in_the_path(both):
    in_process, over_socket = both(
        lambda c, base: c.get(base + "/echo?q=a", params={"page": 2}).json()["target"])
    assert over_socket == "/echo?q=a&page=2"
    assert in_process == over_socket


def test_params_lists_repeat_the_key_and_none_values_are_left_out(both):
    params = {"tag": ["x", "y"], "skip": None, "text": "a b&c/é"}
    in_process, over_socket = both(
        lambda c, base: c.get(base + "/echo", params=params).json()["target"])
    assert over_socket == "/echo?tag=x&tag=y&text=a+b%26c%2F%C3%A9"
    assert in_process == over_socket


def test_params_as_pairs_or_as_a_string_are_sent_in_their_order(both):
    def scenario(c, base):
        return [c.get(base + "/echo", params=[("b", 1), ("a", 2), ("b", 3)]).json()["target"],
                c.get(base + "/echo?x=1", params="raw=1&y").json()["target"]]

    in_process, over_socket = both(scenario)
    assert over_socket == ["/echo?b=1&a=2&b=3", "/echo?x=1&raw=1&y"]
    assert in_process == over_socket


def test_the_path_is_escaped_like_requests_and_the_fragment_is_not_sent(both):
    def scenario(c, base):
        return [c.get(base + path).json()["target"]
                for path in ("/echo/jürgen a?name=ü y", "/echo/%41%2f%7e", "/echo/%41%4",
                             "/echo?x=1#part")]

    in_process, over_socket = both(scenario)
    # Escapes are kept while all are valid; one stray '%' and every '%' is taken literally.
    assert over_socket == ["/echo/j%C3%BCrgen%20a?name=%C3%BC%20y", "/echo/A%2F~",
                           "/echo/%2541%254", "/echo?x=1"]
    assert in_process == over_socket


def test_a_form_body_from_pairs_or_lists_is_encoded_like_requests(both):
    def scenario(c, base):
        echoed = c.post(base + "/echo", data={"k": ["1", "2"], "none": None, "s": "a b"}).json()
        return echoed["body"], echoed["content_type"]

    in_process, over_socket = both(scenario)
    assert over_socket == ("k=1&k=2&s=a+b", "application/x-www-form-urlencoded")
    assert in_process == over_socket


# ======================================================================= response headers


def test_every_set_cookie_shows_in_headers_joined_like_requests(both):
    in_process, over_socket = both(lambda c, base: headers_but_date(c.get(base + "/login")))
    assert over_socket["set-cookie"].startswith("session=s1; Path=/; HttpOnly; SameSite=Lax, ")
    assert over_socket["set-cookie"].count("Path=") == 6
    assert in_process["set-cookie"] == over_socket["set-cookie"].replace("127.0.0.1", "testserver")


def test_the_headers_are_those_of_the_live_answer(both):
    def scenario(c, base):
        return [(r.status_code, headers_but_date(r), r.content, "date" in r.headers)
                for r in (c.get(base + "/echo"), c.get(base + "/stream"),
                          c.head(base + "/stream"), c.get(base + "/nowhere"),
                          c.get(base + "/status?code=204"))]

    in_process, over_socket = both(scenario)
    assert over_socket[1][1]["transfer-encoding"] == "chunked"
    assert over_socket[1][2] == b"abc"
    assert over_socket[3][1]["content-length"] == str(len(over_socket[3][2]))
    assert in_process == over_socket


def test_raw_cookies_are_the_set_cookie_values_as_sent(both):
    def scenario(c, base):
        response = c.get(base + "/logout")
        if isinstance(response, requests.Response):
            return response.raw.headers.getlist("Set-Cookie")
        return response.raw_cookies

    in_process, over_socket = both(scenario)
    assert over_socket[0] == "session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/"
    assert in_process == [value.replace("127.0.0.1", "testserver") for value in over_socket]


def test_response_cookies_give_every_value_set_and_its_attributes(client):
    cookies = client.get("/login").cookies
    assert cookies["session"] == "s1"
    assert cookies["elsewhere"] == "1"  # what the app sent, even if no jar would keep it
    assert cookies.attributes("session") == {"path": "/", "httponly": True, "samesite": "Lax"}
    assert cookies.attributes("theme") == {"max-age": "3600", "path": "/"}
    assert cookies.attributes("secure_only")["secure"] is True
    deleted = client.get("/logout").cookies
    assert deleted["session"] == ""
    assert deleted.attributes("session")["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"


def test_ok_reason_url_and_raise_for_status_match_requests(both):
    def scenario(c, base):
        seen = []
        for code in (200, 302, 404, 418, 500):
            response = c.get(base + f"/status?code={code}", allow_redirects=False)
            try:
                response.raise_for_status()
                error = None
            except (requests.HTTPError, HTTPStatusError) as raised:
                error = str(raised).replace(base or "http://testserver", "BASE")
            url = response.url.replace(base or "http://testserver", "BASE")
            seen.append((response.ok, response.reason, url, error))
        return seen

    in_process, over_socket = both(scenario)
    assert over_socket[2] == (False, "Not Found", "BASE/status?code=404",
                              "404 Client Error: Not Found for url: BASE/status?code=404")
    assert over_socket[4][3].startswith("500 Server Error: Internal Server Error")
    assert in_process == over_socket


def test_raise_for_status_carries_the_response(client):
    response = client.get("/nowhere")
    with pytest.raises(HTTPStatusError) as raised:
        response.raise_for_status()
    assert raised.value.response is response


# ======================================================================= the cookie jar


def test_cookies_set_by_a_response_are_sent_with_later_requests(both):
    def scenario(c, base):
        c.get(base + "/login")
        return [c.get(base + path).json()["cookie"]
                for path in ("/echo", "/account/echo", "/accounts/echo")]

    in_process, over_socket = both(scenario)
    # Path=/account reaches /account/... only; Secure needs https; example.test is not us.
    assert over_socket == ["session=s1; theme=dark; host_domain=1",
                           "scoped=yes; session=s1; theme=dark; host_domain=1",
                           "session=s1; theme=dark; host_domain=1"]
    assert in_process == over_socket


def test_the_jar_keeps_what_requests_keeps(both):
    def scenario(c, base):
        c.get(base + "/login")
        return c.cookies.get_dict()

    in_process, over_socket = both(scenario)
    assert over_socket == {"session": "s1", "theme": "dark", "scoped": "yes",
                           "secure_only": "1", "host_domain": "1"}
    assert in_process == over_socket


def test_max_age_zero_or_a_past_expires_deletes_the_cookie(both):
    def scenario(c, base):
        c.get(base + "/login")
        c.get(base + "/logout")
        return c.get(base + "/echo").json()["cookie"], sorted(c.cookies.keys())

    in_process, over_socket = both(scenario)
    assert over_socket == (None, ["scoped", "secure_only"])
    assert in_process == over_socket


def test_per_request_cookies_are_sent_with_the_jar_and_not_kept(both):
    def scenario(c, base):
        c.get(base + "/login")
        once = c.get(base + "/echo", cookies={"extra": "9"}).json()["cookie"]
        return once, c.get(base + "/echo").json()["cookie"], "extra" in c.cookies

    in_process, over_socket = both(scenario)
    assert over_socket == ("session=s1; theme=dark; host_domain=1; extra=9",
                           "session=s1; theme=dark; host_domain=1", False)
    assert sorted(in_process[0].split("; ")) == sorted(over_socket[0].split("; "))
    assert in_process[1:] == over_socket[1:]


def test_a_per_request_cookie_wins_over_the_jar_cookie_of_that_name(client):
    # requests sends both, the jar's first, so the app (first one wins) sees the old value.
    client.get("/login")
    assert client.get("/echo", cookies={"theme": "light"}).json()["cookie"] == (
        "theme=light; session=s1; host_domain=1")
    assert client.cookies["theme"] == "dark"


def test_client_cookies_can_be_set_read_and_deleted_by_name(client):
    client.get("/login")
    client.cookies["theme"] = "light"  # replaces the app's cookie, it does not add a second
    client.cookies["lang"] = "fr"
    assert client.cookies["theme"] == "light"
    assert sorted(client.get("/echo").json()["cookie"].split("; ")) == [
        "host_domain=1", "lang=fr", "session=s1", "theme=light"]
    del client.cookies["session"]
    assert "session" not in client.cookies and "lang" in client.cookies
    assert client.cookies.get("session", "gone") == "gone"
    with pytest.raises(KeyError):
        client.cookies["session"]
    client.cookies = {"only": "this"}
    assert dict(client.cookies) == {"only": "this"}
    assert client.get("/echo").json()["cookie"] == "only=this"


def test_a_jar_can_be_handed_to_another_client(server, client):
    client.get("/login")
    other = TestClient(server)
    other.cookies = client.cookies
    assert other.get("/echo").json()["cookie"] == "session=s1; theme=dark; host_domain=1"
    other.get("/logout")
    assert "session" in client.cookies  # a copy: the first client keeps its own


def test_a_name_used_at_two_paths_is_read_with_path(client):
    client.get("/login")
    client.cookies.set("scoped", "root", path="/")
    with pytest.raises(ValueError, match="several cookies are named 'scoped'"):
        client.cookies.get("scoped")
    assert client.cookies.get("scoped", path="/account") == "yes"
    assert client.get("/account/echo").json()["cookie"].startswith("scoped=yes; ")


def test_secure_cookies_are_sent_only_when_the_base_url_is_https(server):
    plain = TestClient(server)
    plain.get("/login")
    assert "secure_only" in plain.cookies
    assert "secure_only" not in plain.get("/echo").json()["cookie"]
    secure = TestClient(server, base_url="https://testserver")
    secure.get("/login")
    assert "secure_only=1" in secure.get("/echo").json()["cookie"]


def test_a_domain_cookie_is_kept_only_for_its_domain(server):
    client = TestClient(server)
    client.get("/login")
    assert "elsewhere" not in client.cookies
    assert client.cookies["host_domain"] == "1"  # Domain=testserver, sent back to testserver
    on_its_domain = TestClient(server, base_url="http://example.test")
    on_its_domain.get("/login")
    assert "elsewhere=1" in on_its_domain.get("/echo").json()["cookie"]


def test_the_host_header_comes_from_the_base_url(server):
    client = TestClient(server, base_url="http://api.example.test:8000")
    assert client.get("/status?code=200").url == "http://api.example.test:8000/status?code=200"
    assert client.get("/login").cookies.attributes("host_domain")["domain"] == "api.example.test"


# ======================================================================= headers and redirects


def test_client_headers_go_with_every_request_and_a_request_overrides_or_removes_them(both):
    def scenario(c, base):
        c.headers["X-Team"] = "blue"
        c.headers["X-Trace"] = "on"
        echoed = [c.get(base + "/echo").json(),
                  c.get(base + "/echo", headers={"X-Team": "red", "X-Trace": None}).json()]
        return [(e["team"], e["trace"]) for e in echoed]

    in_process, over_socket = both(scenario)
    assert over_socket == [("blue", "on"), ("red", None)]
    assert in_process == over_socket


def test_redirects_are_not_followed_unless_asked(server):
    client = TestClient(server)
    response = client.post("/redirect?status=302")
    assert response.status_code == 302 and response.headers["Location"] == "/echo"
    assert response.is_redirect and response.history == []
    assert client.post("/redirect?status=302", follow_redirects=True).status_code == 200
    assert client.post("/redirect?status=302", allow_redirects=True).status_code == 200
    following = TestClient(server, follow_redirects=True)
    assert following.get("/redirect?status=302").status_code == 200
    assert following.get("/redirect?status=302", follow_redirects=False).status_code == 302


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_followed_redirects_change_the_method_and_body_like_requests(both, code):
    def scenario(c, base):
        response = c.post(base + f"/redirect?status={code}&to=/echo%3Fx%3D1", data="payload",
                          headers={"Content-Type": "text/plain"}, allow_redirects=True)
        echoed = response.json()
        return ([r.status_code for r in response.history], response.url.replace(base, ""),
                echoed["method"], echoed["body"], echoed["content_type"], echoed["cookie"])

    in_process, over_socket = both(scenario)
    assert over_socket[0] == [code]
    assert over_socket[2] == ("POST" if code in (307, 308) else "GET")
    assert over_socket[5] == "hop=1"
    assert in_process[0] == over_socket[0]
    assert in_process[1] == "http://testserver" + over_socket[1]
    assert in_process[2:] == over_socket[2:]


def test_a_redirect_loop_stops_with_a_clear_error(client):
    with pytest.raises(RuntimeError, match="more than 30 redirects"):
        client.get("/loop", follow_redirects=True)


def test_a_redirect_to_another_host_is_refused_with_a_clear_error(client):
    with pytest.raises(ValueError, match="only reaches http://testserver, not https://elsewhere"):
        client.get("/redirect?status=302&to=https://elsewhere/x", follow_redirects=True)


def test_an_absolute_url_on_the_base_url_is_accepted(client):
    assert client.get("http://testserver/echo?x=1").json()["target"] == "/echo?x=1"


def test_a_bad_base_url_is_refused():
    with pytest.raises(ValueError, match="base_url must be"):
        TestClient(WebServer(route=[]), base_url="testserver")
