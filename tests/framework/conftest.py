"""Shared fixtures for the framework tests that talk to a real server over real sockets.

* ``live_server``: one ``WebServer`` per test module with the views of
  ``livehttp.ROUTES``, started with ``http_server.testing.LiveServer``.
* ``server_factory(**settings)``: a dedicated server with other settings
  (short timeouts, small limits), stopped when the test ends.
* ``raw(live, timeout=...)``: a ``support.rawhttp.RawConnection`` to a live server,
  closed when the test ends: send bytes as given, parse several pipelined
  answers, tell when the server closed the connection.
"""

from __future__ import annotations

import pytest
from http_server.testing import LiveServer
from livehttp import build_server
from support.rawhttp import READ_TIMEOUT, RawConnection


@pytest.fixture(scope="module")
def live_server():
    with LiveServer(build_server()) as live:
        yield live


@pytest.fixture
def server_factory():
    """``server_factory(**settings)`` -> a started ``LiveServer`` with those settings."""
    started = []

    def start(**settings) -> LiveServer:
        live = LiveServer(build_server(**settings))
        live.__enter__()
        started.append(live)
        return live

    yield start
    for live in reversed(started):
        live.__exit__(None, None, None)


@pytest.fixture
def raw():
    """``raw(live, timeout=READ_TIMEOUT)`` -> a ``RawConnection``, closed after the test."""
    connections = []

    def connect(live, timeout: float = READ_TIMEOUT) -> RawConnection:
        connection = RawConnection(live.port, timeout)
        connections.append(connection)
        return connection

    yield connect
    for connection in connections:
        connection.close()
