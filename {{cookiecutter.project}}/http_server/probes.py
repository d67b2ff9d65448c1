"""Probes for an orchestrator: is the process alive, is it ready for traffic.

``/livez`` answers 200 while the process can serve: it checks no dependency,
or a database blip would become a restart storm. ``/readyz`` answers 200 once
the server has started, until SIGTERM (then 503, while the orchestrator stops
routing here), and only while every readiness check the service added passes.
"""

from __future__ import annotations

from collections.abc import Callable

from .accesslog import logger
from .connection import ServerState


class Probes:
    """The two probe views, and the service's own readiness checks."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.checks: list[tuple[str, Callable[[], object]]] = []

    def add_check(self, check: Callable[[], object], name: str | None = None) -> None:
        """``check()`` returns a true value when ready; false or an exception: not ready.

        It runs on every readiness probe, on a worker thread: keep it fast and give
        anything it waits for (a database ping) a timeout shorter than the probe's.
        """
        self.checks.append((name or getattr(check, "__name__", "check"), check))

    def livez(self, request, response) -> None:
        response.sendJson({"status": "alive"})

    def readyz(self, request, response) -> None:
        state = self.state
        if not state.ready:
            response.sendJson({"status": "starting"}, 503)
        elif state.draining:
            response.sendJson({"status": "draining"}, 503)
        else:
            failed = [name for name, check in self.checks if not _passes(name, check)]
            if failed:
                response.sendJson({"status": "not ready", "failed": failed}, 503)
            else:
                response.sendJson({"status": "ready"})


def _passes(name: str, check: Callable[[], object]) -> bool:
    try:
        return bool(check())
    except Exception as error:
        logger.warning("readiness check %s failed: %s", name, error)
        return False
