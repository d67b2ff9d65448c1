"""The dispatcher: middleware, static mounts, router and error handlers, turning a
``Requests`` into a finished ``Response``. It knows nothing of sockets, which is
what lets the in-process test client run the very same code as the server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from types import CoroutineType

from .accesslog import logger
from .errors import HTTPError, ProtocolError
from .headers import Headers
from .metrics import REFUSED, UNPARSED
from .multipart import FormLimits
from .request import Requests
from .response import Response, set_cookie_line
from .url import Redirect, Router

_loops = threading.local()


def run_coroutine(coroutine):
    """Run an ``async def`` view to completion on this worker thread's own event loop."""
    loop = getattr(_loops, "loop", None)
    if loop is None:
        loop = _loops.loop = asyncio.new_event_loop()
    return loop.run_until_complete(coroutine)


# What ``OPTIONS *`` answers: the methods this server dispatches to views.
SERVER_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


class MethodNotAllowed(HTTPError):
    status = 405

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = sorted(allowed)
        super().__init__(405, "method not allowed")


class App:
    def __init__(self, router: Router, middlewares: list, mounts: list,
                 error_handlers: dict[int, Callable], app_state=None,
                 form_limits: FormLimits | None = None) -> None:
        self.router = router
        self.middlewares = middlewares  # the WebServer's own list: appends show up here
        self.mounts = mounts
        self.error_handlers = error_handlers
        self.header_checks: list[Callable] = []  # run on the head, before the body is read
        self.app_state = app_state  # handed to every request as ``request.app_state``
        self.form_limits = form_limits  # the bounds of a multipart form (MAX_FORM_PARTS)
        self.metrics = None  # a metrics.Metrics, once server.add_metrics() is called

    # handle(request, response) -> response: run the request through middleware and view;
    # never raises. Without metrics it is _answer itself: one call less per request.
    @property
    def metrics(self):
        return self._metrics

    @metrics.setter
    def metrics(self, metrics) -> None:
        self._metrics = metrics
        self.handle = self._answer if metrics is None else self._measured

    def _measured(self, request: Requests, response: Response) -> Response:
        """``_answer``, timed and counted."""
        metrics = self._metrics
        begun = metrics.begin()
        status = 500
        try:
            response = self._answer(request, response)
            status = response.status
        finally:
            metrics.end(begun, request.method, request.route, status)
        return response

    def _answer(self, request: Requests, response: Response) -> Response:
        request.app_state = self.app_state
        request.form_limits = self.form_limits
        # request.route: None (Requests' default) until a route or mount matches.
        if request.target == "*":  # OPTIONS * asks about the server, not a resource
            response.headers["Allow"] = SERVER_METHODS
            response.send(b"", 200, None)
            return response
        try:
            response = self._dispatch(request, response)
            if response.cookies:
                for name, cookie in response.cookies.items():
                    set_cookie_line(name, cookie)  # raises ValueError on a bad cookie
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
            # A coroutine cannot be subclassed: comparing types is the whole test.
            if type(result) is CoroutineType:
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
                request.route = mount
                mount.serve(request, response)
                return response

        route, found = self.router.match(request.method, path)
        if route is None:
            if found:
                raise MethodNotAllowed(found)
            raise HTTPError(404)
        request.route = route
        # Without groups, a plain call: unpacking an empty dict costs a copy of it.
        result = route.view(request, response, **found) if found else route.view(request, response)
        if type(result) is CoroutineType:
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
                if type(result) is CoroutineType:
                    run_coroutine(result)
                if response.sent:
                    # send()'s default status must not turn an error into a success.
                    if response.status == 200:
                        response.status = status
                    return
            except Exception:
                logger.error("error in the %d handler", status, exc_info=True)
        response.send_error(status, error)

    def check_head(self, request: Requests) -> Response | None:
        """Run the header checks on a request whose body is not read yet.

        A check refuses by raising ``HTTPError`` (401, 413...): the answer, from the
        error handlers, is returned and the body is never read. None: go on.
        """
        request.app_state = self.app_state
        started = time.perf_counter()
        try:
            for check in self.header_checks:
                result = check(request)
                if type(result) is CoroutineType:
                    run_coroutine(result)
            return None
        except HTTPError as refusal:
            status, error = refusal.status, refusal
        except Exception as failure:
            logger.error("error in a header check for %s %s", request.method, request.path,
                         exc_info=True)
            status, error = 500, failure
        response = Response()
        self.render_error(request, response, status, error)
        if response.status < 400:
            response.status = status
        if response.file is not None or response.stream_body is not None:
            response.send_error(status, error)
        if self.metrics is not None:
            self.metrics.add(request.method, REFUSED, response.status,
                             time.perf_counter() - started)
        return response

    def protocol_error_response(self, error: ProtocolError, method: str | None,
                                remote: str | None) -> Response:
        """The answer to a request that could not be read, from the error handlers too.

        The handler sees a request with the method (when it could be read) and no
        path, headers or body. Whatever it does, the status stays an error and the
        connection closes: the byte stream can no longer be trusted.
        """
        started = time.perf_counter()
        request = Requests(method or "", "", "HTTP/1.1", Headers(), b"", remote)
        response = Response()
        self.render_error(request, response, error.status, error)
        if response.status < 400:
            response.status = error.status
        if response.file is not None or response.stream_body is not None:
            response.send_error(error.status, error)  # written at once, or not at all
        response.cookies.clear()
        if self.metrics is not None:
            self.metrics.add(request.method, UNPARSED, response.status,
                             time.perf_counter() - started)
        return response
