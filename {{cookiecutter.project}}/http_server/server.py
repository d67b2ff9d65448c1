"""``WebServer``: settings, the listening socket, worker processes, signals, shutdown.

    server = WebServer(port=8080, route=urlpatterns)
    server.Middlewares.append(middleware)
    server.fileServer("/media/", "./media")
    server.run()

With ``workers=1`` the server runs in this process. With ``workers=N`` this
process binds the socket, forks N children that share it, forwards SIGTERM
and SIGINT to them and replaces any that dies unexpectedly.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable

from . import config
from .accesslog import AccessLog, configure_errors, logger
from .app import App
from .pool import WorkerPool
from .url import Path, Router

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SWEEP_INTERVAL = 0.25  # how often it closes connections past their deadline


class WebServer:
    def __init__(self, host: str | None = None, port: int | None = None,
                 route: Iterable[Path] = (), **settings) -> None:
        values = config.defaults()
        if host is not None:
            settings["host"] = host
        if port is not None:
            settings["port"] = port
        for name, value in settings.items():
            values[name] = config.check(name, value)
        for name, value in values.items():
            setattr(self, name, value)

        self.router = Router(route)
        self.Middlewares: list[Callable] = []  # the seed's name
        self.mounts: list = []
        self.error_handlers: dict[int, Callable] = {}
        self.app = App(self.router, self.Middlewares, self.mounts, self.error_handlers)
        # The access_log setting (a bool) becomes the logger it switches on or off.
        self.access_log = AccessLog(self.log_format, self.access_log)
        if self.media_root:
            self.fileServer(self.media_url, self.media_root)

        self.stopping = False
        self.pool: WorkerPool | None = None
        self.socket: socket.socket | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._children: dict[int, int] = {}  # pid -> slot

    # -- building the application ---------------------------------------

    def fileServer(self, url: str, folder: str, **options) -> None:  # noqa: N802 - seed name
        """Serve the files below ``folder`` under the URL prefix ``url``."""
        from .static import StaticFiles

        self.mounts.append(StaticFiles(url, folder, **options))

    def errorhandler(self, status: int) -> Callable:
        """Decorator: ``fn(request, response, error)`` renders the page for ``status``."""

        def register(handler: Callable) -> Callable:
            self.error_handlers[status] = handler
            return handler

        return register

    def route(self, pattern: str, name: str | None = None,
              methods: Iterable[str] | None = None) -> Callable:
        """Decorator form of ``Path``: ``@server.route(r"^/$", name="index")``."""

        def register(view: Callable) -> Callable:
            self.router.add(Path(pattern, view, name=name, methods=methods))
            return view

        return register

    def reverse(self, name: str, /, **kwargs) -> str:
        return self.router.reverse(name, **kwargs)

    # -- running ----------------------------------------------------------

    def bind(self) -> socket.socket:
        """Open the listening socket (``self.port`` becomes the real port if it was 0).

        With several worker processes, they all accept from this one socket,
        which this process keeps open: connections waiting in its queue when a
        worker dies are served by the others instead of being reset.
        """
        if self.socket is not None:
            return self.socket
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(1024)
        except OSError as error:
            sock.close()
            raise SystemExit(
                f"error: cannot listen on {self.host}:{self.port}: {error.strerror or error}"
            ) from None
        self.port = sock.getsockname()[1]
        self.socket = sock
        return sock

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT, then finish in-flight requests and return."""
        configure_errors(self.log_level, self.log_format)
        sock = self.bind()
        logger.info("listening on http://%s:%d (workers=%d, threads=%d)",
                    self.host, self.port, self.workers, self.threads)
        if self.workers > 1 and hasattr(os, "fork"):
            self._supervise(sock)
        else:
            self.serve(sock)

    def serve(self, sock: socket.socket) -> None:
        """Run the worker threads of this process on ``sock`` until stopped."""
        self._install_signal_handlers(self._request_stop)
        self.pool = WorkerPool(self, sock, self.threads)
        self.pool.start()
        try:
            next_sweep = 0.0
            while not self.stopping:
                wait = self.pool.housekeeping_interval()
                ready, _, _ = select.select([self._wake_r], [], [], wait)
                if ready:
                    os.read(self._wake_r, 1024)
                self.pool.relieve_blocked()
                now = time.monotonic()
                if now >= next_sweep:
                    self.pool.sweep()
                    next_sweep = now + SWEEP_INTERVAL
        finally:
            self.pool.stop_accepting()
            sock.close()
            self.pool.drain(self.graceful_timeout)
            self.pool.close()
            logger.info("stopped")

    def stop(self) -> None:
        """Stop as SIGTERM would: from another thread, or from a signal handler."""
        self._request_stop()

    def _request_stop(self, *_signal) -> None:
        self.stopping = True
        self.wake_housekeeping()

    def wake_housekeeping(self) -> None:
        """Interrupt the main thread's wait (safe from a signal handler)."""
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _install_signal_handlers(self, handler: Callable) -> None:
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                signal.signal(number, handler)

    # -- several processes -----------------------------------------------

    def _supervise(self, sock: socket.socket) -> None:
        self._install_signal_handlers(self._request_stop)
        for slot in range(self.workers):
            self._spawn(sock, slot)
        while self._children:
            ready, _, _ = select.select([self._wake_r], [], [], 0.5)
            if ready:
                os.read(self._wake_r, 1024)
            if self.stopping:
                break
            self._reap(respawn_with=sock)
        # Stopping: the socket stops accepting once the workers close their copies
        # too, so new clients are refused at once instead of waiting in its queue.
        sock.close()
        for pid in list(self._children):
            _signal_quietly(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.graceful_timeout + 1.0
        while self._children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.02)
        for pid in list(self._children):
            _signal_quietly(pid, signal.SIGKILL)
        while self._children:
            self._reap()
            time.sleep(0.01)

    def _spawn(self, sock: socket.socket, slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the child: serve, then leave without running the parent's cleanup
            code = 0
            try:
                self._children = {}
                self._wake_r, self._wake_w = os.pipe()  # its own, not the parent's
                os.set_blocking(self._wake_w, False)
                for number in STOP_SIGNALS:
                    signal.signal(number, signal.SIG_DFL)
                self.serve(sock)
            except BaseException:
                logger.error("worker process failed", exc_info=True)
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self._children[pid] = slot

    def _reap(self, respawn_with: socket.socket | None = None) -> None:
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self._children.clear()
                return
            if pid == 0:
                return
            slot = self._children.pop(pid, None)
            if slot is not None and respawn_with is not None and not self.stopping:
                logger.error("worker process %d exited (status %d); starting another", pid, status)
                time.sleep(0.1)
                self._spawn(respawn_with, slot)


def _signal_quietly(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass
