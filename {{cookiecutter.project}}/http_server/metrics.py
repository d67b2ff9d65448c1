"""Request metrics for Prometheus: ``GET /metrics`` in the text exposition format 0.0.4.

``server.add_metrics()`` turns them on. ``App.handle`` then times and counts
every request with the route that answered it; the scrape renders:

* ``http_requests_total{method, route, status}``, a counter;
* ``http_request_duration_seconds{method, route}``, a histogram of the time the
  app took (middleware, view, error handler: a file or a stream is sent after);
* ``http_requests_in_flight`` (the scrape itself included) and
  ``http_connections_open``, gauges;
* ``process_start_time_seconds``, when the counting began (with workers, in the
  parent, before the fork), which tells a scraper that the counters were reset.

Every label has a bounded set of values, whatever clients send: ``route`` is the
route's name, else its pattern; a static mount's prefix; ``(unmatched)`` when no
route answered (404, 405, an answer from middleware, ``OPTIONS *``);
``(unparsed)`` for a request refused before it could be read (400, 413, 431...);
``(refused)`` for one a header check refused. ``method`` is one of ``METHODS``,
else ``OTHER``. The metrics path itself is not counted.

Counting takes no lock: each thread counts in its own ``Shard``, and a scrape
adds the shards up.

With ``workers`` > 1 a scrape lands on one worker, which answers for all:
before forking, the parent makes a private folder (``SharedSnapshots``); each
worker claims a slot in it (a file lock held for its life) and writes its totals
there every ``SNAPSHOT_INTERVAL``, and at once when it is scraped; a scrape sums
every slot's latest totals, so the other workers' counts may be up to a second
old, and no counter goes down from one scrape to the next, whichever worker
answers. A worker that replaces a dead one takes its free slot and counts on top
of its last snapshot (what the dead one counted after that is lost, but no
scrape had shown it). The parent removes the folder when it stops.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable

__all__ = ["CONTENT_TYPE", "DEFAULT_BUCKETS", "METHODS", "Metrics", "SharedSnapshots",
           "exposition", "merge", "route_label"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: from a fast in-memory answer (1 ms) to a view that waits on a slow peer (10 s).
DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT",
                     "TRACE"})
SNAPSHOT_INTERVAL = 1.0  # seconds between a worker's snapshots (with workers > 1)


class Unrouted:
    """The route of a request that reached none; its ``name`` is the label that says why."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Unrouted({self.name!r})"


UNMATCHED = Unrouted("(unmatched)")
UNPARSED = Unrouted("(unparsed)")
REFUSED = Unrouted("(refused)")


def route_label(route) -> str:
    """The ``route`` label: a ``Path``'s name or pattern, a mount's prefix, or why none."""
    if route is None:
        return UNMATCHED.name
    label = (getattr(route, "name", None) or getattr(route, "pattern", None)
             or getattr(route, "prefix", None))
    return label if isinstance(label, str) else repr(route)


class Shard:
    """The counts of one thread: only that thread writes them, so counting takes no lock.

    ``started`` counts the requests it began; the ones it finished are the sum
    of its series' counts, so the in-flight gauge costs one increment.
    """

    __slots__ = ("series", "started")

    def __init__(self) -> None:
        # (method, route object, status) -> [count per bucket..., count over the last, sum]
        self.series: dict[tuple, list] = {}
        self.started = 0


class Metrics:
    """The counts of one process, updated from every worker thread.

    Each thread counts in its own ``Shard``, so a request takes no lock and a
    few dict and list operations; a scrape adds the shards up (a shard is
    never dropped: a thread that ends keeps its counts in the total).
    ``connections`` is called at scrape time for the number of open connections.
    """

    def __init__(self, buckets: Iterable[float] = DEFAULT_BUCKETS,
                 connections: Callable[[], int] = lambda: 0) -> None:
        bounds = tuple(float(bound) for bound in buckets)
        if not bounds or list(bounds) != sorted(set(bounds)) or not (
                0 < bounds[0] and bounds[-1] < float("inf")):
            raise ValueError(f"buckets must be increasing positive numbers, got {buckets!r}")
        self.bounds = bounds
        self.connections = connections
        self.start_time = time.time()
        self.unobserved: set = set()  # routes left out of the scrape: the metrics path itself
        self.shared: SharedSnapshots | None = None
        self.base: dict = empty_snapshot()  # what earlier holders of this worker's slot counted
        self._next_snapshot = 0.0
        self._local = threading.local()
        self._shards: list[Shard] = []
        self._shards_lock = threading.Lock()  # taken once per thread, for its first request
        self._publish_lock = threading.Lock()

    # -- the hot path: every request ----------------------------------------

    def begin(self) -> tuple[Shard, float]:
        """A request starts on this thread; hand what this returns to ``end``."""
        try:
            shard = self._local.shard
        except AttributeError:
            shard = self._local.shard = Shard()
            with self._shards_lock:
                self._shards.append(shard)
        shard.started += 1
        return shard, time.perf_counter()

    def end(self, begun: tuple[Shard, float], method: str, route, status: int) -> None:
        """The request that ``begin`` returned ``begun`` for is answered."""
        shard, started = begun
        self.observe(shard, method, route, status, time.perf_counter() - started)

    def add(self, method: str, route, status: int, seconds: float) -> None:
        """Count an answer given outside ``begin`` and ``end`` (a request refused before
        it was read), which took ``seconds``."""
        shard, _ = self.begin()
        self.observe(shard, method, route, status, seconds)

    def observe(self, shard: Shard, method: str, route, status: int, seconds: float) -> None:
        if method not in METHODS:
            method = "OTHER"
        key = (method, route, status)
        series = shard.series.get(key)
        if series is None:
            series = shard.series[key] = [0] * (len(self.bounds) + 1) + [0.0]
        series[bisect_left(self.bounds, seconds)] += 1  # le is inclusive: 0.001 s in 0.001
        series[-1] += seconds

    # -- scrapes ---------------------------------------------------------------

    def snapshot(self) -> dict:
        """This process's totals, labelled, as JSON-ready data (``merge`` adds them up)."""
        finished = started = 0
        items = []
        for shard in list(self._shards):
            # The owner thread may add a key meanwhile: copy() is atomic, iterating is
            # not. The series first: a request is counted as started before it is
            # counted as finished, so the difference is never negative.
            series = [(key, list(values)) for key, values in shard.series.copy().items()]
            started += shard.started
            finished += sum(sum(values[:-1]) for _, values in series)
            items += [item for item in series if item[0][1] not in self.unobserved]
        in_flight = started - finished
        live = {
            "series": [[method, route_label(route), str(status), values]
                       for (method, route, status), values in items],
            "in_flight": in_flight,
            "connections": self.connections(),
        }
        return merge([self.base, live])

    def render(self) -> str:
        """The text a scrape gets: this process's totals, plus the other workers' (if any)."""
        if self.shared is None:
            return exposition(self.snapshot(), self.bounds, self.start_time)
        # Published first: a later scrape that another worker answers then sees at least
        # these counts, so no counter ever goes down from one scrape to the next.
        snapshots = [self.publish(), *self.shared.read_others()]
        return exposition(merge(snapshots), self.bounds, self.start_time)

    def view(self, request, response) -> None:
        """The view behind the metrics path."""
        response.send(self.render(), 200, CONTENT_TYPE)

    # -- several worker processes --------------------------------------------

    def share(self) -> SharedSnapshots:
        """In the parent, before the fork: the folder where the workers will meet."""
        self.shared = SharedSnapshots.create()
        return self.shared

    def join_workers(self) -> None:
        """In a worker: claim a slot, count on from what it holds, publish at once."""
        if self.shared is None:
            return
        base = self.shared.claim()
        base["in_flight"] = base["connections"] = 0  # gauges of a dead process: gone
        self.base = base
        self.publish()

    def publish(self) -> dict:
        """Write this worker's totals for the others' scrapes; returns them."""
        # One at a time: a snapshot taken earlier must never overwrite a later one.
        with self._publish_lock:
            snapshot = self.snapshot()
            self.shared.write(snapshot)
            self._next_snapshot = time.monotonic() + SNAPSHOT_INTERVAL
        return snapshot

    def publish_if_due(self, now: float) -> None:
        """From the housekeeping loop (``now``: ``time.monotonic()``)."""
        if self.shared is not None and now >= self._next_snapshot:
            self.publish()


def empty_snapshot() -> dict:
    return {"series": [], "in_flight": 0, "connections": 0}


def merge(snapshots: Iterable[dict]) -> dict:
    """Add snapshots up: series with the same labels are summed, gauges too."""
    series: dict[tuple, list] = {}
    in_flight = connections = 0
    for snapshot in snapshots:
        for method, route, status, values in snapshot["series"]:
            _add_values(series, (method, route, status), values)
        in_flight += snapshot["in_flight"]
        connections += snapshot["connections"]
    return {"series": [[*key, values] for key, values in series.items()],
            "in_flight": in_flight, "connections": connections}


def _add_values(table: dict[tuple, list], key: tuple, values: list) -> None:
    total = table.get(key)
    if total is None:
        table[key] = list(values)
    else:
        for i, value in enumerate(values):
            total[i] += value


def exposition(snapshot: dict, bounds: tuple[float, ...], start_time: float) -> str:
    """A snapshot in the text exposition format 0.0.4."""
    requests = sorted((tuple(key), values) for *key, values in snapshot["series"])
    lines = [
        "# HELP http_requests_total Requests answered, by method, route and status.",
        "# TYPE http_requests_total counter",
    ]
    durations: dict[tuple[str, str], list] = {}
    for (method, route, status), values in requests:
        labels = f'method="{method}",route="{escape(route)}"'
        lines.append(f'http_requests_total{{{labels},status="{status}"}} '
                     f"{sum(values[:-1])}")
        _add_values(durations, (method, route), values)
    lines += [
        "# HELP http_request_duration_seconds Time the app took to answer, by method and "
        "route.",
        "# TYPE http_request_duration_seconds histogram",
    ]
    edges = [repr(bound) for bound in bounds] + ["+Inf"]
    for (method, route), values in durations.items():
        labels = f'method="{method}",route="{escape(route)}"'
        cumulative = 0
        for edge, count in zip(edges, values[:-1], strict=True):
            cumulative += count
            lines.append(f'http_request_duration_seconds_bucket{{{labels},le="{edge}"}} '
                         f"{cumulative}")
        lines.append(f"http_request_duration_seconds_sum{{{labels}}} {values[-1]!r}")
        lines.append(f"http_request_duration_seconds_count{{{labels}}} {cumulative}")
    lines += [
        "# HELP http_requests_in_flight Requests being answered.",
        "# TYPE http_requests_in_flight gauge",
        f"http_requests_in_flight {snapshot['in_flight']}",
        "# HELP http_connections_open Client connections open.",
        "# TYPE http_connections_open gauge",
        f"http_connections_open {snapshot['connections']}",
        "# HELP process_start_time_seconds When the counting began, in seconds since the "
        "epoch.",
        "# TYPE process_start_time_seconds gauge",
        f"process_start_time_seconds {start_time!r}",
    ]
    return "\n".join(lines) + "\n"


def escape(value: str) -> str:
    """A label value as the format writes it: backslash, double quote and newline escaped."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


class SharedSnapshots:
    """The folder where a server's worker processes leave their totals, one file per slot.

    A slot is a number; the worker holding it keeps ``slot-N.lock`` locked
    (``flock``) for its whole life, so the kernel frees the slot when the
    process dies, however it dies. Files are replaced whole (``os.replace``):
    a reader never sees half of one.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.slot: int | None = None
        self._lock_fd: int | None = None

    @classmethod
    def create(cls) -> SharedSnapshots:
        # mkdtemp: a fresh folder only this user can read or write into.
        return cls(tempfile.mkdtemp(prefix=f"http_server-metrics-{os.getpid()}-"))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def claim(self) -> dict:
        """Take the lowest free slot; the snapshot its last holder left (or an empty one)."""
        import fcntl  # Unix only, as fork is

        slot = 0
        while True:
            fd = os.open(self._path(slot, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:  # a live worker holds it
                os.close(fd)
                slot += 1
        self.slot, self._lock_fd = slot, fd
        return _read(self._path(slot, "json")) or empty_snapshot()

    def write(self, snapshot: dict) -> None:
        path = self._path(self.slot, "json")
        temporary = f"{path}.{os.getpid()}.tmp"
        try:
            with open(temporary, "w", encoding="utf-8") as file:
                json.dump(snapshot, file, separators=(",", ":"))
            os.replace(temporary, path)
        except OSError:
            pass  # the folder went away: the server is stopping

    def read_others(self) -> list[dict]:
        """The latest snapshot of every other slot, live or not."""
        own = f"slot-{self.slot}.json"
        try:
            names = os.listdir(self.folder)
        except OSError:
            return []
        snapshots = []
        for name in names:
            if name.startswith("slot-") and name.endswith(".json") and name != own:
                snapshot = _read(os.path.join(self.folder, name))
                if snapshot is not None:
                    snapshots.append(snapshot)
        return snapshots

    def _path(self, slot: int, extension: str) -> str:
        return os.path.join(self.folder, f"slot-{slot}.{extension}")


def _read(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError):
        return None
