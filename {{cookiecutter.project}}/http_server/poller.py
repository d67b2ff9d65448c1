"""Readiness of many sockets, shared by the worker threads, one ready socket per thread.

Each socket is armed for one event: once it is reported ready it is not
reported again until the thread that took it calls ``rearm``. So any number
of threads may wait at once, and no two ever get the same connection.

On Linux this is epoll with ``EPOLLONESHOT`` (threads wait in the kernel
itself, no hand-off between threads). Elsewhere a selector emulates it: one
thread at a time waits, and re-arming wakes it through a pipe.
"""

from __future__ import annotations

import os
import select
import selectors
import threading


class EpollPoller:
    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._read = select.EPOLLIN | select.EPOLLONESHOT
        self._write = select.EPOLLOUT | select.EPOLLONESHOT

    def register(self, fd: int) -> None:
        self._epoll.register(fd, self._read)

    def rearm(self, fd: int, writable: bool = False) -> None:
        """Arm ``fd`` for its next event: readable, or writable when output is queued."""
        self._epoll.modify(fd, self._write if writable else self._read)

    def unregister(self, fd: int) -> None:
        try:
            self._epoll.unregister(fd)
        except (OSError, ValueError):
            pass  # already gone: closing twice must be harmless

    def wait(self, timeout: float, most: int) -> list[int]:
        """The descriptors of up to ``most`` ready sockets; empty after ``timeout`` seconds."""
        try:
            events = self._epoll.poll(timeout, most)
        except (OSError, ValueError):  # closed while we waited: the server is stopping
            return []
        return [fd for fd, _ in events]

    def close(self) -> None:
        self._epoll.close()


class SelectorPoller:
    """The same contract on platforms without epoll (macOS, BSD): correct, not fast."""

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

    def wait(self, timeout: float, most: int) -> list[int]:
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
                ready.append(key.fd)
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
