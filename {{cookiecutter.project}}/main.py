"""Entry point: build the server from settings, routes, middleware and media, and run it.

Start it with `python main.py` or `make run`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from http import HTTPStatus

import middleware
import settings
import urls
import views
from http_server import WebServer

# Every error a client sees is JSON, from views.error: 4xx and 5xx alike.
ERROR_STATUSES = [status.value for status in HTTPStatus if status >= 400]


def create_server(environ: Mapping[str, str] | None = None) -> WebServer:
    """Build the WebServer; ``environ`` replaces the environment and .env (for tests)."""
    options = settings.load(environ)
    # The media folder is mounted here, in plain sight, rather than by a keyword.
    media_url = options.pop("media_url")
    media_root = options.pop("media_root")
    server = WebServer(route=urls.urlpatterns, **options)
    server.Middlewares.extend(middleware.MIDDLEWARE)
    server.fileServer(media_url, media_root)
    for status in ERROR_STATUSES:
        server.errorhandler(status)(views.error)
    # GET /livez and /readyz for an orchestrator (README: Deploy), off the access log like
    # Docker's health check. A readiness check of your own, e.g. a database ping:
    #     @server.readiness_check
    #     def database() -> bool:
    #         return pool.ping(timeout=1.0)  # /readyz answers 503 while this is false
    server.add_probes()
    server.access_log.skip_paths.add("/healthz")
    # GET /metrics for Prometheus (README: Metrics), off the access log; remove it to turn off.
    server.add_metrics()
    server.on_startup(start_service)
    return server


def start_service(server: WebServer) -> None:
    """Runs once per worker process before it serves: fill ``server.state``, which every
    request carries as ``request.app_state`` (open a database pool here)."""
    server.state.name = "{{ cookiecutter.project }}"
    server.state.started = time.monotonic()


def main() -> None:
    """Serve until SIGTERM or SIGINT; a bad setting stops start-up with one line."""
    try:
        server = create_server()
    except settings.ConfigError as error:
        sys.exit(f"configuration error: {error}")
    server.run()


if __name__ == "__main__":
    main()
