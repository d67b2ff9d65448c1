"""Several worker processes on one listening socket: start them, replace any that dies,
and stop them all on SIGTERM or SIGINT (gunicorn's arbiter, in small).

The parent binds the socket and keeps it open while it supervises: the workers
accept from that one socket, so connections waiting in its queue when a worker
dies are served by the others instead of being reset.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable

from .accesslog import logger

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STARTUP_FAILED = 3  # a worker's exit status when it could not start: not replaced


class StartupFailed(SystemExit):
    """A worker process could not start (a startup hook failed); the message says why."""
RESPAWN_PAUSE = 0.1  # seconds before replacing a worker, so a crash loop cannot spin


class Supervisor:
    """Runs ``workers`` children, each calling ``serve_child(sock)``, until ``stop()``."""

    def __init__(self, sock: socket.socket, workers: int, stop_timeout: float,
                 serve_child: Callable[[socket.socket], None]) -> None:
        self.sock = sock
        self.workers = workers
        self.stop_timeout = stop_timeout  # a worker's drain delay and grace period
        self.serve_child = serve_child
        self.stopping = False
        self.failed = False  # a worker could not start: everything stops
        self.signals: list[int] = []  # received, not yet forwarded to the workers
        self.children: dict[int, int] = {}  # pid -> slot
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def stop(self, number: int = signal.SIGTERM, _frame=None) -> None:
        """Stop every worker as signal ``number`` says (safe from a signal handler).

        Each signal is forwarded: a second SIGTERM, or a SIGINT, during the
        workers' drain delay makes them skip the rest of it.
        """
        self.signals.append(number)
        self.stopping = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def run(self) -> None:
        for slot in range(self.workers):
            self._spawn(slot)
        while self.children:
            ready, _, _ = select.select([self._wake_r], [], [], 0.5)
            if ready:
                os.read(self._wake_r, 1024)
            if self.stopping:
                break
            self._reap(respawn=True)
        # The socket stops accepting once the workers close their copies too, so
        # new clients are refused at once instead of waiting in its queue.
        self.sock.close()
        deadline = time.monotonic() + self.stop_timeout + 1.0
        while self.children and time.monotonic() < deadline:
            while self.signals:
                number = self.signals.pop(0)
                for pid in list(self.children):
                    _signal_quietly(pid, number)
            self._reap()
            time.sleep(0.02)
        for pid in list(self.children):
            _signal_quietly(pid, signal.SIGKILL)
        while self.children:
            self._reap()
            time.sleep(0.01)

    def _spawn(self, slot: int) -> None:
        # The stop signals wait (blocked) until the child has its own handlers: one that
        # came sooner would run the parent's handler in the child, or kill it before its
        # shutdown hooks. serve() installs the handlers, then unblocks them.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        else:  # the child: serve, then leave without running the parent's cleanup
            code = 0
            try:
                os.close(self._wake_r)
                os.close(self._wake_w)
                self.serve_child(self.sock)
            except StartupFailed as failure:
                print(failure, file=sys.stderr)
                code = STARTUP_FAILED
            except BaseException:
                logger.error("worker process failed", exc_info=True)
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.children[pid] = slot

    def _reap(self, respawn: bool = False) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            slot = self.children.pop(pid, None)
            if os.waitstatus_to_exitcode(status) == STARTUP_FAILED:
                self.failed = self.stopping = True  # replacing it would fail the same way
                self.signals.append(signal.SIGTERM)
            elif slot is not None and respawn and not self.stopping:
                logger.error("worker process %d exited (status %d); starting another", pid, status)
                time.sleep(RESPAWN_PAUSE)
                self._spawn(slot)


def _signal_quietly(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass
