"""The running server, over a real socket, with a real HTTP client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent


def test_hello_world(live_url):
    response = requests.get(f"{live_url}/", timeout=5)
    assert response.status_code == 200
    assert response.text == "hello world !"


def test_json_api(live_url):
    response = requests.get(f"{live_url}/api/hello/ada", timeout=5)
    assert response.json() == {"message": "hello, ada!"}


def test_json_and_form_bodies(live_url):
    as_json = requests.post(f"{live_url}/api/greetings", json={"name": "Grace"}, timeout=5)
    as_form = requests.post(f"{live_url}/api/greetings", data={"name": "Linus"}, timeout=5)
    assert as_json.status_code == as_form.status_code == 201
    assert as_form.json() == {"message": "hello, Linus!"}


def test_unknown_path_is_a_404(live_url):
    assert requests.get(f"{live_url}/no/such/page", timeout=5).status_code == 404


def raw_exchange(live_url: str, data: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send bytes as given; the status line, headers and body of the answer."""
    host, port = live_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return status_line, headers, body


def test_a_malformed_request_gets_a_json_400_and_the_connection_closes(live_url):
    status_line, headers, body = raw_exchange(
        live_url, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n"
    )
    assert status_line.startswith("HTTP/1.1 400 ")
    assert headers["Content-Type"] == "application/json"
    assert headers["Connection"] == "close"
    assert json.loads(body) == {"error": "invalid character in a header field", "status": 400}


def test_a_body_over_the_limit_gets_a_json_413_before_it_is_sent(live_url):
    head = b"POST /api/greetings HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"
    status_line, headers, body = raw_exchange(live_url, head)
    assert status_line.startswith("HTTP/1.1 413 ")
    assert json.loads(body)["status"] == 413


def test_redirect(live_url):
    response = requests.get(f"{live_url}/home", allow_redirects=False, timeout=5)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert requests.get(f"{live_url}/home", timeout=5).text == "hello world !"


def test_media_file(live_url):
    response = requests.get(f"{live_url}/media/hello.txt", timeout=5)
    assert response.status_code == 200
    assert response.text.startswith("Hello from the media folder.")


def test_info_after_the_startup_hook_ran(live_url):
    body = requests.get(f"{live_url}/api/info", timeout=5).json()
    assert body["name"] == "{{ cookiecutter.project }}" and body["uptime_seconds"] >= 0


def test_probes(live_url):
    assert requests.get(f"{live_url}/livez", timeout=5).json() == {"status": "alive"}
    assert requests.get(f"{live_url}/readyz", timeout=5).json() == {"status": "ready"}


def test_health_check(live_url):
    response = requests.get(f"{live_url}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_metrics_count_the_requests_in_the_prometheus_format(live_url):
    requests.get(f"{live_url}/api/hello/ada", timeout=5)
    response = requests.get(f"{live_url}/metrics", timeout=5)
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    # The route's name, not the path: a scan of random paths cannot add series.
    assert samples['http_requests_total{method="GET",route="hello",status="200"}'] >= 1
    assert not [name for name in samples if "/api/hello/" in name]
    assert "# TYPE http_request_duration_seconds histogram" in response.text
    assert samples["http_requests_in_flight"] >= 1  # this scrape


def test_request_id_is_generated_or_kept(live_url):
    generated = requests.get(f"{live_url}/", timeout=5).headers["X-Request-ID"]
    kept = requests.get(f"{live_url}/", headers={"X-Request-ID": "abc-123"}, timeout=5)
    assert len(generated) == 32
    assert kept.headers["X-Request-ID"] == "abc-123"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_python_main_py_serves_logs_and_stops_cleanly_on_sigterm():
    port = free_port()
    environment = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "1",
        "LOG_FORMAT": "json",
        "ACCESS_LOG": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "main.py"],
        cwd=PROJECT_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "the server did not start in 15 s"
                time.sleep(0.1)
        assert response.status_code == 200
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=2)
        assert requests.get(f"http://127.0.0.1:{port}/livez", timeout=2).status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        # One JSON access-log line per request on stdout, with the request id;
        # none for the health check, the probes and the metrics, which are asked for all the time.
        lines = [json.loads(line) for line in process.stdout.read().decode().splitlines()]
        index = [line for line in lines if line["target"] == "/"][-1]
        assert index["status"] == 200
        assert index["request_id"] == page.headers["X-Request-ID"]
        unlogged = ("/healthz", "/livez", "/readyz", "/metrics")
        assert not [line for line in lines if line["target"] in unlogged]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
