"""Readiness of many sockets, shared by the worker threads.

``wait(timeout, most)`` reports ``(fd, mask)`` for up to ``most`` sockets on which
something new happened (none after ``timeout`` seconds; once the poller is closed, none,
or OSError or ValueError from epoll): input arrived, or, once output waits for the
client, the socket can take more. ``mask & PEER_CLOSED`` says the client has also finished
sending, so the connection must read to the end of its input. The worker pool makes sure that no
two threads serve one connection at once (pool.py). The listening socket is
armed for one event at a time: once reported, not again until the thread that
took it calls ``rearm_listener``.

On Linux this is epoll: edge-triggered for connections, so a connection served
and left waiting costs no system call, and ``EPOLLONESHOT`` for the listening
socket. Elsewhere a selector emulates it: each socket is armed for one event,
one thread at a time waits, and re-arming wakes it through a pipe.
"""

from __future__ import annotations

import os
import select
import selectors
import threading

# Reported with an event when the client has closed (or reset) its side.
PEER_CLOSED = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR if hasattr(
    select, "EPOLLRDHUP") else 0


class EpollPoller:
    one_event_per_arming = False  # edge-triggered: rearm() matters only for writability

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._input = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET
        self._input_output = self._input | select.EPOLLOUT
        self._listener = select.EPOLLIN | select.EPOLLONESHOT
        self._writers: set[int] = set()  # connections watched for writability too
        # wait(timeout, most): epoll's own poll, its own (fd, mask) pairs, no layer around
        # it (a call per event saved). Once closed it raises OSError or ValueError.
        self.wait = self._epoll.poll

    def register_listener(self, fd: int) -> None:
        self._epoll.register(fd, self._listener)

    def rearm_listener(self, fd: int) -> None:
        self._epoll.modify(fd, self._listener)

    def register(self, fd: int) -> None:
        self._epoll.register(fd, self._input)

    def rearm(self, fd: int, writable: bool = False) -> None:
        """After a thread served ``fd``: watch it for writability too once output waits.

        Edge-triggered, a connection needs nothing else: new input is reported
        whenever it arrives. Writability, once watched, stays watched: it is reported
        only when a socket that was full can take more.
        """
        if writable and fd not in self._writers:
            self._writers.add(fd)
            self._epoll.modify(fd, self._input_output)  # reported at once if writable now

    def wake(self, fd: int) -> None:
        """Report ``fd`` once more at once: its output waits and it can take it (or it has
        input), whatever it was watched for."""
        self._writers.add(fd)
        self._epoll.modify(fd, self._input_output)

    def unregister(self, fd: int) -> None:
        self._writers.discard(fd)
        try:
            self._epoll.unregister(fd)
        except (OSError, ValueError):
            pass  # already gone: closing twice must be harmless

    def close(self) -> None:
        self._epoll.close()


class SelectorPoller:
    """The same contract on platforms without epoll (macOS, BSD): correct, not fast."""

    one_event_per_arming = True  # a reported socket is silent until rearm()

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()  # one waiting thread at a time
        self._changes = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._closed = False

    def register(self, fd: int, writable: bool = False) -> None:
        with self._changes:
            self._selector.register(fd, selectors.EVENT_WRITE if writable else selectors.EVENT_READ)
        self._wake()

    rearm = register
    register_listener = register
    rearm_listener = register

    def wake(self, fd: int) -> None:
        self.register(fd, writable=True)

    def unregister(self, fd: int) -> None:
        with self._changes:
            try:
                self._selector.unregister(fd)
            except (KeyError, ValueError, OSError):
                pass

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def wait(self, timeout: float, most: int) -> list[tuple[int, int]]:
        if not self._lock.acquire(timeout=timeout):
            return []
        try:
            if self._closed:
                return []
            ready = []
            for key, _ in self._selector.select(timeout):
                if key.fd == self._wake_r:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                    continue
                self.unregister(key.fd)  # one event per arming, like EPOLLONESHOT
                # Level-triggered once re-armed: input left unread is reported again.
                ready.append((key.fd, 0))  # an end of input is read like any input
                if len(ready) == most:
                    break
            return ready
        finally:
            self._lock.release()

    def close(self) -> None:
        self._closed = True
        self._wake()


def make_poller():
    return EpollPoller() if hasattr(select, "epoll") else SelectorPoller()
