"""Real server processes for the tests: a small script in a temporary folder, run with
``subprocess``, its stdout and stderr going to files the test reads afterwards.

    with ServerProcess(tmp_path, threads=4) as server:
        requests.get(server.url + "/hello")
        server.signal(signal.SIGTERM)
        assert server.wait() == 0
    server.stdout, server.stderr   # what the process printed
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from support.paths import TEMPLATE_DIR
from support.ports import free_port

SCRIPT = '''\
import json, os, resource, sys, time
sys.path.insert(0, {template!r})
from http_server import Path, WebServer


def hello(request, response):
    response.send("hello", 200, "text/plain")


def slow(request, response):
    mark = request.get_parameter("mark")
    if mark:  # tells the test that the view is running
        open(mark, "w").close()
    time.sleep(float(request.get_parameter("seconds", "1")))
    response.send("slow done", 200, "text/plain")


def pid(request, response):
    response.send(str(os.getpid()), 200, "text/plain")


def fail(request, response):
    raise RuntimeError("view exploded on purpose")


def rlimit(request, response):
    response.sendJson(list(resource.getrlimit(resource.RLIMIT_NOFILE)))


urlpatterns = [
    Path(r"^/hello$", hello, name="hello"),
    Path(r"^/slow$", slow, name="slow"),
    Path(r"^/pid$", pid, name="pid"),
    Path(r"^/fail$", fail, name="fail"),
    Path(r"^/rlimit$", rlimit, name="rlimit"),
]

server = WebServer(route=urlpatterns, **json.loads(sys.argv[1]))
server.run()
'''


def write_script(folder: Path, text: str | None = None, name: str = "server.py") -> Path:
    script = folder / name
    script.write_text(text if text is not None else SCRIPT.format(template=str(TEMPLATE_DIR)))
    return script


class ServerProcess:
    """``python server.py`` with ``WebServer(**options)`` on a free port of 127.0.0.1."""

    def __init__(self, folder: Path, **options) -> None:
        self.folder = Path(folder)
        self.port = options.pop("port", None) or free_port()
        self.options = {"host": "127.0.0.1", "port": self.port, **options}
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self._stdout_path = self.folder / f"stdout-{self.port}.txt"
        self._stderr_path = self.folder / f"stderr-{self.port}.txt"

    # -- life cycle -------------------------------------------------------

    def start(self, ready_timeout: float = 10.0) -> ServerProcess:
        script = write_script(self.folder)
        with open(self._stdout_path, "wb") as out, open(self._stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(script), json.dumps(self.options)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: cleanup reaches its workers
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early ({self.process.returncode}):\n"
                                   + self.stderr)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("server did not start listening:\n" + self.stderr)

    def signal(self, number: int = signal.SIGTERM) -> None:
        self.process.send_signal(number)

    def wait(self, timeout: float = 15.0) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Kill what is left of the process group (after a failed test)."""
        if self.process is not None:
            kill_group(self.process)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- output -----------------------------------------------------------

    @property
    def stdout(self) -> str:
        return self._stdout_path.read_bytes().decode("utf-8", "backslashreplace")

    @property
    def stdout_bytes(self) -> bytes:
        return self._stdout_path.read_bytes()

    @property
    def stderr(self) -> str:
        return self._stderr_path.read_bytes().decode("utf-8", "backslashreplace")


def kill_group(process: subprocess.Popen) -> None:
    """Kill what is left of the group of ``process``, started in a session of its own: the
    process and any worker it forked, even once the parent is gone."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already
    process.wait(5)


def wait_for_file(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.01)
