"""Fixtures: the service built from known settings, in-process and on a real socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import main
from http_server import WebServer
from http_server.testing import LiveServer, TestClient

# The tests build the server from these settings instead of the environment and
# .env, so that local settings cannot change what the tests see. No access log:
# the live server's lines would land between pytest's dots.
TEST_ENVIRONMENT = {"LOG_LEVEL": "warning", "ACCESS_LOG": "false"}


@pytest.fixture
def server() -> WebServer:
    return main.create_server(TEST_ENVIRONMENT)


@pytest.fixture
def client(server: WebServer) -> Iterator[TestClient]:
    """Runs requests through middleware, router and views without a socket, between the
    server's startup and shutdown hooks."""
    with TestClient(server) as client:
        yield client


@pytest.fixture(scope="module")
def live_url() -> Iterator[str]:
    """Base URL of the service running on a free port in a background thread."""
    live = LiveServer(main.create_server(TEST_ENVIRONMENT))
    with live:
        yield live.url
