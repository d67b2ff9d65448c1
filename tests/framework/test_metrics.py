"""GET /metrics: the counts (http_server/metrics.py), their text, and a real server's, one
worker or two, read back with the official Prometheus parser (prometheus_client)."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from http_server import HTTPError, WebServer
from http_server import Path as Route
from http_server.metrics import (
    CONTENT_TYPE,
    DEFAULT_BUCKETS,
    REFUSED,
    UNPARSED,
    Metrics,
    SharedSnapshots,
    exposition,
    merge,
    route_label,
)
from http_server.static import StaticFiles
from http_server.testing import LiveServer
from livehttp import build_server
from prometheus_client.parser import text_string_to_metric_families
from support.paths import TEMPLATE_DIR
from support.ports import free_port
from support.rawhttp import raw_request

HELLO = Route(r"^/hello$", lambda request, response: response.send("hi"), name="hello")
UNNAMED = Route(r'^/odd/"quoted"\\path$', lambda request, response: response.send("odd"))


def families(text: str) -> dict:
    """The text parsed by prometheus_client: family name -> family."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def request_counts(parsed: dict) -> dict[tuple[str, str, str], float]:
    return {(s.labels["method"], s.labels["route"], s.labels["status"]): s.value
            for s in parsed["http_requests"].samples}


def gauge(parsed: dict, name: str) -> float:
    (sample,) = parsed[name].samples
    return sample.value


def check_histograms(parsed: dict) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Assert every histogram series is consistent with itself and with the counter; return
    each series' buckets as (upper bound, cumulative count)."""
    counted: dict[tuple[str, str], float] = {}
    for (method, route, _status), value in request_counts(parsed).items():
        counted[(method, route)] = counted.get((method, route), 0) + value
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    sums, counts = {}, {}
    for sample in parsed["http_request_duration_seconds"].samples:
        key = (sample.labels["method"], sample.labels["route"])
        if sample.name.endswith("_bucket"):
            buckets.setdefault(key, []).append((float(sample.labels["le"]), sample.value))
        elif sample.name.endswith("_sum"):
            sums[key] = sample.value
        else:
            counts[key] = sample.value
    assert set(buckets) == set(sums) == set(counts) == set(counted)
    for key, series in buckets.items():
        bounds = [bound for bound, _ in series]
        assert bounds == [*DEFAULT_BUCKETS, math.inf]
        values = [value for _, value in series]
        assert values == sorted(values), f"{key}: buckets are not cumulative"
        assert values[-1] == counts[key] == counted[key]
        assert sums[key] >= 0
    return buckets


# ------------------------------------------------------------------ the counts, in-process


def test_an_empty_registry_renders_every_family_and_the_parser_reads_it():
    metrics = Metrics(connections=lambda: 3)
    parsed = families(metrics.render())
    assert {name: family.type for name, family in parsed.items()} == {
        "http_requests": "counter",
        "http_request_duration_seconds": "histogram",
        "http_requests_in_flight": "gauge",
        "http_connections_open": "gauge",
        "process_start_time_seconds": "gauge",
    }
    assert gauge(parsed, "http_connections_open") == 3
    assert gauge(parsed, "http_requests_in_flight") == 0
    assert gauge(parsed, "process_start_time_seconds") == metrics.start_time


def test_a_duration_lands_in_the_first_bucket_at_or_above_it():
    metrics = Metrics(buckets=(0.001, 0.01))
    for seconds in (0.001, 0.0011, 0.01, 20.0):
        metrics.add("GET", HELLO, 200, seconds)
    text = exposition(metrics.snapshot(), metrics.bounds, 0.0)
    assert 'http_request_duration_seconds_bucket{method="GET",route="hello",le="0.001"} 1' in text
    assert 'http_request_duration_seconds_bucket{method="GET",route="hello",le="0.01"} 3' in text
    assert 'http_request_duration_seconds_bucket{method="GET",route="hello",le="+Inf"} 4' in text
    (total,) = [s for s in families(text)["http_request_duration_seconds"].samples
                if s.name.endswith("_sum")]
    assert total.value == pytest.approx(20.0121)


def test_routes_are_labelled_by_name_then_pattern_then_mount_prefix():
    assert route_label(HELLO) == "hello"
    assert route_label(UNNAMED) == UNNAMED.pattern
    assert route_label(StaticFiles("/media", ".")) == "/media/"
    assert route_label(None) == "(unmatched)"
    assert route_label(UNPARSED) == "(unparsed)" and route_label(REFUSED) == "(refused)"


def test_label_values_with_quotes_backslashes_and_newlines_survive_the_round_trip():
    metrics = Metrics()
    odd_name = Route(r"^/x$", HELLO.view, name='a "b" \\ c\nd')
    metrics.add("GET", UNNAMED, 200, 0.0)
    metrics.add("GET", odd_name, 200, 0.0)
    parsed = families(metrics.render())
    assert set(request_counts(parsed)) == {("GET", UNNAMED.pattern, "200"),
                                           ("GET", 'a "b" \\ c\nd', "200")}
    check_histograms(parsed)


def test_a_method_outside_the_standard_set_is_counted_as_other():
    metrics = Metrics()
    for method in ("BREW", "PROPFIND", "X" * 200, "get"):
        metrics.add(method, HELLO, 200, 0.0)
    metrics.add("DELETE", HELLO, 200, 0.0)
    assert request_counts(families(metrics.render())) == {
        ("OTHER", "hello", "200"): 4, ("DELETE", "hello", "200"): 1}


def test_two_routes_with_the_same_label_make_one_series():
    metrics = Metrics()
    twin = Route(HELLO.pattern, HELLO.view, name="hello")
    metrics.add("GET", HELLO, 200, 0.0)
    metrics.add("GET", twin, 200, 0.0)
    assert request_counts(families(metrics.render())) == {("GET", "hello", "200"): 2}


def test_in_flight_counts_the_requests_begun_and_not_yet_ended():
    metrics = Metrics()
    first, second = metrics.begin(), metrics.begin()
    assert gauge(families(metrics.render()), "http_requests_in_flight") == 2
    metrics.end(first, "GET", HELLO, 200)
    metrics.end(second, "GET", HELLO, 404)
    parsed = families(metrics.render())
    assert gauge(parsed, "http_requests_in_flight") == 0
    assert request_counts(parsed) == {("GET", "hello", "200"): 1, ("GET", "hello", "404"): 1}


def test_unobserved_routes_are_left_out_but_still_leave_the_in_flight_gauge():
    metrics = Metrics()
    metrics.unobserved.add(HELLO)
    metrics.end(metrics.begin(), "GET", HELLO, 200)
    parsed = families(metrics.render())
    assert request_counts(parsed) == {}
    assert gauge(parsed, "http_requests_in_flight") == 0


def test_counts_from_many_threads_add_up_while_scrapes_read_them():
    metrics = Metrics()
    others = [Route(rf"^/n{i}$", HELLO.view) for i in range(50)]
    stop = threading.Event()
    counted = [0] * 6

    def count(number: int) -> None:
        while not stop.is_set():
            route = others[counted[number] % 50] if counted[number] % 2 else HELLO
            metrics.end(metrics.begin(), "GET", route, 200)
            counted[number] += 1

    workers = [threading.Thread(target=count, args=(number,)) for number in range(6)]
    for worker in workers:
        worker.start()
    totals = []
    try:
        for _ in range(30):  # while the threads count, and add new series
            totals.append(sum(request_counts(families(metrics.render())).values()))
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert totals == sorted(totals)
    parsed = families(metrics.render())
    assert sum(request_counts(parsed).values()) == sum(counted)
    assert gauge(parsed, "http_requests_in_flight") == 0
    check_histograms(parsed)


def test_merge_adds_up_counters_histograms_and_gauges():
    one, two = Metrics(connections=lambda: 2), Metrics(connections=lambda: 5)
    for metrics, status in ((one, 200), (two, 200), (two, 500)):
        metrics.add("GET", HELLO, status, 0.002)
    two.begin()
    merged = merge([one.snapshot(), two.snapshot()])
    parsed = families(exposition(merged, one.bounds, 0.0))
    assert request_counts(parsed) == {("GET", "hello", "200"): 2, ("GET", "hello", "500"): 1}
    assert gauge(parsed, "http_connections_open") == 7
    assert gauge(parsed, "http_requests_in_flight") == 1
    assert check_histograms(parsed)[("GET", "hello")][:2] == [(0.001, 0), (0.0025, 3)]


@pytest.mark.parametrize("buckets", [(), (0.5, 0.1), (0.1, 0.1), (0, 1), (1, math.inf)])
def test_buckets_must_be_increasing_positive_numbers(buckets):
    with pytest.raises(ValueError, match="buckets must be increasing positive numbers"):
        Metrics(buckets=buckets)


def test_add_metrics_twice_is_refused():
    server = WebServer(route=[HELLO])
    server.add_metrics()
    with pytest.raises(RuntimeError, match="already called"):
        server.add_metrics()


def test_add_metrics_once_the_server_serves_is_refused():
    """Connections are handed the app's entry point when the server starts: metrics
    added later would count nothing, so they are refused."""
    server = WebServer(route=[HELLO], port=free_port())
    with LiveServer(server) as live:
        requests.get(live.url + "/hello", timeout=10)  # answered: the server serves
        with pytest.raises(RuntimeError, match="before the server starts"):
            server.add_metrics()
    assert server.metrics is None


# ------------------------------------------------------------ slots shared by workers

CLAIM = """\
import json, sys
sys.path.insert(0, {template!r})
from http_server.metrics import Metrics, SharedSnapshots
from http_server import Path
metrics = Metrics()
metrics.shared = SharedSnapshots({folder!r})
metrics.join_workers()
for _ in range({count}):
    metrics.add("GET", Path("^/$", print, name="index"), 200, 0.001)
metrics.publish()
print(metrics.shared.slot, flush=True)
"""


def claim_in_a_process(folder: str, count: int) -> int:
    """A process claims a slot, counts ``count`` requests, publishes, exits; its slot."""
    script = CLAIM.format(template=str(TEMPLATE_DIR), folder=folder, count=count)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=30, check=True)
    return int(done.stdout)


def test_a_slot_freed_by_a_dead_process_is_taken_again_and_counted_on_from():
    shared = SharedSnapshots.create()
    try:
        assert claim_in_a_process(shared.folder, 3) == 0
        assert claim_in_a_process(shared.folder, 4) == 0  # the first one's slot, and counts
        metrics = Metrics()
        metrics.shared = SharedSnapshots(shared.folder)
        metrics.join_workers()  # this process holds slot 0 now
        assert metrics.shared.slot == 0
        assert claim_in_a_process(shared.folder, 5) == 1  # slot 0 is held: the next one
        metrics.add("GET", HELLO, 200, 0.0)
        assert request_counts(families(metrics.render())) == {
            ("GET", "index", "200"): 3 + 4 + 5, ("GET", "hello", "200"): 1}
    finally:
        shared.remove()
    assert not os.path.exists(shared.folder)


# ------------------------------------------------------------------- a live server


@pytest.fixture
def metered(tmp_path):
    """A live server with metrics on, a static mount, a header check refusing /private
    with 401, and /wait, a view that waits for ``release``, to be caught in flight."""
    (tmp_path / "a.txt").write_text("static")
    entered, release = threading.Event(), threading.Event()

    def wait(request, response):
        entered.set()
        release.wait(10)
        response.send("waited")

    server = build_server(threads=4)
    server.router.add(Route(r"^/wait$", wait, name="wait"))
    server.fileServer("/static/", str(tmp_path))

    @server.on_headers
    def private(request):
        if request.path == "/private":
            raise HTTPError(401)

    server.add_metrics()
    live = LiveServer(server)
    live.entered, live.release = entered, release
    with live:
        yield live
    release.set()


def scrape(url: str) -> dict:
    response = requests.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE
    return families(response.text)


def test_real_requests_are_counted_by_method_route_and_status(metered):
    url = metered.url
    for _ in range(3):
        assert requests.get(f"{url}/hello", timeout=5).status_code == 200
    assert requests.get(f"{url}/no/such/page", timeout=5).status_code == 404
    assert requests.post(f"{url}/get-only", timeout=5).status_code == 405
    assert requests.get(f"{url}/boom", timeout=5).status_code == 500
    assert requests.get(f"{url}/static/a.txt", timeout=5).text == "static"
    assert requests.request("BREW", f"{url}/hello", timeout=5).status_code == 200
    assert requests.get(f"{url}/private", timeout=5).status_code == 401
    answer = raw_request(metered.port, b"GET /hello HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    scrape(url)  # not counted: neither this one nor the next
    parsed = scrape(url)
    assert request_counts(parsed) == {
        ("GET", "hello", "200"): 3,
        ("GET", "(unmatched)", "404"): 1,
        ("POST", "(unmatched)", "405"): 1,
        ("GET", "boom", "500"): 1,
        ("GET", "/static/", "200"): 1,
        ("OTHER", "hello", "200"): 1,
        ("GET", "(refused)", "401"): 1,
        ("GET", "(unparsed)", "400"): 1,
    }
    check_histograms(parsed)


def test_the_histogram_holds_each_duration_at_or_above_its_bucket(metered):
    requests.get(f"{metered.url}/slow?s=0.05", timeout=5)
    buckets = check_histograms(scrape(metered.url))[("GET", "slow")]
    # The view slept 0.05 s: the buckets up to 0.025 s cannot hold it, +Inf does.
    assert dict(buckets)[0.025] == 0 and dict(buckets)[math.inf] == 1


def test_the_gauges_show_a_request_in_flight_and_the_open_connections(metered):
    waiting = threading.Thread(target=requests.get, args=(f"{metered.url}/wait",),
                               kwargs={"timeout": 15})
    waiting.start()
    try:
        assert metered.entered.wait(10)
        parsed = scrape(metered.url)
        assert gauge(parsed, "http_requests_in_flight") == 2  # /wait and this scrape
        assert gauge(parsed, "http_connections_open") >= 2
    finally:
        metered.release.set()
        waiting.join(15)
    parsed = scrape(metered.url)
    assert gauge(parsed, "http_requests_in_flight") == 1
    assert request_counts(parsed) == {("GET", "wait", "200"): 1}


def test_the_metrics_path_stays_out_of_the_access_log(tmp_path, capfd):
    server = build_server(access_log=True)
    server.add_metrics()
    with LiveServer(server) as live, requests.Session() as session:
        assert session.get(f"{live.url}/metrics", timeout=5).status_code == 200
        assert session.get(f"{live.url}/hello", timeout=5).status_code == 200
        # One connection, answered in order: /metrics was logged (or not) before /hello.
        logged = ""
        deadline = time.monotonic() + 10
        while "/hello" not in logged and time.monotonic() < deadline:
            logged += capfd.readouterr().out
            time.sleep(0.01)
    assert '"GET /hello HTTP/1.1" 200' in logged
    assert "/metrics" not in logged


# ------------------------------------------------------------------ two worker processes

TWO_WORKERS = """\
import os, sys
sys.path.insert(0, {template!r})
from http_server import Path, WebServer

def pid(request, response):
    response.send(str(os.getpid()))

server = WebServer(host="127.0.0.1", port={port}, route=[Path(r"^/pid$", pid, name="pid")],
                   workers=2, threads=2, access_log=False, graceful_timeout=1.0)
server.add_metrics()
server.run()
"""


@pytest.fixture
def two_workers(tmp_path):
    """A server with workers=2 in its own process group; TMPDIR is tmp_path, so the
    folder the workers share their counts in can be seen."""
    port = free_port()
    script = TWO_WORKERS.format(template=str(TEMPLATE_DIR), port=port)
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                               env={**os.environ, "TMPDIR": str(tmp_path)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
    process.url = f"http://127.0.0.1:{port}"
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


class Scrapes:
    """Scrapes of one server: every total seen, in order, to show none ever went down."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.totals: list[float] = []

    def total(self) -> float:
        total = sum(request_counts(scrape(self.url)).values())
        self.totals.append(total)
        return total

    def wait_for(self, expected: int) -> None:
        """Scrape until the total is ``expected`` (the other worker's counts reach the
        scrape within a second), then a few more times: it must stay there."""
        deadline = time.monotonic() + 15
        while self.total() != expected:
            assert self.totals[-1] < expected, self.totals
            assert time.monotonic() < deadline, f"stuck at {self.totals[-1]} of {expected}"
            time.sleep(0.05)
        for _ in range(6):
            assert self.total() == expected


def get_pids(url: str, pids: dict[str, int], done) -> int:
    """GET /pid on fresh connections (each lands on either worker), counting the answers
    of each process in ``pids``, until ``done(pids)``; how many were sent."""
    sent = 0
    deadline = time.monotonic() + 20
    while not done(pids):
        assert time.monotonic() < deadline, f"only {pids} answered"
        pid = requests.get(f"{url}/pid", headers={"Connection": "close"}, timeout=5).text
        pids[pid] = pids.get(pid, 0) + 1
        sent += 1
    return sent


def wait_until_dead(pid: int) -> None:
    """Until the process is gone or a zombie: it can accept no connection any more."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except FileNotFoundError:
            return
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.01)


def test_with_two_workers_every_scrape_counts_both_and_a_dead_ones_counts_stay(two_workers,
                                                                             tmp_path):
    url = two_workers.url
    (folder,) = [path for path in Path(tmp_path).iterdir()
                 if path.name.startswith(f"http_server-metrics-{two_workers.pid}-")]
    pids: dict[str, int] = {}
    sent = get_pids(url, pids, lambda pids: len(pids) == 2 and sum(pids.values()) >= 20)
    scrapes = Scrapes(url)
    scrapes.wait_for(sent)  # scrapes are not counted

    first_two = set(pids)
    victim = min(first_two)
    os.kill(int(victim), signal.SIGKILL)
    wait_until_dead(int(victim))
    # The survivor answers until the supervisor's new worker does too.
    sent += get_pids(url, pids, lambda pids: set(pids) - first_two)
    scrapes.wait_for(sent)  # the dead worker's counts are still in
    assert scrapes.totals == sorted(scrapes.totals)  # never down, whichever worker answered
    parsed = scrape(url)
    assert request_counts(parsed) == {("GET", "pid", "200"): sent}
    check_histograms(parsed)

    two_workers.send_signal(signal.SIGTERM)
    assert two_workers.wait(15) == 0
    assert not folder.exists()  # the parent removed it


def test_the_shared_folder_is_private_and_holds_one_json_file_per_worker(two_workers,
                                                                         tmp_path):
    get_pids(two_workers.url, {}, lambda pids: len(pids) == 2)
    (folder,) = [path for path in Path(tmp_path).iterdir()
                 if path.name.startswith("http_server-metrics-")]
    assert folder.stat().st_mode & 0o777 == 0o700  # mkdtemp: no other user can plant a file
    assert sorted(path.name for path in folder.glob("slot-*.json")) == [
        "slot-0.json", "slot-1.json"]  # each worker published when it started
    for path in folder.glob("slot-*.json"):
        assert set(json.loads(path.read_text())) == {"series", "in_flight", "connections"}
