"""The worker pool's places for blocked threads, and how often housekeeping looks for them.

These drive a real WorkerPool (on a real listening socket, its threads not started)
through the calls the main thread makes, with the table of serving threads filled in
by hand: the rule is arithmetic on that table, and a live server could only show it
through timing.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import deque

import pytest
import requests
from http_server import Path, WebServer
from http_server import pool as pool_module
from http_server.connection import Connection
from http_server.pool import WorkerPool
from http_server.testing import LiveServer


class Clock:
    """The pool's clock, moved by the test alone: no pause between two lines can flip a rule."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_pool():
    made = []

    def make(threads: int, blocked_after: float = pool_module.BLOCKED_AFTER,
             cpus: int | None = 2, shared_listener: bool = False, route=()) -> WorkerPool:
        server = WebServer(host="127.0.0.1", port=0, route=list(route), threads=threads,
                           access_log=False)
        sock = server.bind()
        pool = WorkerPool(server.connection_context(), sock, threads,
                          max_connections=server.max_connections,
                          wake_housekeeping=server.wake_housekeeping, clock=Clock(),
                          blocked_after=blocked_after, cpus=cpus,
                          shared_listener=shared_listener)
        made.append((pool, sock))
        return pool

    yield make
    for pool, sock in made:
        pool.poller.close()
        sock.close()


def serving_since(pool: WorkerPool, ages: list[float]) -> None:
    now = pool.clock()
    pool.serving.update({ident: now - age for ident, age in enumerate(ages)})


def places(pool: WorkerPool) -> int:
    return pool.base_slots + pool.extra_slots


def test_no_place_is_added_while_no_thread_is_blocked(make_pool):
    pool = make_pool(threads=16)
    serving_since(pool, [0.0, 0.0])
    pool.relieve_blocked()
    assert places(pool) == pool_module.ACTIVE_THREADS


def test_a_place_is_added_for_every_blocked_thread_at_once(make_pool):
    pool = make_pool(threads=16)
    blocked = pool_module.BLOCKED_AFTER * 5
    serving_since(pool, [blocked, 0.0])
    pool.relieve_blocked()
    # One blocked thread: two places are still left for threads that can take events.
    assert places(pool) == pool_module.ACTIVE_THREADS + 1
    pool.relieve_blocked()  # the same thread, still blocked: nothing more
    assert places(pool) == pool_module.ACTIVE_THREADS + 1
    serving_since(pool, [blocked, blocked, 0.0])  # one more blocked, a place still free
    pool.relieve_blocked()
    assert places(pool) == pool_module.ACTIVE_THREADS + 2


def test_when_every_place_is_held_by_a_blocked_thread_the_places_double(make_pool):
    pool = make_pool(threads=16)
    blocked = pool_module.BLOCKED_AFTER * 5
    serving_since(pool, [blocked] * pool_module.ACTIVE_THREADS)
    pool.relieve_blocked()
    assert places(pool) == pool_module.ACTIVE_THREADS * 3
    pool.relieve_blocked()  # the same threads: the new places are still free
    assert places(pool) == pool_module.ACTIVE_THREADS * 3


def test_a_burst_of_views_that_block_gets_its_threads_in_a_few_looks(make_pool):
    """15 requests at once to views that block, in a process on one CPU: each look finds
    the threads of the places it opened blocked in their turn."""
    pool = make_pool(threads=16, cpus=1)
    blocked = pool_module.BLOCKED_AFTER * 5
    looks = 0
    while places(pool) < 15:
        serving_since(pool, [blocked] * places(pool))  # every place took a view, which blocks
        pool.relieve_blocked()
        looks += 1
    assert looks == 3 and places(pool) == 15  # 1 -> 3 -> 7 -> 15; one a look would take 14
    serving_since(pool, [blocked] * 15)
    pool.relieve_blocked()
    assert places(pool) == 16  # never more than the threads


def test_a_process_on_one_cpu_takes_events_on_one_thread(make_pool):
    pool = make_pool(threads=16, cpus=1)
    assert places(pool) == 1
    serving_since(pool, [pool_module.BLOCKED_AFTER * 5])
    pool.relieve_blocked()  # a blocked thread, in the only place, gets two beside it
    assert places(pool) == 3
    serving_since(pool, [pool_module.BLOCKED_AFTER * 5] * 2 + [0.0])  # one place still free
    pool.relieve_blocked()
    assert places(pool) == 3


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_the_cpus_are_the_affinity_the_pool_is_made_with(make_pool):
    """Pinned like `taskset -c 0`, a pool counts one CPU; unpinned, all it may use."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})  # this thread only, which makes the pool
    try:
        pinned = make_pool(threads=16, cpus=None)
    finally:
        os.sched_setaffinity(0, allowed)
    assert places(pinned) == 1
    free = make_pool(threads=16, cpus=None)
    assert places(free) == min(pool_module.ACTIVE_THREADS, len(allowed))


def test_places_never_exceed_the_threads(make_pool):
    pool = make_pool(threads=4)
    serving_since(pool, [1.0] * 4)
    pool.relieve_blocked()
    assert places(pool) == 4


def test_a_done_thread_gives_its_extra_place_back(make_pool):
    pool = make_pool(threads=16)
    serving_since(pool, [1.0, 0.0])
    pool.relieve_blocked()
    serving_since(pool, [1.0, 1.0, 0.0])  # two blocked, a place left for the third
    pool.relieve_blocked()
    assert pool._give_back_extra_slot() and pool._give_back_extra_slot()
    assert not pool._give_back_extra_slot()
    assert places(pool) == pool_module.ACTIVE_THREADS


def test_housekeeping_looks_when_the_longest_serving_thread_would_be_blocked(make_pool):
    pool = make_pool(threads=16)
    after = pool_module.BLOCKED_AFTER
    serving_since(pool, [0.0])
    assert pool.housekeeping_interval() == pytest.approx(after)
    serving_since(pool, [0.0, after * 0.75])  # the second began earlier: it comes first
    assert pool.housekeeping_interval() == pytest.approx(after * 0.25)
    assert not pool.dozing


def test_a_thread_already_counted_as_blocked_does_not_make_housekeeping_spin(make_pool):
    pool = make_pool(threads=16)
    after = pool_module.BLOCKED_AFTER
    serving_since(pool, [after * 10, after * 10])
    pool.relieve_blocked()
    assert pool.housekeeping_interval() == pytest.approx(after)
    serving_since(pool, [after * 10, after * 10, after * 0.5])
    assert pool.housekeeping_interval() == pytest.approx(after * 0.5)


def test_housekeeping_never_waits_less_than_its_soonest_check(make_pool):
    pool = make_pool(threads=16)
    serving_since(pool, [pool_module.BLOCKED_AFTER])  # blocked from this very instant
    assert pool.housekeeping_interval() == pool_module.SOONEST_CHECK


def test_housekeeping_checks_rarely_once_quiet(make_pool):
    pool = make_pool(threads=16)
    serving_since(pool, [0.0])
    pool.housekeeping_interval()
    pool.serving.clear()
    # Just after the last request: still often, a burst may follow.
    assert pool.housekeeping_interval() == pytest.approx(pool_module.BLOCKED_AFTER)
    pool.clock.now += pool_module.QUIET_AFTER * 2  # quiet for longer than QUIET_AFTER
    assert pool.housekeeping_interval() == pool_module.IDLE_CHECK
    assert pool.dozing  # so the next thread to take an event wakes housekeeping


def test_a_thread_that_begins_to_serve_is_seen_even_while_dozing(make_pool):
    pool = make_pool(threads=16)
    pool.busy_until = pool.clock() - 1
    serving_since(pool, [0.0])
    assert pool.housekeeping_interval() == pytest.approx(pool_module.BLOCKED_AFTER)
    assert not pool.dozing


def test_blocked_after_sets_when_a_thread_counts_as_blocked(make_pool):
    pool = make_pool(threads=16, blocked_after=0.5)
    serving_since(pool, [0.4, 0.1])
    pool.relieve_blocked()
    assert places(pool) == pool_module.ACTIVE_THREADS  # 0.4 s is not blocked at 0.5
    assert pool.housekeeping_interval() == pytest.approx(0.1)
    serving_since(pool, [0.6, 0.1])
    pool.relieve_blocked()
    assert places(pool) == pool_module.ACTIVE_THREADS + 1


def test_each_look_that_finds_no_blocked_thread_lets_the_next_wait_longer(make_pool):
    pool = make_pool(threads=16)
    after = pool_module.BLOCKED_AFTER
    waits = []
    for _ in range(8):
        serving_since(pool, [0.0])  # a thread always on a new, short event
        pool.relieve_blocked()
        waits.append(pool.housekeeping_interval())
    assert waits[:4] == pytest.approx([after, after * 2, after * 4, after * 8])
    assert waits[4:] == pytest.approx([pool_module.RELAXED_CHECK] * 4)
    assert places(pool) == pool_module.ACTIVE_THREADS


def test_a_look_while_no_thread_serves_does_not_relax_the_next(make_pool):
    pool = make_pool(threads=16)
    for _ in range(8):
        pool.relieve_blocked()  # between two bursts of views that block, say
    serving_since(pool, [0.0])
    assert pool.housekeeping_interval() == pytest.approx(pool_module.BLOCKED_AFTER)


def test_a_quiet_spell_makes_the_looks_exact_again(make_pool):
    pool = make_pool(threads=16)
    for _ in range(8):
        serving_since(pool, [0.0])
        pool.relieve_blocked()
    pool.serving.clear()
    pool.clock.now += pool_module.QUIET_AFTER * 2
    assert pool.housekeeping_interval() == pool_module.IDLE_CHECK
    serving_since(pool, [0.0])  # the first request after it, which may block
    assert pool.housekeeping_interval() == pytest.approx(pool_module.BLOCKED_AFTER)


def test_a_blocked_thread_is_found_at_most_one_relaxed_check_late(make_pool):
    pool = make_pool(threads=16)
    for _ in range(8):
        serving_since(pool, [0.0])
        pool.relieve_blocked()  # the looks relax all the way
    pool.serving.clear()
    serving_since(pool, [0.0])  # a thread begins the event it will block on
    wait = pool.housekeeping_interval()
    assert wait == pytest.approx(pool_module.RELAXED_CHECK)
    pool.clock.now += wait
    pool.relieve_blocked()
    assert places(pool) == pool_module.ACTIVE_THREADS + 1


def test_a_blocked_thread_found_makes_the_looks_exact_again(make_pool):
    pool = make_pool(threads=16)
    after = pool_module.BLOCKED_AFTER
    for _ in range(8):
        serving_since(pool, [0.0])
        pool.relieve_blocked()
    serving_since(pool, [after * 3])
    pool.relieve_blocked()  # found blocked
    serving_since(pool, [after * 3, after * 0.25])
    assert pool.housekeeping_interval() == pytest.approx(after * 0.75)


def test_answers_sent_from_a_batch_are_each_an_event_of_their_own(make_pool):
    """A thread sends its held answers, and serves what came meanwhile, one connection after
    another (pool._send_held): sending many that take longer than blocked_after in all
    does not count it as blocked, as long as none takes that long alone."""
    after = pool_module.BLOCKED_AFTER

    def slow(request, response):  # housekeeping looks while the view runs
        pool.clock.now += after * 0.6
        pool.relieve_blocked()
        response.send("ok")

    pool = make_pool(threads=4, route=[Path(r"^/slow$", slow)])
    held, clients = deque(), []
    for _ in range(3):
        server_side, client = socket.socketpair()
        server_side.setblocking(False)
        connection = Connection(server_side, "127.0.0.1", pool.context, pool.forget)
        pool.connections[connection.fd] = connection
        pool.poller.register(connection.fd)
        client.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")  # came meanwhile
        held.append(connection)
        clients.append(client)
    pool._send_held(held, threading.get_ident())
    assert places(pool) == pool_module.ACTIVE_THREADS
    for client in clients:
        assert client.recv(4096).startswith(b"HTTP/1.1 200 OK")
    for connection in list(pool.connections.values()):
        connection.close()
    for client in clients:
        client.close()


def test_the_blocked_after_setting_reaches_the_pool():
    server = WebServer(host="127.0.0.1", port=0, route=[], access_log=False,
                       blocked_after=0.25)
    with LiveServer(server) as live:
        # An answer means the server's thread has made its pool (after the socket listens).
        assert requests.get(live.url + "/", timeout=10).status_code == 404
        assert server.pool.blocked_after == 0.25


def test_stopping_waits_for_a_thread_that_is_accepting(make_pool):
    # A thread in the middle of accepting when the server stops: its connection must be
    # in the table before stopping returns, or the drain could end without it.
    pool = make_pool(threads=2)
    pool.listener.setblocking(False)
    pool.accepting = True
    client = socket.create_connection(pool.listener.getsockname()[:2])
    holding, go_on = threading.Event(), threading.Event()

    def accepting_thread():
        with pool.accept_lock:  # as _accept holds it
            holding.set()
            assert go_on.wait(10)
            sock, address = pool.listener.accept()
            pool._add(sock, address)

    acceptor = threading.Thread(target=accepting_thread)
    acceptor.start()
    assert holding.wait(10)
    stopper = threading.Thread(target=pool.stop_accepting)
    stopper.start()
    stopper.join(0.2)
    assert stopper.is_alive()  # waiting for the accepting thread, not taking its connection
    go_on.set()
    acceptor.join(10)
    stopper.join(10)
    assert not stopper.is_alive() and len(pool.connections) == 1
    pool.close()
    client.close()


def test_every_held_answer_is_sent_while_a_view_blocks():
    """The answers of a batch are held back until its end (pool._handle); a thread must send
    them before it waits for anything, also when it gives back a place opened because
    another thread blocks. The blocked view is released only once every fast answer came:
    an answer left held by a thread waiting for a place would never come."""
    release = threading.Event()

    def block(request, response):
        assert release.wait(30)
        response.send("done")

    def fast(request, response):
        response.send("ok")

    server = WebServer(host="127.0.0.1", port=0, access_log=False, threads=4,
                       blocked_after=0.005,
                       route=[Path(r"^/block$", block), Path(r"^/fast$", fast)])
    with LiveServer(server) as live:
        address = ("127.0.0.1", live.port)
        blocked = socket.create_connection(address, timeout=30)
        blocked.sendall(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
        clients = [socket.create_connection(address, timeout=10) for _ in range(24)]
        try:
            for _ in range(10):
                for client in clients:  # all at once: one batch of events, or a few
                    client.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
                for client in clients:
                    answer = b""
                    while not answer.endswith(b"\r\n\r\nok"):
                        chunk = client.recv(4096)
                        assert chunk, answer
                        answer += chunk
                    assert answer.startswith(b"HTTP/1.1 200 OK")
        finally:
            release.set()
        answer = b""
        while not answer.endswith(b"done"):
            answer += blocked.recv(4096)
        for sock in [blocked, *clients]:
            sock.close()


def test_a_blocked_threads_held_answers_are_handed_to_the_poller(make_pool):
    """Housekeeping finds a thread blocked while it holds answers of its batch: they are
    parked and reported at once, for another thread to send, not left to wait for the view."""
    pool = make_pool(threads=4)
    server_side, client = socket.socketpair()
    server_side.setblocking(False)
    connection = Connection(server_side, "127.0.0.1", pool.context, pool.forget)
    pool.connections[connection.fd] = connection
    pool.poller.register(connection.fd)
    assert pool.poller.wait(0, 16) == []  # nothing to report yet
    connection.out.queue.append(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")  # held
    owner = 12345
    pool.held[owner] = deque([connection])
    pool.serving[owner] = pool.clock() - pool_module.BLOCKED_AFTER * 5
    pool.relieve_blocked()
    assert not pool.held[owner] and connection.parked
    assert [fd for fd, _ in pool.poller.wait(0, 16)] == [connection.fd]
    pool.serving.clear()
    pool.held[owner] = deque([connection])  # a thread that is not blocked keeps what it holds
    connection.parked = False
    pool.serving[owner] = pool.clock()
    pool.relieve_blocked()
    assert list(pool.held[owner]) == [connection] and not connection.parked
    connection.close()
    client.close()


@pytest.mark.parametrize("shared_listener, taken", [(False, 3), (True, 1)])
def test_a_process_with_siblings_accepts_one_connection_per_event(make_pool, shared_listener,
                                                                    taken):
    """Alone on its socket, a process takes every queued connection on one event; with
    sibling processes (workers > 1), one, and the listening socket is reported again at
    once for the next, which any of the processes may take."""
    pool = make_pool(threads=2, shared_listener=shared_listener)
    pool.listener.setblocking(False)  # as start() leaves it
    pool.poller.register_listener(pool.listener_fd)
    pool.accepting = True
    port = pool.listener.getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        assert [fd for fd, _ in pool.poller.wait(5, 16)] == [pool.listener_fd]
        pool._handle(pool.listener_fd, 0, [])
        assert len(pool.connections) == taken
        if taken < len(clients):  # the rest wait in the queue, and the poller says so
            assert [fd for fd, _ in pool.poller.wait(5, 16)] == [pool.listener_fd]
            pool._handle(pool.listener_fd, 0, [])
            assert len(pool.connections) == taken + 1
    finally:
        for connection in list(pool.connections.values()):
            connection.close()
        for client in clients:
            client.close()


def test_the_pool_of_a_forked_worker_shares_its_listening_socket():
    assert WebServer(port=0, workers=2).forks_workers is hasattr(os, "fork")
    assert not WebServer(port=0, workers=1).forks_workers


def test_the_selector_poller_serves_like_epoll(monkeypatch):
    """Where there is no epoll (macOS, BSD) the selector stands in: each socket reported
    once per arming, so a connection parked without output waiting must still be re-armed.
    Keep-alive, pipelining, and a large answer to a client with a small window, through it."""
    from http_server import poller as poller_module

    monkeypatch.setattr(pool_module, "make_poller", poller_module.SelectorPoller)
    big = os.urandom(4 << 20)

    def small(request, response):
        response.send("small")

    def large(request, response):
        response.send(big, 200, "application/octet-stream")

    server = WebServer(host="127.0.0.1", port=0, access_log=False, threads=4,
                       route=[Path(r"^/small$", small), Path(r"^/large$", large)])
    with LiveServer(server) as live:
        with requests.Session() as session:
            for _ in range(20):  # one connection, parked and re-armed between requests
                assert session.get(f"{live.url}/small", timeout=10).text == "small"
        assert isinstance(server.pool.poller, poller_module.SelectorPoller)  # answered: made
        with socket.socket() as raw:
            # A small receive window: the 4 MiB answer waits for writability, again and again.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.settimeout(10)
            raw.connect(("127.0.0.1", live.port))
            small_request = b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n"
            raw.sendall(b"GET /large HTTP/1.1\r\nHost: x\r\n\r\n" + small_request * 2)
            received = b""
            while received.count(b"Content-Length: 5\r\n\r\nsmall") < 2:
                chunk = raw.recv(1 << 16)
                assert chunk, received[-200:]
                received += chunk
        assert received.count(b"HTTP/1.1 200 OK") == 3
        assert big in received
