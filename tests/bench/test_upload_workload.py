"""The upload workload of the benchmark (bench/uploads.py, the apps' upload views), live.

- ours and the peers' apps answer an upload with the same bytes: size and sha256 of the body,
  raw or the one file of a multipart form;
- a tiny run against our server answers every upload right and reports every figure the table
  prints, and the rows print in report.py's table.

Figures only are checked, never how fast nor how much memory: the benchmark is where they are read.
"""

import hashlib
import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"

http_server = pytest.importorskip("http_server")
import report  # noqa: E402
import uploads  # noqa: E402
from http_server.testing import LiveServer  # noqa: E402
from test_bench_harness import call_asgi, call_wsgi, ours_server  # noqa: E402

DATA = os.urandom(1_500_000)  # past BODY_SPOOL_SIZE (1 MiB): the body waits in a file
WANT = {"size": len(DATA), "sha256": hashlib.sha256(DATA).hexdigest()}


def answer_of(port: int, form: bool) -> dict:
    status, body = uploads.upload(port, uploads.request_bytes(port, DATA, form), timeout=30)
    assert status == 200, body
    return json.loads(body)


@pytest.mark.parametrize("form", [False, True], ids=["raw", "multipart"])
def test_ours_answers_the_size_and_sha256_of_the_upload(form):
    with LiveServer(ours_server()) as live:
        assert answer_of(live.port, form) == WANT


def test_the_peer_apps_answer_the_same_bytes_for_a_raw_upload():
    with LiveServer(ours_server()) as live:
        request = uploads.request_bytes(live.port, DATA, form=False)
        ours = uploads.upload(live.port, request, timeout=30)[1]
    for call in (call_wsgi, call_asgi):
        status, headers, content = call("POST", "/upload", DATA)
        assert (status, content) == (200, ours), call.__name__
        assert headers["content-type"] == "application/json", call.__name__


def test_the_peer_apps_answer_the_same_bytes_for_a_multipart_upload():
    pytest.importorskip("python_multipart", reason="python-multipart is in bench/.venv only")
    request = uploads.request_bytes(1, DATA, form=True)
    _, _, body = request.partition(b"\r\n\r\n")
    content_type = f"multipart/form-data; boundary={uploads.BOUNDARY}"
    for call in (call_wsgi, call_asgi):
        status, _, content = call("POST", "/upload-form", body, content_type=content_type)
        assert (status, json.loads(content)) == (200, WANT), call.__name__


def test_a_tiny_upload_run_reports_every_figure_and_prints_in_the_table():
    with LiveServer(ours_server()) as live:
        args = Namespace(port=live.port, pid=os.getpid(), clients=3, megabytes=2, rounds=2,
                         form=True, settle=0.0, timeout=30.0)
        result = uploads.measure(args)
    assert result["uploads"] == 6 and result["answered"] == 6, result
    assert result["errors"] == []
    assert result["bytes_each"] == 2_000_000
    assert result["uploads_per_s"] > 0 and result["cpu_seconds"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert min(result["rss_base_kib"], result["rss_peak_kib"], result["rss_after_kib"]) > 0

    rows = [{"run": 1, "server": "ours", "workload": "upload-form", **uploads.row_from(result)}]
    header, body = report.table_rows(rows, runs=1)
    assert body[0][:2] == [uploads.labels(quick=False)["upload-form"], "ours"]
    assert body[0][-1].startswith("6/6 right; RSS base ")
    assert body[0][header.index("req/s")].endswith(" (1.00)")


@pytest.mark.parametrize("arguments,why", [
    (["--clients", "0"], "--clients must be at least 1"),
    (["--megabytes", "0"], "--megabytes must be at least 1"),
])
def test_bad_arguments_get_one_clear_line(arguments, why):
    done = subprocess.run([sys.executable, str(BENCH / "uploads.py"), "--port", "1", "--pid",
                           "1", *arguments], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"uploads.py: error: {why}"
