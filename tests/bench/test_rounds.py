"""bench/measure.py's rounds: the servers of a run driven in turns, each workload's rounds
merged into one row.

The merged figures are checked against what they are made of (the rounds' own counts, the
samples behind a histogram, wrk's own percentiles), never for a value of their own.
"""

import shutil
from argparse import Namespace
from collections import Counter

import measure
import pytest
from servers import Server
from workloads import BY_NAME, VENV_BIN, WORK, for_server

HAS_WRK = shutil.which("wrk") is not None
HAS_VENV = (VENV_BIN / "python").exists()


def test_each_server_takes_each_place_in_the_order_as_often_as_the_others():
    names = ["ours", "waitress", "nginx"]
    orders = measure.round_orders(names, 6)
    assert all(sorted(order) == sorted(names) for order in orders)
    for place in range(3):
        assert Counter(order[place] for order in orders) == {name: 2 for name in names}
    assert measure.round_orders(["a", "b"], 3) == [["a", "b"], ["b", "a"], ["a", "b"]]


def nearest_rank(samples: list[int], p: float) -> int:
    """The percentile of a list of samples, as wrk counts it: sorted, the first that more
    than ``p`` percent of them do not exceed (the last for 100)."""
    ordered = sorted(samples)
    below = [value for value in ordered
             if sum(v <= value for v in ordered) > p / 100 * len(ordered)]
    return below[0] if below else ordered[-1]


def histogram(samples: list[int]) -> dict[int, int]:
    return dict(Counter(samples))


def a_round(samples, requests, cpu, errors=None):
    return {"latency": histogram(samples), "requests": requests, "duration_us": 1_000_000,
            "cpu": cpu, "wall": 1.01, "switches": 7,
            "errors": errors or {"connect": 0, "read": 0, "write": 0, "status": 0,
                                 "timeout": 0}}


def test_rounds_merge_into_the_figures_of_all_their_samples():
    fast = [100 + i % 50 for i in range(990)] + [5000] * 10
    slow = [300 + i % 70 for i in range(900)] + [9000] * 100
    merged = measure.merge_rounds([
        a_round(fast, 1000, 0.5),
        a_round(slow, 1000, 0.75, {"connect": 0, "read": 2, "write": 0, "status": 1,
                                   "timeout": 0}),
    ])
    assert merged["requests"] == 2000
    assert merged["rps"] == 1000.0  # 2,000 requests in 2 s of wrk
    assert merged["cpu"] == 1.25 and merged["switches"] == 14 and merged["rounds"] == 2
    assert merged["errors"]["read"] == 2 and merged["error_count"] == 3
    everything = fast + slow
    assert merged["p99_ms"] == nearest_rank(everything, 99) / 1000
    assert merged["p50_ms"] == nearest_rank(everything, 50) / 1000
    # Not the mean of the rounds' p99s, nor their larger one: the whole distribution's.
    assert merged["p99_ms"] != (nearest_rank(fast, 99) + nearest_rank(slow, 99)) / 2000
    assert merged["p99_ms"] == 9.0


@pytest.mark.parametrize("samples", [[7], [1, 2, 3, 4], list(range(1, 1001)), [5] * 99 + [80]])
def test_percentile_of_a_histogram_is_that_of_its_samples(samples):
    for p in (1, 50, 90, 99, 99.9, 100):
        assert measure.percentile(histogram(samples), p) == nearest_rank(samples, p)


@pytest.mark.skipif(not HAS_WRK, reason="wrk is not installed (make bench does)")
@pytest.mark.skipif(not HAS_VENV, reason="bench/.venv does not exist (bench/install.sh creates it)")
def test_one_round_holds_wrks_histogram_whose_percentiles_are_wrks_own():
    server = Server("ours", measure.static_folder(WORK), pin=False, tag="rounds")
    try:
        server.start("/")
        result = measure.measure_round(server, BY_NAME["hello-keepalive"])
    finally:
        server.stop()
    assert result["requests"] > 0 and result["cpu"] > 0 and result["switches"] > 0
    assert sum(result["latency"].values()) >= result["requests"]
    assert measure.percentile(result["latency"], 99) == result["p99_us"]
    assert measure.percentile(result["latency"], 50) == result["p50_us"]


@pytest.mark.skipif(not HAS_WRK, reason="wrk is not installed (make bench does)")
@pytest.mark.skipif(not HAS_VENV, reason="bench/.venv does not exist (bench/install.sh creates it)")
def test_the_servers_of_a_run_are_alive_at_once_and_take_turns(monkeypatch):
    turns = []
    measure_round = measure.measure_round

    def noted(server, workload, seconds=measure.ROUND_SECONDS):
        turns.append((workload.name, server.name, server.proc.poll()))
        return measure_round(server, workload, seconds)

    monkeypatch.setattr(measure, "measure_round", noted)
    opts = Namespace(duration=2, warmup=1, idle_connections=0)
    lines = []
    rows = measure.measure_servers(["ours", "ours+log"], measure.static_folder(WORK), opts, 1,
                                   {}, measure.expected_bodies(WORK / "static" / "1mib.bin"),
                                   lines.append)
    workloads = [w.name for w in for_server("ours")]
    assert [(r["workload"], r["server"]) for r in rows] == [
        (w, s) for w in workloads for s in ("ours", "ours+log")]
    for row in rows:
        assert "failed" not in row, row
        assert row["rounds"] == 2 * BY_NAME[row["workload"]].rounds_scale  # the file: 6
        assert row["requests"] > 0 and row["mismatch"] == []
        assert row["p99_ms"] >= row["p50_ms"] > 0 and row["req_per_cpu_s"] > 0
    # Both alive at every turn (poll() is None), and the order rotated: each workload's
    # four turns go ours, ours+log, ours+log, ours.
    assert all(alive is None for _, _, alive in turns)
    assert [name for w, name, _ in turns if w == "hello-keepalive"] == [
        "ours", "ours+log", "ours+log", "ours"]
    assert len(turns) == sum(2 * 2 * BY_NAME[w].rounds_scale for w in workloads)


def test_the_answering_processes_are_summed_over_the_rounds():
    first = {**a_round([100], 3, 0.1), "pids": {"11": 2, "12": 1}}
    second = {**a_round([200], 4, 0.1), "pids": {"12": 4}}
    merged = measure.merge_rounds([first, second])
    assert merged["pids"] == {"11": 2, "12": 5}
    assert "pids" not in measure.merge_rounds([a_round([100], 3, 0.1)])


@pytest.mark.skipif(not HAS_WRK, reason="wrk is not installed (make bench does)")
@pytest.mark.skipif(not HAS_VENV, reason="bench/.venv does not exist (bench/install.sh creates it)")
def test_workers_1_and_2_take_turns_and_every_answer_names_its_process():
    lines = []
    rows = measure.measure_workers(measure.static_folder(WORK), Namespace(duration=1),
                                   lines.append)
    assert [(r["server"], r["workload"]) for r in rows] == [
        ("ours workers=1", "workers"), ("ours workers=2", "workers"),
        ("ours workers=1", "workers-close"), ("ours workers=2", "workers-close")]
    for row in rows:
        assert "failed" not in row, row
        assert row["rounds"] == 1 and row["requests"] > 0
        assert sum(row["pids"].values()) == row["requests"]
    assert all(len(r["pids"]) == 1 for r in rows if r["server"] == "ours workers=1")
