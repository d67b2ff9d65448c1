"""A 1 GiB file to 10 clients at once keeps the server's memory flat (sendfile, no reads).

The server runs in a subprocess, so that its resident set size can be read from
/proc/<pid>/status while the transfers run; the file is sparse, so it costs
no disk. Linux only (it needs /proc).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "{{cookiecutter.project}}"
GIB = 1 << 30
CLIENTS = 10
MARKER = b"END-OF-THE-GIB"
# RSS may grow by this much at most while 10 GiB go out (thread stacks, buffers, the
# multipart limit would be 1 MiB per request); reading the file would cost 1 GiB per client.
RSS_GROWTH_LIMIT = 48 * 1024 * 1024

SERVER_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from http_server import WebServer

    server = WebServer(host="127.0.0.1", port=0, route=[], threads=16, access_log=False,
                       log_level="warning")
    server.fileServer("/media/", sys.argv[2])
    server.bind()
    print(server.port, flush=True)
    server.run()
    """
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)"),
]


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def fetch(port: int, path: str, results: list, index: int, deadline: float) -> None:
    """GET ``path``, count the body bytes without keeping them, remember the tail."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            buf = bytearray(1 << 20)
            view = memoryview(buf)
            head = b""
            while b"\r\n\r\n" not in head:
                n = sock.recv_into(view)
                if n == 0:
                    raise AssertionError("closed before the headers")
                head += bytes(view[:n])
            head, _, first = head.partition(b"\r\n\r\n")
            received = len(first)
            tail = first[-64:]
            while time.monotonic() < deadline:
                n = sock.recv_into(view)
                if n == 0:
                    break
                received += n
                tail = (tail + bytes(view[max(0, n - 64):n]))[-64:]
            results[index] = (head, received, tail)
    except Exception as error:  # noqa: BLE001 - reported by the test
        results[index] = error


@pytest.fixture
def sparse_gib(tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    path = root / "big.img"
    with open(path, "wb") as f:
        f.truncate(GIB)
        f.seek(GIB - len(MARKER))
        f.write(MARKER)
    assert os.stat(path).st_blocks * 512 < 1 << 20  # really sparse
    return root


def test_1gib_to_10_clients_keeps_memory_flat(sparse_gib):
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT, str(TEMPLATE_DIR), str(sparse_gib)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        port = int(proc.stdout.readline())
        # Warm up: one small request, so that imports and the first thread are counted.
        warm = [None]
        fetch_small = threading.Thread(target=fetch, args=(port, "/media/nope", warm, 0,
                                                            time.monotonic() + 10))
        fetch_small.start()
        fetch_small.join()
        baseline = rss_kib(proc.pid)

        deadline = time.monotonic() + 90
        results: list = [None] * CLIENTS
        threads = [
            threading.Thread(target=fetch, args=(port, "/media/big.img", results, i, deadline))
            for i in range(CLIENTS)
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        peak = baseline
        while any(t.is_alive() for t in threads):
            peak = max(peak, rss_kib(proc.pid))
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        peak = max(peak, rss_kib(proc.pid))
        hwm = rss_kib(proc.pid, "VmHWM")

        for result in results:
            assert not isinstance(result, Exception), result
            head, received, tail = result
            assert head.startswith(b"HTTP/1.1 200"), head
            assert b"Content-Length: %d" % GIB in head
            assert received == GIB, f"received {received} of {GIB} in {elapsed:.1f}s"
            assert tail.endswith(MARKER)
        growth = max(peak, hwm) * 1024 - baseline * 1024
        print(
            f"\n1 GiB x {CLIENTS} clients in {elapsed:.1f}s: server RSS baseline "
            f"{baseline / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, VmHWM {hwm / 1024:.1f} MiB"
        )
        assert growth < RSS_GROWTH_LIMIT, (baseline, peak, hwm)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
