"""The example views: what each URL answers. urls.py maps paths to them."""

from __future__ import annotations

import time
from http import HTTPStatus

from http_server import HTTPError, Requests, Response
from http_server.url import Redirect, reverse


def index(request: Requests, response: Response) -> None:
    """GET /: hello world, as in the framework's first example."""
    response.send("hello world !", 200, "text/html")


def home(request: Requests, response: Response) -> Redirect:
    """GET /home: an old address kept working by redirecting it (302) to the index."""
    return Redirect(reverse("index"))


def hello(request: Requests, response: Response, username: str) -> None:
    """GET /api/hello/<username>: a JSON API; the path parameter arrives as ``username``."""
    response.sendJson({"message": f"hello, {username}!"})


def greet(request: Requests, response: Response) -> None:
    """POST /api/greetings: read ``name`` from a JSON object or a form body."""
    if request.get_header("Content-Type", "").startswith("application/json"):
        data = request.json()  # a body that is not JSON gets a 400 from the framework
    else:
        data = request.form
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name.strip():
        response.sendJson({"error": 'send a non-empty "name", as JSON or as a form'}, 400)
        return
    response.sendJson({"message": f"hello, {name.strip()}!"}, 201)


def info(request: Requests, response: Response) -> None:
    """GET /api/info: the service's name and how long it has been serving.

    ``request.app_state`` is the server's ``state``: what main.py's startup hook put
    there (a database pool would go there too, instead of a module global).
    """
    state = request.app_state
    uptime = round(time.monotonic() - state.started, 3)
    response.sendJson({"name": state.name, "uptime_seconds": uptime})


def healthz(request: Requests, response: Response) -> None:
    """GET /healthz: 200 while the process serves requests (Docker's health check)."""
    response.sendJson({"status": "ok"})


def error(request: Requests, response: Response, error: Exception) -> None:
    """Every error answer as JSON: a 404 or 405, a malformed request's 400, a 500.

    main.py registers it for each error status. The framework calls it for
    requests it refused before any view ran, too (a 400, 408, 413, 431...); then
    the connection closes whatever this sets. A 5xx says nothing of what failed.
    """
    status = getattr(error, "status", 500)
    message = HTTPStatus(status).phrase
    if isinstance(error, HTTPError) and error.message and status < 500:
        message = error.message
    response.sendJson({"error": message, "status": status}, status)
