"""Testing helpers: ``TestClient`` runs the app in-process; ``LiveServer`` runs it on a real socket.

    client = TestClient(server)
    assert client.get("/").text == "hello world !"

    with LiveServer(server) as live:
        assert requests.get(live.url + "/").status_code == 200
"""

from __future__ import annotations

import json as json_module
import threading
from urllib.parse import urlencode

from .request import Headers, Requests
from .response import Response


class TestResponse:
    __test__ = False  # not a pytest test class

    def __init__(self, response: Response, head_only: bool) -> None:
        self.status_code = response.status
        self.headers = Headers()
        if response.content_type is not None:
            self.headers["Content-Type"] = response.content_type
        for name, value in response.headers.items_for_wire():
            self.headers[name] = value
        self.cookies = {name: str(cookie) for name, cookie in response.cookies.items()}
        if head_only:
            self.content = b""
        elif response.file is not None:
            self.content = response.file.read_all()
        elif response.stream_body is not None:
            self.content = b"".join(
                item.encode("utf-8") if isinstance(item, str) else item
                for item in response.stream_body
            )
        else:
            self.content = response.body
        if response.file is not None:
            response.file.close()

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        return json_module.loads(self.content)

    def __repr__(self) -> str:
        return f"<TestResponse {self.status_code}>"


class TestClient:
    """Calls the server's dispatcher (middleware, static files, routes, errors) without a socket."""

    __test__ = False

    def __init__(self, server) -> None:
        self.server = server

    def request(self, method: str, path: str, *, params: dict | None = None,
                headers: dict | None = None, cookies: dict | None = None,
                data: bytes | str | dict | None = None, json=None) -> TestResponse:
        target = path + ("?" + urlencode(params, doseq=True) if params else "")
        request_headers = Headers({"Host": "testserver"})
        body = b""
        if json is not None:
            body = json_module.dumps(json).encode("utf-8")
            request_headers["Content-Type"] = "application/json"
        elif isinstance(data, dict):
            body = urlencode(data, doseq=True).encode("utf-8")
            request_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif data is not None:
            body = data.encode("utf-8") if isinstance(data, str) else data
        if body:
            request_headers["Content-Length"] = str(len(body))
        if cookies:
            request_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        for name, value in (headers or {}).items():
            request_headers[name] = value
        request = Requests(method.upper(), target, "HTTP/1.1", request_headers, body, "127.0.0.1")
        response = self.server.app.handle(request, Response())
        return TestResponse(response, head_only=method.upper() == "HEAD")

    def get(self, path: str, **kwargs) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def head(self, path: str, **kwargs) -> TestResponse:
        return self.request("HEAD", path, **kwargs)

    def options(self, path: str, **kwargs) -> TestResponse:
        return self.request("OPTIONS", path, **kwargs)

    def post(self, path: str, **kwargs) -> TestResponse:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs) -> TestResponse:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs) -> TestResponse:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs) -> TestResponse:
        return self.request("DELETE", path, **kwargs)


class LiveServer:
    """Run ``server`` on 127.0.0.1 on a free port in a background thread, for real clients."""

    def __init__(self, server) -> None:
        self.server = server
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def port(self) -> int:
        return self.server.port

    def __enter__(self) -> LiveServer:
        if self.server.socket is None:
            self.server.host, self.server.port = "127.0.0.1", 0
        sock = self.server.bind()
        self.thread = threading.Thread(target=self.server.serve, args=(sock,), daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.stop()
        if self.thread is not None:
            self.thread.join(timeout=self.server.graceful_timeout + 5)
