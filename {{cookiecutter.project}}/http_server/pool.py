"""The worker threads of one process, and the connections they share.

Every worker waits on the same poller. The thread that receives an event
accepts, or serves the connection from first byte to last (see connection.py),
then parks it: leaves it to the poller until something new happens on it. No
request is ever handed from one thread to another. The answers to one batch of
events (one wait on the poller) are held back and sent together at its end,
so that the clients are woken once for all of them, not once per answer.

``lock`` guards the table of connections and each connection's ``parked`` and
``again`` flags. One thread at a time serves a connection: an event that comes
while it does is noted in ``again``, and the same thread serves it once more
before parking it. And the housekeeping thread that closes expired connections
and a worker that just received an event for one never both own it.

Only a few threads take events at once (``ACTIVE_THREADS``, and no more than
the CPUs the process may run on): on one core, more threads running Python
only fight over the GIL, and the loser's requests wait. The rest are there
for views that block (a database, another service): a thread busy with one
event for longer than ``blocked_after`` counts as blocked, and the
housekeeping thread opens one more place for each, so that that many places
are always held by threads that can take events (two for each, when every place
is held by a blocked thread: a burst of views that block). A thread gives its
extra place back when it is done. Housekeeping looks less often while it finds
no thread blocked (see RELAXED_CHECK).
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from .accesslog import logger
from .config import cpus_this_process_may_run_on
from .connection import Connection, Context
from .poller import PEER_CLOSED, make_poller
from .response import Response

ACCEPTS_PER_EVENT = 64  # when the process is alone on its listening socket
EVENTS_PER_WAIT = 64  # ready sockets taken from the poller in one call, shared via `ready`
ACTIVE_THREADS = 2
BLOCKED_AFTER = 0.002  # the default of blocked_after (the BLOCKED_AFTER setting), seconds
# When housekeeping looks for blocked threads: while threads serve, at the moment
# the one serving longest would count as blocked (not on a fixed tick: each wake-up
# costs the serving threads a switch); every IDLE_CHECK once none has served for
# QUIET_AFTER (an idle server stays near 0% CPU), until the first to serve wakes it.
# Each look that finds threads serving and none blocked lets the next wait twice as
# long, up to RELAXED_CHECK: where views never block, a look every blocked_after
# would take the GIL from the serving thread hundreds of times a second, for
# nothing. The first blocked thread found makes the looks exact again, and so does
# a quiet spell.
SOONEST_CHECK = 0.0002
RELAXED_CHECK = 0.016
IDLE_CHECK = 0.02
QUIET_AFTER = 0.05


class WorkerPool:
    """The threads of one process, serving the connections accepted on ``listener``.

    ``wake_housekeeping`` interrupts the main thread's wait (see
    ``housekeeping_interval``); ``clock`` is the clock that times the threads'
    events (a test passes its own); a thread on one event for longer than
    ``blocked_after`` seconds counts as blocked; ``cpus``: how many CPUs the process
    may run on (its affinity when None); ``shared_listener``: sibling processes accept
    on the same socket (``workers`` > 1).
    """

    def __init__(self, context: Context, listener: socket.socket, threads: int, *,
                 max_connections: int, wake_housekeeping: Callable[[], None],
                 clock: Callable[[], float] = time.monotonic,
                 blocked_after: float = BLOCKED_AFTER, cpus: int | None = None,
                 shared_listener: bool = False) -> None:
        self.context = context
        self.blocked_after = blocked_after
        self.max_connections = max_connections
        self.wake_housekeeping = wake_housekeeping
        self.clock = clock
        self.listener = listener
        self.listener_fd = listener.fileno()
        # Alone, a process takes every queued connection at once. With siblings, one per
        # event: taking all would put a burst (a client opening 50 connections) into the
        # process that woke first, and leave the other idle; one at a time, each process
        # comes back for more as soon as it is free, and the burst is shared.
        self.accepts_per_event = 1 if shared_listener else ACCEPTS_PER_EVENT
        self.thread_count = threads
        self.poller = make_poller()
        # A parked connection needs rearm() only when its output waits, unless the poller
        # reports each socket once per arming (the selector).
        self.rearm_always = self.poller.one_event_per_arming
        self.lock = threading.Lock()
        self.leader = threading.Lock()
        # Held while a thread accepts: stopping waits for it, so that every connection
        # accepted is in the table before the server counts what is left to drain.
        self.accept_lock = threading.Lock()
        self.ready: deque[int] = deque()  # reported ready, not yet taken by a thread
        if cpus is None:
            cpus = cpus_this_process_may_run_on()
        # Pinned to one core, a second thread taking events could only take the GIL
        # from the first at random points, and delay its answer.
        self.base_slots = max(1, min(ACTIVE_THREADS, threads, cpus))
        self.slots = threading.Semaphore(self.base_slots)  # places to take events
        self.extra_slots = 0  # places added because threads were blocked
        self.slot_lock = threading.Lock()
        self.serving: dict[int, float] = {}  # thread ident -> when it took its event
        # thread ident -> the connections whose answers it holds (see _handle). Housekeeping
        # takes those of a thread that blocks (_hand_over_held), with no lock: each side
        # takes a connection with one popleft, which the interpreter does at once, so each
        # connection goes to one of them.
        self.held: dict[int, deque[Connection]] = {}
        self.busy_until = 0.0  # housekeeping checks at least every blocked_after until then
        self.relaxed_wait = 0.0  # housekeeping waits at least this long (see RELAXED_CHECK)
        self.dozing = False  # housekeeping checks rarely: the next thread to serve wakes it
        self.connections: dict[int, Connection] = {}
        self.running = False
        self.accepting = False
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.listener.setblocking(False)
        self.running = True
        self.accepting = True
        self.poller.register_listener(self.listener_fd)
        for number in range(self.thread_count):
            thread = threading.Thread(target=self._work, name=f"http-worker-{number}", daemon=True)
            thread.start()
            self.threads.append(thread)

    # -- the worker loop --------------------------------------------------

    def _work(self) -> None:
        leader = self.leader
        me = threading.get_ident()
        # Served from this batch of events, their answers queued and not yet sent (see
        # _handle): this thread still owns them, and never waits before it sent them.
        held: deque[Connection] = deque()
        self.held[me] = held
        ready = self.ready
        wait = self.poller.wait
        while self.running:
            if not self.slots.acquire(timeout=1.0):
                continue
            # The place is kept from event to event (handing it to another thread
            # each time would cost a thread switch per request) until a place
            # opened for a blocked thread has to be given back.
            while self.running:
                if held and not self.ready:
                    self._send_held(held, me)  # the batch is done
                # Leader/followers: one thread waits for the poller, the others
                # wait for that thread, so an event wakes one thread, not all.
                if not held:
                    leader.acquire()
                elif not leader.acquire(False):
                    self._send_held(held, me)
                    leader.acquire()
                try:
                    # One already reported, or the first of a new batch from the poller,
                    # whose others go to `ready`: one system call, many events.
                    if ready:
                        event = ready.popleft()
                    else:
                        try:
                            events = wait(0.0 if held else 1.0, EVENTS_PER_WAIT)
                        except (OSError, ValueError):  # closed: the server is stopping
                            events = ()
                        if events:
                            event = events[0]
                            if len(events) > 1:
                                ready.extend(events[1:])  # for the next free threads
                        else:
                            event = None
                finally:
                    leader.release()
                if event is not None:
                    self.serving[me] = self.clock()  # _begin_serving, inlined: per event
                    if self.dozing:
                        self._begin_serving(me)
                    try:
                        self._handle(event[0], event[1], held)  # not *event: a slower call
                    finally:
                        del self.serving[me]
                    if len(held) >= EVENTS_PER_WAIT:
                        self._send_held(held, me)
                if self.extra_slots:
                    if held:
                        self._send_held(held, me)
                    if self._give_back_extra_slot():
                        break
        if held:
            self._send_held(held, me)

    def _begin_serving(self, me: int) -> None:
        self.serving[me] = self.clock()
        if self.dozing:
            self.dozing = False
            self.wake_housekeeping()

    def _handle(self, fd: int, mask: int, held: deque[Connection]) -> None:
        """Serve the event. While more events of its batch wait, hold the connection's
        answers back: they go out with the rest of the batch's (``_send_held``). Sent one
        by one between the requests, each send would find the client asleep again and
        pay for waking it; sent together, the client is woken once and finds them all."""
        if fd == self.listener_fd:
            self._accept()
            return
        with self.lock:
            connection = self.connections.get(fd)
            if connection is None:
                return  # closed by housekeeping after the event was reported
            if mask & PEER_CLOSED:
                connection.peer_closed = True  # read to the end: no event will say so again
            if not connection.parked:
                connection.again = True  # another thread serves it: it looks once more
                return
            connection.parked = False
        if not self.ready:  # the last of its batch: nothing to wait for
            self._serve_until_parked(connection)
            return
        out = connection.out
        out.hold = True
        try:
            keep = connection.serve()
        except Exception:
            keep = self._failed(connection)
        finally:
            out.hold = False
        if keep:
            held.append(connection)

    @staticmethod
    def _failed(connection: Connection) -> bool:
        """After an unexpected error serving ``connection``: log it and close it."""
        logger.error("unexpected error serving %s", connection.remote, exc_info=True)
        return connection.close()

    def _serve_until_parked(self, connection: Connection, read: bool = True) -> None:
        """Serve the connection, then park it: give it back to the poller until the client
        sends more, or can take more. An event that came for it meanwhile (``again``)
        means serving it once more first."""
        while True:
            try:
                keep = connection.serve(read)
            except Exception:
                keep = self._failed(connection)
            if not keep:
                return
            with self.lock:
                if self.connections.get(connection.fd) is not connection:
                    return  # the pool closed it meanwhile (stopping)
                if not connection.again:
                    connection.parked = True
                    queued = connection.out.queue
                    if queued or self.rearm_always:
                        self.poller.rearm(connection.fd, bool(queued))
                    return
                connection.again = False
            read = True  # an event came meanwhile

    def _send_held(self, held: deque[Connection], me: int) -> None:
        """Send the held answers, serve what came meanwhile, and park each connection.

        One at a time from the list: should serving one run a view that blocks, the
        rest can still be handed over (``_hand_over_held``)."""
        self._begin_serving(me)  # serving may run views again: pipelined requests
        serving = self.serving
        clock = self.clock
        try:
            while True:
                try:
                    connection = held.popleft()
                except IndexError:  # all sent, or handed over meanwhile
                    return
                # Each answer sent is an event of its own: a batch that takes longer
                # than blocked_after does not make this thread blocked.
                serving[me] = clock()
                # Nothing is left to read after a short read.
                self._serve_until_parked(connection, not connection.drained)
        finally:
            del self.serving[me]

    def _hand_over_held(self, blocked: list[int]) -> None:
        """The held answers of threads that block: to the poller, which reports their
        sockets at once (they can take the answer), so that another thread sends them
        instead of leaving them to wait for the blocked view."""
        taken = []
        for ident in blocked:
            held = self.held.get(ident)
            while held:
                try:
                    taken.append(held.popleft())
                except IndexError:  # the thread took the last one meanwhile
                    break
        if not taken:
            return
        with self.lock:
            for connection in taken:
                if self.connections.get(connection.fd) is connection:
                    connection.again = False  # reported anew, input included
                    connection.parked = True
                    self.poller.wake(connection.fd)

    def _give_back_extra_slot(self) -> bool:
        """Shrink back by one place (the blocked thread is done); True if this thread did."""
        with self.slot_lock:
            if self.extra_slots:
                self.extra_slots -= 1
                return True
        return False

    def housekeeping_interval(self) -> float:
        """From housekeeping: how long it may wait before calling relieve_blocked again.

        Until the thread serving longest, of those not yet counted as blocked, reaches
        ``blocked_after``; with none, ``blocked_after`` (a thread that begins now is
        blocked no sooner), or ``IDLE_CHECK`` once the pool has been quiet. No sooner
        than ``relaxed_wait``, while the looks find no thread blocked.
        """
        now = self.clock()
        after = self.blocked_after
        starts = list(self.serving.values())  # a copy: the threads change the table
        if starts:
            self.busy_until = now + QUIET_AFTER
            not_yet_blocked = [since for since in starts if now - since <= after]
            if not_yet_blocked:
                return max(min(not_yet_blocked) + after - now, self.relaxed_wait, SOONEST_CHECK)
            return after
        if now < self.busy_until:
            return max(after, self.relaxed_wait)
        self.dozing = True
        self.relaxed_wait = 0.0  # after a quiet spell, nothing is known of the next views
        if self.serving:  # a thread began to serve before it could see `dozing`
            self.dozing = False
            return after
        return IDLE_CHECK

    def relieve_blocked(self) -> None:
        """From housekeeping: open a place for each blocked thread (up to ``threads``), and
        let another thread send the answers a blocked thread holds."""
        now = self.clock()
        after = self.blocked_after
        serving = list(self.serving.items())  # a copy: the threads change the table
        blocked = [ident for ident, since in serving if now - since > after]
        if blocked:
            self.relaxed_wait = 0.0
        elif serving:  # threads serve, none for long: views that do not block
            self.relaxed_wait = min(max(self.relaxed_wait * 2, after), RELAXED_CHECK)
        # A look while no thread serves tells nothing of the views: the wait stays.
        with self.slot_lock:
            places = self.base_slots + self.extra_slots
            # Every place held by a blocked thread: no thread takes events, and a burst of
            # views that block (a client's 15 requests at once) would get one place per
            # look, each view blocking before the next look opens another. Views block
            # here, it seems: as many places again, so that the places double from look
            # to look. Those not needed are given back as their threads finish an event.
            opened = len(blocked) * (2 if len(blocked) >= places else 1)
            wanted = min(self.base_slots + opened, self.thread_count)
            while self.base_slots + self.extra_slots < wanted:
                self.extra_slots += 1
                self.slots.release()
        if blocked:
            self._hand_over_held(blocked)

    def forget(self, connection: Connection) -> None:
        """Drop a connection that is about to be closed (its socket is still open)."""
        with self.lock:
            if self.connections.get(connection.fd) is connection:
                del self.connections[connection.fd]
                self.poller.unregister(connection.fd)

    def _accept(self) -> None:
        try:
            with self.accept_lock:
                for _ in range(self.accepts_per_event):
                    try:
                        sock, address = self.listener.accept()
                    except BlockingIOError:
                        break
                    except OSError as error:
                        if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS,
                                           errno.ENOMEM):
                            logger.error("cannot accept a connection: %s", error.strerror)
                            time.sleep(0.1)  # out of file descriptors: let some close first
                        break
                    self._add(sock, address)
        finally:
            with self.lock:
                if self.accepting:
                    self.poller.rearm_listener(self.listener_fd)

    def _add(self, sock: socket.socket, address) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if len(self.connections) >= self.max_connections:
            try:
                sock.send(_busy_answer())
            except OSError:
                pass
            sock.close()
            return
        remote = address[0] if isinstance(address, tuple) else "unix"
        connection = Connection(sock, remote, self.context, self.forget)
        with self.lock:
            self.connections[connection.fd] = connection
            connection.parked = True
            self.poller.register(connection.fd)

    # -- housekeeping, from the main thread -------------------------------

    def sweep(self, closing_idle: bool = False) -> None:
        """Close parked connections past their deadline (and, when stopping, all but uploads)."""
        now = time.monotonic()  # the clock connections set their deadlines by
        expired = []
        with self.lock:
            for connection in self.connections.values():
                # When stopping, only a body being uploaded counts as in flight:
                # a half-sent head must not hold shutdown for the whole grace period.
                if not connection.parked:
                    continue
                if closing_idle and not connection.parser.awaiting_body:
                    # Stopping: idle connections close, but not one whose request has
                    # arrived (a thread will answer it, with Connection: close), nor one
                    # just accepted whose request may still be on its way.
                    if not connection.has_input() and not connection.just_accepted(now):
                        expired.append(connection)
                elif connection.deadline <= now and (connection.wants_write
                                                     or not connection.has_input()):
                    # Input waiting means its event is on its way to a thread that is
                    # busy: the client is not idle, and its request must not be lost.
                    # Unless the answer before it waits for the client to read: a client
                    # that sends and never reads is past its deadline all the same.
                    expired.append(connection)
            for connection in expired:
                connection.parked = False
                del self.connections[connection.fd]
                self.poller.unregister(connection.fd)
        for connection in expired:
            connection.expire()

    def stop_accepting(self) -> None:
        """Take no new connection; accept those already queued, which closing the
        listening socket would reset, so that they are served before the end."""
        with self.lock:
            self.accepting = False
            self.poller.unregister(self.listener_fd)
        # A thread accepting at this moment finishes first: otherwise the drain could
        # find no connection left and end while that thread still adds one, which would
        # then be reset when the process exits.
        with self.accept_lock:
            while True:
                try:
                    sock, address = self.listener.accept()
                except OSError:  # BlockingIOError: the queue is empty
                    break
                self._add(sock, address)

    def drain(self, grace: float) -> None:
        """Let in-flight requests finish and close idle connections, for ``grace`` seconds."""
        deadline = time.monotonic() + grace
        while True:
            self.sweep(closing_idle=True)
            if not self.connections or time.monotonic() >= deadline:
                break
            time.sleep(0.02)

    def close(self) -> None:
        self.running = False
        with self.lock:
            leftovers = list(self.connections.values())
            self.connections.clear()
        for connection in leftovers:
            connection.close()  # its queued files too
        self.poller.close()


def _busy_answer() -> bytes:
    """The 503 for a connection over ``max_connections``, built like every other answer."""
    response = Response()
    response.headers["Retry-After"] = "1"
    response.send_error(503)
    return response.head_bytes(keep_alive=False) + response.body
