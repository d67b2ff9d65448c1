"""Probes, the drain after SIGTERM and shared ports, on real server processes.

The shutdown sequence: SIGTERM -> DRAIN_DELAY seconds still accepting and
serving, /readyz 503, ``Connection: close`` on every answer -> stop accepting
-> in-flight requests finish within GRACEFUL_TIMEOUT -> exit 0. A second
SIGTERM, or SIGINT, skips the rest of the drain. The drain tests use a long
delay and end it with a second signal, so no assertion depends on timing;
the one that lets the delay run out prints how long it took.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from http_server import WebServer
from http_server.testing import LiveServer, TestClient
from support.paths import TEMPLATE_DIR
from support.ports import free_port
from support.processes import ServerProcess, write_script
from support.rawhttp import read_response

TIMEOUT = 5

PROBED = '''\
import json, os, sys
sys.path.insert(0, {template!r})
from http_server import Path, WebServer


def hello(request, response):
    response.send(str(os.getpid()), 200, "text/plain")


server = WebServer(route=[Path(r"^/hello$", hello)], **json.loads(sys.argv[1]))
server.add_probes()
NOT_READY = os.path.join(os.path.dirname(__file__), "not-ready")


@server.readiness_check
def flag_file_absent():
    return not os.path.exists(NOT_READY)


server.run()
'''


class ProbedServer(ServerProcess):
    """A server process whose script adds the probes and a readiness check on a file."""

    def start(self, ready_timeout: float = 10.0) -> ProbedServer:
        write_script(self.folder, PROBED.format(template=str(TEMPLATE_DIR)))
        script = self.folder / "server.py"
        with open(self._stdout_path, "wb") as out, open(self._stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(script), json.dumps(self.options)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.stderr
            try:
                # Once the socket is bound, the request waits until the server serves:
                # the whole TIMEOUT, since starting may take seconds on a loaded machine.
                if requests.get(self.url + "/livez", timeout=TIMEOUT).status_code == 200:
                    return self
            except requests.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("server did not start:\n" + self.stderr)


def get(server, path: str) -> requests.Response:
    return requests.get(server.url + path, timeout=TIMEOUT)


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def readyz_status(server) -> int | None:
    try:
        return get(server, "/readyz").status_code
    except requests.ConnectionError:
        return None


# ==================================================================== probes


def test_livez_and_readyz_answer_200_once_started(tmp_path):
    with ProbedServer(tmp_path, access_log=True) as server:
        assert get(server, "/livez").json() == {"status": "alive"}
        assert get(server, "/readyz").json() == {"status": "ready"}
        assert get(server, "/hello").status_code == 200
        server.signal(signal.SIGTERM)
        assert server.wait() == 0
    logged = server.stdout
    assert "/hello" in logged
    assert "/livez" not in logged and "/readyz" not in logged  # probes stay off the log


def test_a_failing_readiness_check_makes_readyz_503_but_not_livez(tmp_path):
    with ProbedServer(tmp_path) as server:
        (tmp_path / "not-ready").touch()
        response = get(server, "/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "not ready", "failed": ["flag_file_absent"]}
        assert get(server, "/livez").status_code == 200
        (tmp_path / "not-ready").unlink()
        assert get(server, "/readyz").status_code == 200


def test_a_readiness_check_that_raises_counts_as_not_ready():
    server = WebServer(route=[], access_log=False)
    server.add_probes()

    @server.readiness_check
    def database():
        raise TimeoutError("ping timed out")

    with LiveServer(server) as live:
        response = requests.get(live.url + "/readyz", timeout=TIMEOUT)
    assert response.status_code == 503 and response.json()["failed"] == ["database"]


def test_readyz_says_starting_before_the_server_runs():
    server = WebServer(route=[], access_log=False)
    server.add_probes()
    client = TestClient(server)
    assert client.get("/readyz").status_code == 503
    assert client.get("/readyz").json() == {"status": "starting"}
    assert client.get("/livez").status_code == 200


def test_probe_paths_can_be_chosen():
    server = WebServer(route=[], access_log=False)
    server.add_probes(live="/health/live", ready="/health/ready")
    client = TestClient(server)
    assert client.get("/health/live").status_code == 200
    assert client.get("/livez").status_code == 404
    assert client.get("/health/live/extra").status_code == 404


# ===================================================================== drain


def test_during_the_drain_the_server_still_serves_with_connection_close(tmp_path):
    with ProbedServer(tmp_path, drain_delay=60.0) as server:
        keep_alive = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        keep_alive.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"Connection: close" not in read_response(keep_alive)
        server.signal(signal.SIGTERM)
        wait_until(lambda: readyz_status(server) == 503)
        assert get(server, "/readyz").json() == {"status": "draining"}
        fresh = get(server, "/hello")  # new connections are still accepted and served
        assert fresh.status_code == 200 and fresh.headers["Connection"] == "close"
        assert get(server, "/livez").status_code == 200
        keep_alive.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"\r\nConnection: close\r\n" in read_response(keep_alive)
        assert keep_alive.recv(1) == b""  # and then it is closed
        keep_alive.close()
        assert server.process.poll() is None  # still draining
        server.signal(signal.SIGTERM)  # a second SIGTERM skips the rest of the delay
        assert server.wait() == 0


def test_sigint_during_the_drain_skips_the_rest(tmp_path):
    with ProbedServer(tmp_path, drain_delay=60.0) as server:
        server.signal(signal.SIGTERM)
        wait_until(lambda: readyz_status(server) == 503)
        server.signal(signal.SIGINT)
        assert server.wait() == 0


def test_the_drain_ends_by_itself_after_the_delay(tmp_path):
    with ProbedServer(tmp_path, drain_delay=0.5) as server:
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        took = time.monotonic() - started
    print(f"\nDRAIN_DELAY=0.5: SIGTERM to exit in {took:.2f} s")


def test_workers_drain_and_a_second_sigterm_to_the_parent_ends_it(tmp_path):
    with ProbedServer(tmp_path, workers=2, drain_delay=60.0) as server:
        server.signal(signal.SIGTERM)
        wait_until(lambda: readyz_status(server) == 503)
        assert get(server, "/hello").headers["Connection"] == "close"
        server.signal(signal.SIGTERM)
        assert server.wait() == 0


# =============================================================== shared port


def test_reuse_port_lets_two_processes_share_a_port(tmp_path):
    port = free_port()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with ProbedServer(tmp_path / "a", port=port, reuse_port=True) as first, \
            ProbedServer(tmp_path / "b", port=port, reuse_port=True) as second:
        pids = set()
        for _ in range(400):  # new connections: the kernel spreads them by address hash
            pids.add(requests.get(f"http://127.0.0.1:{port}/hello", timeout=TIMEOUT).text)
            if len(pids) == 2:
                break
        assert pids == {str(first.process.pid), str(second.process.pid)}


def test_without_reuse_port_a_second_process_cannot_bind(tmp_path):
    port = free_port()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with ProbedServer(tmp_path / "a", port=port):
        script = write_script(tmp_path / "b")
        options = json.dumps({"host": "127.0.0.1", "port": port})
        second = subprocess.run([sys.executable, str(script), options], capture_output=True,
                                text=True, timeout=30)
    assert second.returncode != 0
    assert "cannot listen" in second.stderr and "Traceback" not in second.stderr


@pytest.mark.parametrize(("setting", "value"), [("DRAIN_DELAY", "-1"), ("REUSE_PORT", "maybe")])
def test_bad_shutdown_settings_stop_start_up_with_one_line(setting, value):
    code = (f"import sys; sys.path.insert(0, {str(TEMPLATE_DIR)!r})\n"
            "from http_server import WebServer, settings_from_env, ConfigError\n"
            "try:\n    WebServer(**settings_from_env())\n"
            "except ConfigError as error:\n    sys.exit(f'configuration error: {error}')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={setting: value, "PATH": "/usr/bin:/bin"}, timeout=30)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and setting in lines[0], result.stderr


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def test_a_client_connected_as_the_server_stops_still_gets_its_answer(tmp_path):
    with ProbedServer(tmp_path) as server:
        early = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        server.signal(signal.SIGTERM)  # the client has not sent its request yet
        wait_until(lambda: refuses_connections(server.port))
        early.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_response(early)
        early.close()
        assert answer.startswith(b"HTTP/1.1 200 ") and b"\r\nConnection: close\r\n" in answer
        assert server.wait() == 0
