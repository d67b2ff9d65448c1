"""Testing helpers: ``TestClient`` runs the app in-process; ``LiveServer`` runs it on a real socket.

    client = TestClient(server)
    assert client.get("/").text == "hello world !"

    with LiveServer(server) as live:
        assert requests.get(live.url + "/").status_code == 200

``TestClient`` behaves like a ``requests.Session`` pointed at ``http://testserver``:
the query in the path and ``params=`` are merged, every ``Set-Cookie`` shows in
``response.headers``, and cookies the app sets are kept in ``client.cookies`` (an
``http.cookiejar`` jar, the one ``requests`` uses) and sent back on later requests.
"""

from __future__ import annotations

import json as json_module
import os
import re
import secrets
import string
import threading
import urllib.request
from collections.abc import Iterable, Mapping
from http import cookiejar
from urllib.parse import quote, urlencode, urljoin, urlsplit

from .headers import Headers
from .request import Requests
from .response import Response, has_body
from .testcookies import CookieJar, ResponseCookies, SetCookieSource

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 30  # as requests

# What requests leaves unescaped when it re-quotes a URL (requests.utils.requote_uri):
# reserved characters and '%', so escapes already in the path are kept as they are.
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")


class HTTPStatusError(Exception):
    """Raised by ``TestResponse.raise_for_status`` for a 4xx or 5xx answer."""

    def __init__(self, message: str, response: TestResponse) -> None:
        super().__init__(message)
        self.response = response


class TestResponse:
    """What a ``requests.Response`` offers a test, for an answer made in-process."""

    __test__ = False  # not a pytest test class

    def __init__(self, response: Response, url: str, method: str) -> None:
        self.url = url
        self.history: list[TestResponse] = []
        # The header section exactly as the server writes it, so that framing headers
        # (Content-Length, Transfer-Encoding) and Set-Cookie lines are the live ones.
        chunked = response.stream_body is not None and method != "HEAD"
        head = response.head_bytes(keep_alive=not response.wants_close, chunked=chunked)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        _, status, self.reason = status_line.split(" ", 2)
        self.status_code = int(status)
        self.headers = Headers()
        self.raw_cookies: list[str] = []  # each Set-Cookie value, in the order sent
        for line in lines:
            if not line:
                continue
            name, _, value = line.partition(": ")
            if name.lower() == "set-cookie":
                self.raw_cookies.append(value)
            if name in self.headers:  # repeated fields read as one, joined like requests does
                self.headers[name] += ", " + value
            else:
                self.headers[name] = value
        self.cookies = ResponseCookies(self.raw_cookies)
        self.content = _body(response, method)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        return json_module.loads(self.content)

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def is_redirect(self) -> bool:
        return self.status_code in REDIRECT_STATUSES and "Location" in self.headers

    def raise_for_status(self) -> None:
        if 400 <= self.status_code < 600:
            kind = "Client" if self.status_code < 500 else "Server"
            raise HTTPStatusError(
                f"{self.status_code} {kind} Error: {self.reason} for url: {self.url}", self)

    def __repr__(self) -> str:
        return f"<TestResponse {self.status_code}>"


def _body(response: Response, method: str) -> bytes:
    """The body as a client would read it: none for HEAD, 1xx, 204 and 304."""
    try:
        if not has_body(method, response.status):
            return b""
        if response.file is not None:
            return response.file.read_all()
        if response.stream_body is not None:
            return b"".join(item.encode("utf-8") if isinstance(item, str) else item
                            for item in response.stream_body)
        return response.body
    finally:
        if response.file is not None:
            response.file.close()
        if hasattr(response.stream_body, "close"):  # as the connection does, even after HEAD
            response.stream_body.close()


class TestClient:
    """Calls the server's dispatcher (middleware, static files, routes, errors) without a socket,
    the way a ``requests.Session`` would call it over one.

    Unlike requests, redirects are not followed unless ``follow_redirects=True``
    (here or per request), so a test sees the 3xx itself.
    """

    __test__ = False

    def __init__(self, server, base_url: str = "http://testserver",
                 follow_redirects: bool = False) -> None:
        self.server = server
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            raise ValueError(f"base_url must be http:// or https:// and a host, not {base_url!r}")
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        self.follow_redirects = follow_redirects
        self.headers = Headers()  # sent with every request; a request's own headers win
        self._domain = cookiejar.eff_request_host(urllib.request.Request(self.base_url))[1]
        self._cookies = CookieJar(self._domain)

    def __enter__(self) -> TestClient:
        """``with TestClient(server) as client:`` runs the server's startup hooks first
        and its shutdown hooks at the end, as a worker process does around its requests."""
        self.server.run_startup_hooks()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.run_shutdown_hooks()

    @property
    def cookies(self) -> CookieJar:
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: Mapping[str, str] | cookiejar.CookieJar) -> None:
        jar = CookieJar(self._domain)
        jar.update(cookies)
        self._cookies = jar

    def request(self, method: str, path: str, *, params=None,
                headers: Mapping[str, str | None] | None = None,
                cookies: Mapping[str, str] | None = None,
                data: bytes | str | Mapping | None = None, json=None, files=None,
                follow_redirects: bool | None = None,
                allow_redirects: bool | None = None) -> TestResponse:
        """One request, like ``requests.Session.request``; ``allow_redirects`` is
        requests' name for ``follow_redirects``, ``files=`` makes a multipart/form-data body
        as requests does (with the ``data=`` fields first)."""
        method = method.upper()
        url = self._url(path, params)
        body, content_type = _encode_files(files, data) if files else _encode_body(data, json)
        request_headers = Headers()
        for given in (self.headers, headers or {}):
            for name, value in given.items():
                if value is None:  # as in requests: None takes a client header out
                    request_headers.pop(name, None)
                else:
                    request_headers[name] = str(value)
        if content_type and "content-type" not in request_headers:
            request_headers["Content-Type"] = content_type
        if body and "content-length" not in request_headers:
            request_headers["Content-Length"] = str(len(body))
        if follow_redirects is None:
            follow_redirects = allow_redirects
        if follow_redirects is None:
            follow_redirects = self.follow_redirects
        cookies = dict(cookies or {})
        history: list[TestResponse] = []
        while True:
            response = self._send(method, url, body, request_headers, cookies)
            if not (follow_redirects and response.is_redirect):
                break
            if len(history) == MAX_REDIRECTS:
                raise RuntimeError(f"more than {MAX_REDIRECTS} redirects, the last to {url}")
            history.append(response)
            url = self._url(urljoin(url, response.headers["Location"]), None)
            method = _method_after_redirect(method, response.status_code)
            if response.status_code not in (307, 308):  # only these keep the body
                body = b""
                for name in ("Content-Type", "Content-Length", "Transfer-Encoding"):
                    request_headers.pop(name, None)
        response.history = history
        return response

    def _url(self, path: str, params) -> str:
        """``path`` (with its query) and ``params`` as one URL, escaped like requests does."""
        parts = urlsplit(path)
        if parts.scheme or parts.netloc:
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin != self.base_url:
                raise ValueError(f"the test client only reaches {self.base_url}, not {origin}")
        query = parts.query
        extra = _encode_params(params)
        if extra:
            query = f"{query}&{extra}" if query else extra
        target = _requote(parts.path or "/")
        if query:
            target += "?" + _requote(query)
        return self.base_url + target

    def _send(self, method: str, url: str, body: bytes, headers: Headers,
              cookies: dict[str, str]) -> TestResponse:
        """One request to the app, with the jar's cookies; the answer's cookies go to the jar."""
        request_headers = Headers({"Host": urlsplit(url).netloc})
        cookie_header = self._cookie_header(url, cookies)
        if cookie_header:
            request_headers["Cookie"] = cookie_header
        request_headers.update(headers)  # a Host or Cookie given by the test wins
        target = url[len(self.base_url):]
        request = Requests(method, target, "HTTP/1.1", request_headers, body, "127.0.0.1")
        response = TestResponse(self.server.app.handle(request, Response()), url, method)
        if response.raw_cookies:
            self._cookies.extract_cookies(SetCookieSource(response.raw_cookies),
                                          urllib.request.Request(url))
        return response

    def _cookie_header(self, url: str, cookies: dict[str, str]) -> str:
        """The jar's cookies for ``url`` with this request's own ``cookies=`` first: they win
        over the jar's of the same name (requests sends both, the jar's first)."""
        probe = urllib.request.Request(url)
        self._cookies.add_cookie_header(probe)
        pairs = [f"{name}={value}" for name, value in cookies.items()]
        from_jar = probe.get_header("Cookie")
        if from_jar:
            pairs += [pair for pair in from_jar.split("; ")
                      if pair.partition("=")[0] not in cookies]
        return "; ".join(pairs)

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


def _requote(text: str) -> str:
    """Escape a path or query as urllib3 and requests do. If every '%' starts an escape,
    the escapes stay (upper case, or decoded if they stand for an unreserved character);
    otherwise the text is taken as unescaped and every '%' becomes %25."""
    if text.count("%") == len(_ESCAPE.findall(text)):
        text = _ESCAPE.sub(_normalise_escape, text)
    else:
        text = text.replace("%", "%25")
    return quote(text, safe=_URL_SAFE)


def _normalise_escape(escape: re.Match) -> str:
    char = chr(int(escape.group(1), 16))
    return char if char in _UNRESERVED else escape.group(0).upper()


def _encode_params(params) -> str:
    """``params=`` or a form ``data=`` as requests encodes them: a dict or a list of pairs,
    a list value as repeated keys, ``None`` values left out; a string as it is."""
    if not params:
        return ""
    if isinstance(params, bytes):
        return params.decode("ascii")
    if isinstance(params, str):
        return params
    return urlencode(list(_form_pairs(params)))


def _form_pairs(params):
    """(name, value) of a dict or a list of pairs, a list value as repeated names, ``None``
    values left out."""
    pairs = params.items() if isinstance(params, Mapping) else params
    for name, values in pairs:
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            values = [values]
        yield from ((name, value) for value in values if value is not None)


def _encode_body(data, json) -> tuple[bytes, str | None]:
    """The body and its Content-Type: JSON, a form from a mapping or pairs, or bytes as given."""
    if json is not None:
        return json_module.dumps(json).encode("utf-8"), "application/json"
    if isinstance(data, str):
        return data.encode("utf-8"), None
    if isinstance(data, (bytes, bytearray)):
        return bytes(data), None
    if data:
        return _encode_params(data).encode("ascii"), "application/x-www-form-urlencoded"
    return b"", None


def _encode_files(files, data) -> tuple[bytes, str]:
    """A multipart/form-data body as requests encodes it (``requests.models._encode_files``,
    urllib3's ``encode_multipart_formdata``): the ``data=`` fields, then each file, given as
    a file object, content, or a tuple ``(filename, content or file[, content_type[,
    headers]])``; a dict or a list of pairs (a list for several files under one name)."""
    if isinstance(data, (str, bytes, bytearray)):
        raise ValueError("Data must not be a string.")
    boundary = secrets.token_hex(16)  # as urllib3's choose_boundary
    parts = [(name, None, None, None, value if isinstance(value, bytes) else str(value))
             for name, value in _form_pairs(data or {})]
    for name, given in files.items() if isinstance(files, Mapping) else files:
        content_type = headers = None
        if isinstance(given, (tuple, list)):
            filename, content, *rest = given
            content_type, headers = (*rest, None, None)[:2]
        else:
            filename, content = _guess_filename(given) or name, given
        if content is None:
            continue
        if hasattr(content, "read"):
            content = content.read()
        parts.append((name, filename, content_type, headers, content))
    body = bytearray()
    for name, filename, content_type, headers, content in parts:
        lines = [f"--{boundary}", "Content-Disposition: form-data; " + _header_parameter(
            "name", name) + ("" if filename is None else "; " + _header_parameter(
                "filename", filename))]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines += [f"{key}: {value}" for key, value in (headers or {}).items() if value]
        body += ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        body += content.encode("utf-8") if isinstance(content, str) else bytes(content)
        body += b"\r\n"
    body += f"--{boundary}--\r\n".encode("ascii")
    return bytes(body), f"multipart/form-data; boundary={boundary}"


def _header_parameter(name: str, value) -> str:
    """``name="value"`` as browsers, curl and urllib3 write it: LF, CR and " percent-encoded."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return f'{name}="{value.translate({10: "%0A", 13: "%0D", 34: "%22"})}"'


def _guess_filename(file) -> str | None:
    """The file name of a file object, as requests guesses it (``requests.utils``)."""
    name = getattr(file, "name", None)
    if name and isinstance(name, (str, bytes)) and name[:1] not in ("<", b"<") \
            and name[-1:] not in (">", b">"):
        return os.path.basename(name)
    return None


def _method_after_redirect(method: str, status: int) -> str:
    """requests' rule (Session.rebuild_method): 303, and 302 except for HEAD, become GET;
    so does a POST answered with 301."""
    if status in (302, 303) and method != "HEAD":
        return "GET"
    if status == 301 and method == "POST":
        return "GET"
    return method


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
