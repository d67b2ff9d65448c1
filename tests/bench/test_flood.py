"""The flood workload of the benchmark (bench/flood.py, bench/flood_bench.py), on a live server.

- the request the flood sends is one that our server refuses (400), padded or not;
- a tiny flood reports every figure the table prints, and the rows print in report.py's table.

Figures only are checked, never how fast: the benchmark is where the speed is read.
"""

import asyncio
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"

http_server = pytest.importorskip("http_server")
import flood  # noqa: E402
import flood_bench  # noqa: E402
from http_server.testing import LiveServer  # noqa: E402
from support.rawhttp import raw_request  # noqa: E402
from tiny import HELLO  # noqa: E402


def hello(request, response):
    response.send(HELLO, 200, "text/plain")


def live_server() -> LiveServer:
    server = http_server.WebServer(host="127.0.0.1", port=0,
                                   route=[http_server.Path(r"^/$", hello)], threads=4,
                                   access_log=False, max_connections=1000)
    return LiveServer(server)


@pytest.mark.parametrize("pad_bytes", [0, flood_bench.FLOODS["flood-big"]["pad_bytes"]])
def test_the_flood_request_is_refused_with_400(pad_bytes):
    request = flood.malformed_request(pad_bytes)
    assert request.endswith(b"Bad Header: x\r\n\r\n")
    assert len(request) > pad_bytes
    with live_server() as live:
        assert flood.status_of(raw_request(live.port, request, timeout=10)) == 400


def test_status_of_reads_only_a_status_line():
    assert flood.status_of(b"HTTP/1.1 400 Bad Request\r\n\r\n") == 400
    assert flood.status_of(b"HTTP/1.1 4") is None  # the first bytes of an answer, cut short
    assert flood.status_of(b"HTTP/1.1 400 Bad") is None
    assert flood.status_of(b"garbage 400\r\n") is None


def test_a_tiny_flood_reports_every_figure_and_prints_in_the_table():
    import report

    with live_server() as live:
        args = Namespace(host="127.0.0.1", port=live.port, path="/", pid=os.getpid(),
                         connections=4, waves=2, interval=0.5, pad_bytes=100, concurrency=10,
                         probe_every=0.1, probes=400, settle=0.0, timeout=30.0)
        result = asyncio.run(flood.measure(args))
    assert result["probes"] == 10  # one every 0.1 s over the 2 x 0.5 s of the flood
    assert result["probe_failures"] == 0 and result["probe_errors"] == {}, result
    assert 0 < result["probe_p50_ms"] <= result["probe_p99_ms"] <= result["probe_max_ms"]
    assert 1 <= result["attack_connections"] <= 8
    assert set(result["attack_answers"]) <= {"400"}
    assert result["attack_errors"] == {}
    assert result["rss_peak_kib"] >= result["rss_base_kib"] > 0
    assert result["rss_after_kib"] > 0
    assert result["answers_after"] is True

    rows = [{"run": 1, "server": name, "workload": "flood", **flood_bench.row_from(result)}
            for name in ("ours", flood_bench.ARENA)]
    header, body = report.table_rows(rows, runs=1, names=report.labels(quick=False))
    label = flood_bench.label("flood", flood_bench.FLOODS["flood"])
    assert [line[:2] for line in body] == [[label, "ours"], [label, flood_bench.ARENA]]
    assert "refused in time" in body[0][-1] and "RSS base" in body[0][-1]
    p99, rss = header.index("p99 ms"), header.index("RSS MiB")
    assert body[0][p99].endswith(" (1.00)") and body[0][rss].endswith(" (1.00)")
    assert body[1][rss] == body[0][rss]  # the same figures: the same ratio to ours


@pytest.mark.parametrize("arguments,why", [
    (["--waves", "0"], "--waves must be at least 1"),
    (["--host", "192.0.2.1"], "--host 192.0.2.1 is not a loopback address: floods stay on this "
                              "machine"),
])
def test_bad_arguments_get_one_clear_line(arguments, why):
    done = subprocess.run([sys.executable, str(BENCH / "flood.py"), "--port", "1", *arguments],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"flood.py: error: {why}"


def test_only_loopback_hosts_may_be_flooded():
    assert flood.is_loopback("127.0.0.1") and flood.is_loopback("localhost")
    assert not flood.is_loopback("192.0.2.1") and not flood.is_loopback("not a host")
