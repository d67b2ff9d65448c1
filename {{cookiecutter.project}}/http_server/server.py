"""``WebServer``: settings, the listening socket, worker processes, signals, shutdown.

    server = WebServer(port=8080, route=urlpatterns)
    server.Middlewares.append(middleware)
    server.fileServer("/media/", "./media")
    server.run()

With ``workers=1`` the server runs in this process. With ``workers=N`` this
process binds the socket and a ``Supervisor`` (supervisor.py) forks N
children that share it, stops them on SIGTERM and SIGINT and replaces any
that dies unexpectedly.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from types import SimpleNamespace

from . import config
from .accesslog import AccessLog, configure_errors, logger
from .app import App
from .connection import Context, ServerState
from .metrics import Metrics
from .multipart import FormLimits
from .output import send_gathered_streams
from .pool import WorkerPool
from .probes import Probes
from .request import Requests
from .supervisor import STOP_SIGNALS, StartupFailed, Supervisor
from .url import Path, Router

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
        # A place for what the views share: a database pool, a client, the settings.
        self.state = SimpleNamespace()
        self.startup_hooks: list[Callable] = []
        self.shutdown_hooks: list[Callable] = []
        self.app = App(self.router, self.Middlewares, self.mounts, self.error_handlers,
                       self.state, FormLimits(max_parts=self.max_form_parts))
        # The access_log setting (a bool) becomes the logger it switches on or off.
        self.access_log = AccessLog(self.log_format, self.access_log)
        if self.media_root:
            self.fileServer(self.media_url, self.media_root)

        self.run_state = ServerState()  # ready, draining, stopping
        self.probes = Probes(self.run_state)
        self.metrics: Metrics | None = None  # add_metrics() turns them on
        self._drain_ends: float | None = None  # when the drain after SIGTERM ends
        self.pool: WorkerPool | None = None
        self.socket: socket.socket | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    @property
    def stopping(self) -> bool:
        return self.run_state.stopping

    # -- the life cycle of the service --------------------------------------

    def on_startup(self, hook: Callable[[WebServer], object]) -> Callable:
        """Decorator: ``hook(server)`` runs once per worker process, before it serves,
        in the order registered (open a database pool into ``server.state`` here). A
        hook that raises stops the process with one line and exit status 1."""
        self.startup_hooks.append(hook)
        return hook

    def on_shutdown(self, hook: Callable[[WebServer], object]) -> Callable:
        """Decorator: ``hook(server)`` runs once per worker process after its last
        request, in the order registered; one that raises is logged, the others run."""
        self.shutdown_hooks.append(hook)
        return hook

    def on_headers(self, check: Callable[[Requests], object]) -> Callable:
        """Decorator: ``check(request)`` runs once a request's head has arrived and
        before its body is read (and before ``100 Continue``): raise ``HTTPError`` to
        refuse it, so that a bad token never makes the server read a large body."""
        self.app.header_checks.append(check)
        return check

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

    def add_probes(self, live: str = "/livez", ready: str = "/readyz") -> None:
        """Serve the liveness and readiness probes (probes.py), off the access log."""
        for path, view, name in ((live, self.probes.livez, "livez"),
                                 (ready, self.probes.readyz, "readyz")):
            self.router.add(Path("^" + re.escape(path) + r"\Z", view, name=name,
                                 methods=["GET"]))
            self.access_log.skip_paths.add(path)

    def add_metrics(self, path: str = "/metrics") -> Metrics:
        """Count every request and serve the counts at ``path`` in the Prometheus text
        format (metrics.py); the path itself is neither counted nor in the access log.
        Called before the server starts: its connections are handed the app's entry point
        once (App.handle), with metrics or without."""
        if self.metrics is not None:
            raise RuntimeError("add_metrics() was already called")
        if self.pool is not None:
            raise RuntimeError("add_metrics() must be called before the server starts")
        metrics = Metrics(connections=self._open_connections)
        route = Path("^" + re.escape(path) + r"\Z", metrics.view, name="metrics",
                     methods=["GET"])
        metrics.unobserved.add(route)
        self.router.add(route)
        self.access_log.skip_paths.add(path)
        self.metrics = self.app.metrics = metrics
        return metrics

    def _open_connections(self) -> int:
        pool = self.pool
        return len(pool.connections) if pool is not None else 0

    def readiness_check(self, check: Callable[[], object]) -> Callable[[], object]:
        """Decorator: ``/readyz`` answers 503 while ``check()`` is false or raises."""
        self.probes.add_check(check)
        return check

    # -- running ----------------------------------------------------------

    def bind(self) -> socket.socket:
        """Open the listening socket (``self.port`` becomes the real port if it was 0)."""
        if self.socket is not None:
            return self.socket
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.reuse_port:  # several processes or containers share the port
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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
        if self.forks_workers:
            supervisor = Supervisor(sock, self.workers, self.drain_delay + self.graceful_timeout,
                                    self._serve_child)
            self._install_signal_handlers(supervisor.stop)
            # The workers' metrics meet in a folder made before the fork (metrics.py).
            shared = self.metrics.share() if self.metrics is not None else None
            try:
                supervisor.run()
            finally:
                if shared is not None:
                    shared.remove()
            if supervisor.failed:
                raise SystemExit(1)  # a worker could not start; it said why
        else:
            self.serve(sock)

    @property
    def forks_workers(self) -> bool:
        """Whether ``run`` forks ``workers`` processes sharing the listening socket
        (where the platform can fork; else one process serves)."""
        return self.workers > 1 and hasattr(os, "fork")

    def connection_context(self) -> Context:
        """What each connection is handed: limits, timeouts, the app, the log, the state."""
        return Context(
            parser_limits=(self.max_request_line, self.max_header_size, self.max_header_count,
                           self.max_body_size),
            header_timeout=self.header_timeout,
            keep_alive_timeout=self.keep_alive_timeout,
            handle=self.app.handle,
            answer_error=self.app.protocol_error_response,
            access_log=self.access_log,
            state=self.run_state,
            body_spool_size=self.body_spool_size,
            min_upload_rate=self.min_upload_rate,
            min_download_rate=self.min_download_rate,
            check_head=self.app.check_head,
            header_checks=self.app.header_checks,
        )

    def serve(self, sock: socket.socket) -> None:
        """Run the worker threads of this process on ``sock`` until stopped."""
        self._install_signal_handlers(self._request_stop)
        self.pool = WorkerPool(self.connection_context(), sock, self.threads,
                               max_connections=self.max_connections,
                               wake_housekeeping=self.wake_housekeeping,
                               blocked_after=self.blocked_after,
                               shared_listener=self.forks_workers)
        self.run_startup_hooks()
        self.run_state.ready = True  # no request can be answered before the threads start
        self.pool.start()
        try:
            next_sweep = 0.0
            while not self.run_state.stopping:
                wait = self.pool.housekeeping_interval()
                ready, _, _ = select.select([self._wake_r], [], [], wait)
                if ready:
                    os.read(self._wake_r, 1024)
                self.pool.relieve_blocked()
                now = time.monotonic()
                send_gathered_streams(now)
                if now >= next_sweep:
                    self.pool.sweep()
                    next_sweep = now + SWEEP_INTERVAL
                if self.metrics is not None:
                    self.metrics.publish_if_due(now)
                if self._drain_ends is not None and now >= self._drain_ends:
                    self.run_state.stopping = True
        finally:
            self.pool.stop_accepting()
            sock.close()
            self.pool.drain(self.graceful_timeout)
            self.pool.close()
            self.run_shutdown_hooks()
            logger.info("stopped")

    def run_startup_hooks(self) -> None:
        """The ``on_startup`` hooks, in order (``serve`` calls it; so does the test client
        used as a context manager). ``StartupFailed`` (one line) if one raises."""
        for hook in self.startup_hooks:
            try:
                hook(self)
            except Exception as error:
                raise StartupFailed(
                    f"error: startup hook {_name(hook)} failed: {error or type(error).__name__}"
                ) from None

    def run_shutdown_hooks(self) -> None:
        """The ``on_shutdown`` hooks, in order; one that raises is logged, the rest run."""
        for hook in self.shutdown_hooks:
            try:
                hook(self)
            except Exception:
                logger.error("shutdown hook %s failed", _name(hook), exc_info=True)

    def _serve_child(self, sock: socket.socket) -> None:
        """A worker process: its own wake-up pipe (not its siblings'), then serve."""
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        if self.metrics is not None:
            self.metrics.join_workers()
        self.serve(sock)

    def stop(self) -> None:
        """Stop as SIGTERM would: from another thread, or from a signal handler."""
        self._request_stop()

    def _request_stop(self, number: int | None = None, _frame=None) -> None:
        """The shutdown sequence: drain for ``drain_delay`` (still serving, every answer
        with ``Connection: close``, ``/readyz`` 503), then stop. A second request to stop,
        or SIGINT, skips the rest of the drain."""
        state = self.run_state
        already_draining = state.draining
        state.draining = True
        if already_draining or number == signal.SIGINT or self.drain_delay <= 0:
            state.stopping = True
        else:
            self._drain_ends = time.monotonic() + self.drain_delay
            logger.info("draining for %g s before stopping", self.drain_delay)
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
            # A worker process starts with them blocked (supervisor.py): deliver now.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _name(hook: Callable) -> str:
    return getattr(hook, "__qualname__", repr(hook))
