"""The instruction counter of the benchmark (bench/instructions.py): our server under callgrind.

A tiny count on a live server checks the figures' shape and sign and that each figure is the
difference of two batches; never a timing, and never a value beyond its sign.
"""

import dataclasses
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"

import instructions  # noqa: E402
import measure  # noqa: E402
import report  # noqa: E402
from workloads import BY_NAME, VENV_BIN, WORK  # noqa: E402


def test_per_request_is_the_difference_of_the_two_batches():
    small = {"requests": 10, "instructions": 1_500}
    large = {"requests": 30, "instructions": 3_500}
    assert instructions.per_request(small, large) == 100.0  # (3500 - 1500) / (30 - 10)
    with pytest.raises(ValueError):
        instructions.per_request(large, small)


@pytest.mark.skipif(bool(instructions.missing_tools()),
                    reason="valgrind is not installed (bench/install.sh installs it)")
@pytest.mark.skipif(not (VENV_BIN / "python").exists(),
                    reason="bench/.venv does not exist (bench/install.sh creates it)")
def test_a_tiny_count_on_our_server_reports_the_difference_of_two_batches():
    logged = []
    rows = instructions.measure_server(
        "ours", [BY_NAME["hello-keepalive"], BY_NAME["post-echo-4k"]],
        measure.static_folder(WORK), small=5, large=25, repeats=2, log=logged.append)
    assert [(r["server"], r["workload"]) for r in rows] == [
        ("ours", "hello-keepalive"), ("ours", "post-echo-4k")]
    for row in rows:
        assert "failed" not in row, row
        counted = row["instructions"]
        assert len(counted["pairs"]) == 2
        for pair in counted["pairs"]:
            assert pair["small"]["requests"] == 5 and pair["large"]["requests"] == 25
            assert pair["large"]["instructions"] > pair["small"]["instructions"] > 0
            assert pair["per_request"] == (
                pair["large"]["instructions"] - pair["small"]["instructions"]) / 20
        figures = sorted(p["per_request"] for p in counted["pairs"])
        assert counted["per_request"] == sum(figures) / 2  # the median of two
        assert 0 < counted["min"] == figures[0] <= counted["max"] == figures[1]
    assert len(logged) == 2 and "instructions/request" in logged[0]

    table = [{"run": 1, "server": "ours", "workload": "hello-keepalive", "rps": 1000.0}]
    report.add_instructions(table, rows)
    header, body = report.table_rows(table, runs=1)
    assert body[0][header.index(report.INSTR)] == f"{rows[0]['instructions']['per_request']:,.0f}"\
        " (1.00)"


@pytest.mark.skipif(bool(instructions.missing_tools()),
                    reason="valgrind is not installed (bench/install.sh installs it)")
@pytest.mark.skipif(not (VENV_BIN / "python").exists(),
                    reason="bench/.venv does not exist (bench/install.sh creates it)")
def test_a_workload_counted_only_sends_on_many_connections_in_rounds():
    """``batch50-hello`` (here on 4 connections): a round sends on every connection, then
    reads every answer; a batch of 5 is a round and one more request, and each figure is
    still the difference of two batches."""
    workload = dataclasses.replace(BY_NAME["batch50-hello"], connections=4)
    assert not workload.wrk and workload.instructions
    rows = instructions.measure_server("ours", [workload], measure.static_folder(WORK),
                                       small=5, large=25, repeats=1, log=lambda line: None)
    assert len(rows) == 1 and "failed" not in rows[0], rows
    (pair,) = rows[0]["instructions"]["pairs"]
    assert pair["large"]["instructions"] > pair["small"]["instructions"] > 0
    assert rows[0]["instructions"]["per_request"] == pair["per_request"] > 0


def test_a_workload_sends_its_header_fields_after_host():
    """``browser-hello``: the head a browser sends, each field on its own line, once."""
    import h11
    from workloads import BROWSER_FIELDS

    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = instructions.KeepAlive(listener.getsockname()[1])
        served, _ = listener.accept()
        with served:
            client.send_request(BY_NAME["browser-hello"])
            client.close()
            head = b""
            while chunk := served.recv(65536):
                head += chunk
    server = h11.Connection(h11.SERVER)
    server.receive_data(head)
    request = server.next_event()
    assert isinstance(request, h11.Request) and request.target == b"/"
    sent = [f"{name.decode()}: {value.decode()}" for name, value in request.headers.raw_items()]
    assert sent[0].startswith("Host: 127.0.0.1:")
    assert sent[1:] == list(BROWSER_FIELDS)
    assert isinstance(server.next_event(), h11.EndOfMessage)


def test_a_workload_counted_only_is_never_run_by_wrk():
    from workloads import for_server

    assert "batch50-hello" not in [w.name for w in for_server("ours")]
    assert "hello-keepalive" in [w.name for w in for_server("ours")]


@pytest.mark.parametrize("arguments,why", [
    (["--batches", "5,5"], "--batches '5,5': 0 < SMALL < LARGE"),
    (["--batches", "x"], "--batches 'x': two whole numbers, SMALL,LARGE"),
    (["--workloads", "hello-close"], "--workloads 'hello-close' names 0 of hello-keepalive, "
                                     "batch50-hello, browser-hello, json-router, post-echo-4k, "
                                     "static-1mib"),
])
def test_bad_instruction_options_get_one_clear_line(arguments, why):
    done = subprocess.run([sys.executable, str(BENCH / "run.py"), "--instructions-only",
                           *arguments], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"run.py: error: {why}"


def test_the_instruction_column_is_there_only_when_counted():
    rows = [{"run": 1, "server": "ours", "workload": "hello-keepalive", "rps": 1000.0}]
    header, _ = report.table_rows(rows, runs=1)
    assert report.INSTR not in header
    report.add_instructions(rows, [{"server": "ours", "workload": "hello-keepalive",
                                    "failed": "valgrind: gone"}])
    header, body = report.table_rows(rows, runs=1)
    assert body[0][header.index(report.INSTR)] == "failed"
    assert "instr/req: valgrind: gone" in body[0][-1]

