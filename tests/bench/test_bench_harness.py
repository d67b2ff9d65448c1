"""Cheap checks of the benchmark harness (bench/): what it measures is what it claims.

- the apps that the peers serve (WSGI for waitress/gunicorn, ASGI for uvicorn) answer the same
  bytes under the same Content-Type as ours, so the table compares like with like;
- bench/idle.py really holds its connections open on a live server and reads its RSS.
"""

import asyncio
import importlib.util
import io
import os
import shutil
import sys
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
APPS = BENCH / "apps"

http_server = pytest.importorskip("http_server")
import asgi_app  # noqa: E402
import idle  # noqa: E402
import wsgi_app  # noqa: E402
from http_server.testing import LiveServer, TestClient  # noqa: E402

POST_BODY = bytes(range(256)) * 16  # 4 KiB


def load_ours():
    spec = importlib.util.spec_from_file_location("bench_ours", APPS / "ours.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ours_server(port=0):
    ours = load_ours()
    server = http_server.WebServer(host="127.0.0.1", port=port, route=ours.urlpatterns,
                                   threads=4, access_log=False, max_connections=1000)
    server.Middlewares.append(ours.pid_header)
    return server


def call_wsgi(method, path, body=b"", content_type=""):
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"] = int(status.split()[0])
        captured["headers"] = {k.lower(): v for k, v in headers}

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": content_type, "wsgi.input": io.BytesIO(body)}
    content = b"".join(wsgi_app.app(environ, start_response))
    return captured["status"], captured["headers"], content


def call_asgi(method, path, body=b"", content_type=""):
    sent = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    headers = [(b"content-type", content_type.encode())] if content_type else []
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    asyncio.run(asgi_app.app(scope, receive, send))
    start, body_msg = sent
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, body_msg["body"]


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/", b""),
    ("GET", "/users/42", b""),
    ("POST", "/echo", POST_BODY),
    ("GET", "/wait", b""),
])
def test_peer_apps_answer_the_same_bytes_as_ours(method, path, body):
    client = TestClient(ours_server())
    ours = client.request(method, path, data=body or None)
    assert ours.status_code == 200
    assert ours.headers.get("X-Pid") == str(os.getpid())
    for call in (call_wsgi, call_asgi):
        status, headers, content = call(method, path, body)
        assert status == 200, call.__name__
        assert content == ours.content, call.__name__
        assert headers["content-type"] == ours.headers["Content-Type"], call.__name__
        assert headers["x-pid"] == str(os.getpid()), call.__name__


def test_idle_tool_holds_connections_on_a_live_server():
    with LiveServer(ours_server()) as live:
        port = int(live.url.rsplit(":", 1)[1])
        args = Namespace(host="127.0.0.1", port=port, path="/", pid=os.getpid(),
                         connections=200, concurrency=50, hold=0.2, probes=20, settle=0.1,
                         timeout=5.0, open_deadline=20.0)
        result = asyncio.run(idle.measure(args))
    assert result["opened"] == 200, result
    assert result["open_errors"] == {}
    assert result["still_open"] == 200
    assert result["probe_failures"] == 0
    assert result["probe_p99_ms"] is not None and result["probe_p99_ms"] > 0
    assert result["rss_held_kib"] > 0


def test_tree_rss_counts_children():
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert child.pid in idle.process_tree(os.getpid())
        assert idle.tree_rss_kib(os.getpid()) > idle.rss_kib(os.getpid())
    finally:
        child.kill()
        child.wait()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make bench does)")
def test_wrk_scripts_report_figures_and_pids():
    import measure

    with LiveServer(ours_server()) as live:
        post = measure.run_wrk(live.url + "/echo", 1, wrk_args=[], lua_args=["post", "4096"],
                           pin=False, connections=4)
        pids = measure.run_wrk(live.url + "/", 1, wrk_args=[], lua="pids.lua", pin=False,
                           connections=4)
    assert post["requests"] > 0 and post["error_count"] == 0, post
    assert post["bytes"] > post["requests"] * 4096  # every answer carried the echoed body
    assert pids["pids"] == {str(os.getpid()): pids["requests"]}
