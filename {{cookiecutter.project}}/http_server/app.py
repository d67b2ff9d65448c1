"""The dispatcher: middleware, static mounts, router and error handlers, turning a
``Requests`` into a finished ``Response``. It knows nothing of sockets, which is
what lets the in-process test client run the very same code as the server.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable

from .accesslog import logger
from .errors import HTTPError
from .request import Requests
from .response import _REASONS, Response, _set_cookie_line
from .url import Redirect, Router

_loops = threading.local()
_is_coroutine = inspect.iscoroutine


def run_coroutine(coroutine):
    """Run an ``async def`` view to completion on this worker thread's own event loop."""
    loop = getattr(_loops, "loop", None)
    if loop is None:
        loop = _loops.loop = asyncio.new_event_loop()
    return loop.run_until_complete(coroutine)


class MethodNotAllowed(HTTPError):
    status = 405

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = sorted(allowed)
        super().__init__(405, "method not allowed")


class App:
    def __init__(self, router: Router, middlewares: list, mounts: list,
                 error_handlers: dict[int, Callable]) -> None:
        self.router = router
        self.middlewares = middlewares  # the WebServer's own list: appends show up here
        self.mounts = mounts
        self.error_handlers = error_handlers

    def handle(self, request: Requests, response: Response) -> Response:
        """Run the request through middleware and view; never raises."""
        try:
            response = self._dispatch(request, response)
            if response.cookies:
                for name, cookie in response.cookies.items():
                    _set_cookie_line(name, cookie)  # raises ValueError on a bad cookie
        except HTTPError as error:
            self.render_error(request, response, error.status, error)
        except Exception as error:
            logger.error("error in %s %s", request.method, request.path, exc_info=True)
            response.cookies.clear()
            self.render_error(request, response, 500, error)
        return response

    def _dispatch(self, request: Requests, response: Response) -> Response:
        for middleware in self.middlewares:
            result = middleware(request, response)
            if _is_coroutine(result):
                result = run_coroutine(result)
            if isinstance(result, Redirect):
                result.apply(response)
                return response
            if result is not None:
                request, response = result
            if response.sent:
                return response

        path = request.path
        for mount in self.mounts:
            if mount.matches(path):
                mount.serve(request, response)
                return response

        route, found = self.router.match(request.method, path)
        if route is None:
            if found:
                raise MethodNotAllowed(found)
            raise HTTPError(404)
        result = route.view(request, response, **found)
        if _is_coroutine(result):
            result = run_coroutine(result)
        if result is None:
            if not response.sent:
                raise RuntimeError(f"view {route.view.__name__} sent no response")
        elif isinstance(result, Redirect):
            result.apply(response)
        elif isinstance(result, (str, bytes)):
            response.send(result)
        elif isinstance(result, (dict, list)):
            response.sendJson(result)
        elif isinstance(result, Response):
            response = result
        else:
            raise TypeError(f"view {route.view.__name__} returned {type(result).__name__}")
        return response

    def render_error(self, request: Requests, response: Response, status: int,
                     error: BaseException | None) -> None:
        if isinstance(error, MethodNotAllowed):
            response.headers["Allow"] = ", ".join(error.allowed)
        handler = self.error_handlers.get(status)
        if handler is not None:
            try:
                response.sent = False
                result = handler(request, response, error)
                if _is_coroutine(result):
                    run_coroutine(result)
                if response.sent:
                    # send()'s default status must not turn an error into a success.
                    if response.status == 200:
                        response.status = status
                    return
            except Exception:
                logger.error("error in the %d handler", status, exc_info=True)
        response.send(default_error_body(status, error), status, "text/plain; charset=utf-8")


def default_error_body(status: int, error: BaseException | None) -> str:
    """A short, generic text: the message of an HTTPError, never a traceback."""
    reason = _REASONS.get(status, "Error")
    if isinstance(error, HTTPError) and error.message and status < 500:
        return f"{status} {reason}: {error.message}\n"
    return f"{status} {reason}\n"
