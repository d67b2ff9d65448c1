"""The views, middleware and routes, exercised in-process with the test client."""

from __future__ import annotations

import re

import middleware
import urls
from http_server import Headers, Requests, Response
from http_server.url import reverse

HEX_UUID = re.compile(r"[0-9a-f]{32}")


def test_index_says_hello_world(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.text == "hello world !"
    assert response.headers["Content-Type"].startswith("text/html")


def test_hello_api_greets_the_name_from_the_path(client):
    response = client.get("/api/hello/ada")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"message": "hello, ada!"}


def test_greetings_accept_a_json_body(client):
    response = client.post("/api/greetings", json={"name": "Grace"})
    assert response.status_code == 201
    assert response.json() == {"message": "hello, Grace!"}


def test_greetings_accept_a_form_body(client):
    response = client.post("/api/greetings", data={"name": "Linus"})
    assert response.status_code == 201
    assert response.json() == {"message": "hello, Linus!"}


def test_greetings_without_a_name_are_a_400(client):
    response = client.post("/api/greetings", json={"name": "  "})
    assert response.status_code == 400
    assert "name" in response.json()["error"]


def test_greetings_with_a_body_that_is_not_json_are_a_400(client):
    headers = {"Content-Type": "application/json"}
    response = client.post("/api/greetings", data="{not json", headers=headers)
    assert response.status_code == 400


def test_greetings_only_accept_post(client):
    response = client.get("/api/greetings")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


def test_home_redirects_to_the_index(client):
    response = client.get("/home")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_healthz_reports_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_an_unknown_path_is_a_404(client):
    assert client.get("/no/such/page").status_code == 404


def test_the_example_media_file_is_served(client):
    response = client.get("/media/hello.txt")
    assert response.status_code == 200
    assert response.text.startswith("Hello from the media folder.")
    assert response.headers["Content-Type"].startswith("text/plain")


def test_a_new_request_id_is_a_uuid4_hex(client):
    first = client.get("/").headers["X-Request-ID"]
    second = client.get("/").headers["X-Request-ID"]
    assert HEX_UUID.fullmatch(first) and HEX_UUID.fullmatch(second)
    assert first != second


def test_a_valid_request_id_from_the_caller_is_kept(client):
    response = client.get("/", headers={"X-Request-ID": "edge-42.a:b"})
    assert response.headers["X-Request-ID"] == "edge-42.a:b"


def test_an_invalid_request_id_is_replaced(client):
    for bad in ["has space", "x" * 129, "<script>", ""]:
        response = client.get("/", headers={"X-Request-ID": bad})
        assert HEX_UUID.fullmatch(response.headers["X-Request-ID"]), bad


def test_the_request_id_is_also_given_to_the_view_and_the_access_log():
    request = Requests("GET", "/", "HTTP/1.1", Headers({"X-Request-ID": "bad id"}), b"", "::1")
    request, response = middleware.request_id(request, Response())
    assert request.get_header("X-Request-ID") == response.headers["X-Request-ID"]
    assert HEX_UUID.fullmatch(request.get_header("X-Request-ID"))


def test_the_referer_is_logged_escaped(client, caplog):
    # Listen on the middleware's logger itself: the framework's logger does not
    # propagate to the root logger once a server has run in this process.
    caplog.set_level("INFO", logger=middleware.logger.name)
    middleware.logger.addHandler(caplog.handler)
    try:
        client.get("/a%0Ab", headers={"Referer": "https://example.com/"})
    finally:
        middleware.logger.removeHandler(caplog.handler)
    assert "'/a\\nb' reached from 'https://example.com/'" in caplog.messages


def test_the_request_id_is_also_on_404s(client):
    assert HEX_UUID.fullmatch(client.get("/missing").headers["X-Request-ID"])


def test_every_route_has_a_name_that_reverses_to_it(server):
    names = [route.name for route in urls.urlpatterns]
    assert all(names) and len(set(names)) == len(names)
    assert reverse("index") == "/"
    assert reverse("hello", username="ada") == "/api/hello/ada"


def test_errors_are_json(client):
    missing = client.get("/no/such/page")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/json"
    assert missing.json() == {"error": "Not Found", "status": 404}
    wrong_method = client.get("/api/greetings")
    assert wrong_method.json() == {"error": "method not allowed", "status": 405}
    assert "POST" in wrong_method.headers["Allow"]


def test_info_reads_what_the_startup_hook_put_in_the_app_state(client):
    response = client.get("/api/info")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "{{ cookiecutter.project }}"
    assert body["uptime_seconds"] >= 0
