"""One client connection: read, parse, dispatch, write, and decide whether to keep it.

``serve()`` runs on a worker thread when the socket is ready. It answers
every complete request in the buffer, in order (pipelining), and returns as
soon as it would have to wait for the client, so that a slow or idle client
never holds a thread: the connection goes back to the poller instead. That
holds for writing too (output.py): what the socket does not take at once is
queued, and the connection waits in the poller until it is writable; no
further request is read meanwhile (backpressure).

A connection knows nothing of the server: it is handed a ``Context`` (its
limits, timeouts, the app's two entry points, the access log and the shared
``ServerState``) and a callback to call when it closes.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

from .body import SpooledBody
from .errors import ProtocolError, RequestTimeout
from .headers import Headers
from .output import SEND_TIMEOUT, ConnectionClosed, Output
from .parser import NEED_DATA, RequestHead, RequestParser
from .request import Requests
from .response import Response, has_body

READ_SIZE = 65536
_read = os.read
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# After refusing a malformed request, how long (and how much) the connection reads and
# discards what the client still sends, waiting in the poller, before it closes.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1 << 20
# When stopping, how long a connection accepted but still silent may wait for its request.
NEW_CLIENT_GRACE = 1.0


class ServerState:
    """Where the server of this process is in its life, shared with every connection.

    ``ready``: started, taking traffic. ``draining``: SIGTERM came: every answer
    says ``Connection: close``. ``stopping``: the listening socket closes, in-flight
    requests finish, the process ends.
    """

    __slots__ = ("ready", "draining", "stopping")

    def __init__(self) -> None:
        self.ready = False
        self.draining = False
        self.stopping = False


class Context:
    """Everything a connection needs from the server, passed in once per process.

    ``handle(request, response) -> response`` runs middleware and view;
    ``answer_error(error, method, remote) -> response`` renders a protocol error;
    ``check_head(request) -> response | None`` runs the app's checks on a head (the
    live list ``header_checks``, when it is not empty) and refuses a request before
    its body is read (None: go on).
    """

    __slots__ = ("parser_limits", "header_timeout", "keep_alive_timeout", "body_spool_size",
                 "min_upload_rate", "min_download_rate", "handle", "answer_error", "check_head",
                 "header_checks", "access_log", "state")

    def __init__(self, *, parser_limits: tuple[int, int, int, int], header_timeout: float,
                 keep_alive_timeout: float, handle: Callable, answer_error: Callable,
                 access_log, state: ServerState, body_spool_size: int = 1 << 20,
                 min_upload_rate: int = 0, min_download_rate: int = 0,
                 check_head: Callable | None = None,
                 header_checks: list | None = None) -> None:
        self.parser_limits = parser_limits  # RequestParser's four limits, in its order
        self.header_timeout = header_timeout
        self.keep_alive_timeout = keep_alive_timeout
        self.body_spool_size = body_spool_size
        self.min_upload_rate = min_upload_rate  # bytes/s; 0: no rule
        self.min_download_rate = min_download_rate  # bytes/s the client must read; 0: none
        self.handle = handle
        self.answer_error = answer_error
        self.check_head = check_head
        self.header_checks = header_checks if header_checks is not None else []
        self.access_log = access_log
        self.state = state


class Connection:
    __slots__ = (
        "sock", "fd", "remote", "context", "on_close", "parser", "head", "checked",
        "expect_pending", "deadline", "head_started", "body_started", "parked", "again",
        "peer_closed", "drained", "out",
        "closing", "linger", "lingering", "answered", "accepted_at", "spoke", "send_started",
        "sent_before",
    )

    def __init__(self, sock, remote: str, context: Context,
                 on_close: Callable[[Connection], None]) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.remote = remote
        self.context = context
        self.on_close = on_close  # called once, before the socket closes
        spool_size = context.body_spool_size
        self.parser = RequestParser(*context.parser_limits,
                                    body_sink=lambda: SpooledBody(spool_size))
        self.head: RequestHead | None = None
        self.checked: Requests | None = None  # the request whose head the checks passed
        self.expect_pending = False
        self.head_started: float | None = None
        self.body_started: float | None = None
        self.accepted_at = time.monotonic()
        self.spoke = False  # the client has sent something
        self.deadline = self.accepted_at + context.header_timeout
        self.parked = False  # waiting in the poller, not served by a thread (pool.py)
        self.again = False  # an event came while a thread served it (pool.py)
        self.peer_closed = False  # the client closed its side: read its input to the end
        self.drained = False  # the last serve's last read emptied the kernel's buffer
        self.out = Output(sock)
        self.closing = False  # close once the queued output is sent
        self.linger = False  # when closing, read the client out first (after an error)
        self.lingering = 0  # bytes still to discard while lingering; 0: not lingering
        self.answered = False  # an answer was completed during this serve()
        self.send_started: float | None = None  # when output began to wait for the client
        self.sent_before = 0  # what the socket had taken then

    @property
    def wants_write(self) -> bool:
        return bool(self.out.queue)

    # -- reading ----------------------------------------------------------

    def serve(self, read: bool = True) -> bool:
        """Answer what has arrived. True: park the connection in the poller; False: it is closed.

        ``read=False``: send what is queued and answer what is buffered, but read nothing
        (the pool sending a held answer, when the last read left nothing in the kernel).
        """
        parser = self.parser
        out = self.out
        queued = out.queue  # what waits to be sent (a deque: its truth is cheap to test)
        if read:
            self.drained = False  # until this serve's own last read says so
        try:
            if self.lingering:
                return self._discard_input()
            self.answered = False
            if queued:
                if not out.flush():
                    return self._park_for_write()
                self.answered = True
                self.send_started = None
                # Requests that arrived pipelined while earlier answers were queued (only
                # then can the buffer hold a request not yet answered).
                if not self.closing and parser.in_request and not self._answer_ready_requests():
                    return self._finish()
            if self.closing:
                return self._close_or_linger()
            while read and not queued:
                try:
                    data = _read(self.fd, READ_SIZE)  # recv() without flags: a cheaper call
                except BlockingIOError:
                    break
                if not data:
                    return self.close()
                self.spoke = True
                # A short read emptied the kernel's buffer: skip a futile recv, here and
                # when a held answer is sent (pool.py). Input that comes later is reported
                # by the poller; an end of input that came already would not be, hence
                # peer_closed.
                self.drained = len(data) < READ_SIZE and not self.peer_closed
                parser.feed(data)
                if not self._answer_ready_requests():
                    return self._finish()
                if self.drained:
                    break
        except (ConnectionClosed, OSError):
            return self.close()
        if queued:
            # Held, the answer goes out before the batch ends: no deadline to set yet.
            return True if out.hold else self._park_for_write()
        if self._set_deadline():
            # The head's time ran out while its bytes trickled in: no sweep needed.
            return self._refuse(RequestTimeout("request not received in time"))
        return True

    def _set_deadline(self) -> bool:
        """Set the deadline for what the connection waits for now; True if a request
        in progress is already past it."""
        context = self.context
        now = time.monotonic()
        parser = self.parser
        if not parser.in_request:
            if self.answered or not parser.empty_lines:
                self.head_started = None
                self.deadline = now + context.keep_alive_timeout
            # else only empty lines came: ignored, they make the connection no less idle.
            return False
        if parser.awaiting_body:
            # A body may pause for header_timeout at most, and must average
            # min_upload_rate once it has had header_timeout to get going (like
            # Apache's mod_reqtimeout MinRate): a byte a second cannot hold a slot.
            deadline = now + context.header_timeout
            if context.min_upload_rate:
                if self.body_started is None:
                    self.body_started = now
                earned = parser.body_received / context.min_upload_rate
                deadline = min(deadline, self.body_started + context.header_timeout + earned)
            self.deadline = deadline
        else:
            # A head's clock starts when its first bytes are seen and does not
            # move again, however slowly the rest trickles in.
            if self.head_started is None:
                self.head_started = now
            self.deadline = self.head_started + context.header_timeout
        return self.deadline <= now

    def _park_for_write(self) -> bool:
        """Wait for the client to read: SEND_TIMEOUT without progress at most, and once it
        has had SEND_TIMEOUT, at least ``min_download_rate`` bytes/s on average (what the
        kernel buffered before the first wait does not count), or the connection closes."""
        now = time.monotonic()
        out = self.out
        if self.send_started is None:
            self.send_started, self.sent_before = now, out.sent
        deadline = now + SEND_TIMEOUT
        rate = self.context.min_download_rate
        if rate:
            earned = (out.sent - self.sent_before) / rate
            deadline = min(deadline, self.send_started + SEND_TIMEOUT + earned)
        self.deadline = deadline
        return True

    def _answer_ready_requests(self) -> bool:
        """Dispatch the complete requests in the buffer. False: close the connection."""
        parser = self.parser
        unparsed = parser.buffer
        queued = self.out.queue
        while not queued:  # an answer still queued: read no further (backpressure)
            try:
                event = parser.next_event()
            except ProtocolError as error:
                self.send_error(error)
                self.linger = True
                return False
            if event is NEED_DATA:
                if self.expect_pending and parser.awaiting_body:
                    self.expect_pending = False
                    self.out.write(CONTINUE)
                return True
            if type(event) is RequestHead:
                if self.context.header_checks and not self._passes_checks(event):
                    return False
                if parser.skip_empty_body():  # the usual case: answered without a body event
                    head, body, trailers = event, b"", None
                else:
                    self.head = event
                    self.expect_pending = event.expect_continue
                    continue
            else:
                head, body, trailers = self.head, event.data, event.trailers
                self.head = None
                self.expect_pending = False
            self.head_started = self.body_started = None
            request = self.checked
            if request is not None:
                self.checked = None
                request.body = body
            else:
                request = Requests(head.method, head.target, head.version,
                                   Headers.from_wire(head.headers), body, self.remote)
            if trailers:
                request.trailers = trailers
            self.answered = True
            if not self.respond(request, head.keep_alive):
                return False
            if not unparsed:  # nothing more has arrived, the usual case: no need to ask
                return True
        return True

    def _passes_checks(self, head: RequestHead) -> bool:
        """Run the app's checks on the head, before the body is read (and before a
        ``100 Continue``). False: refused, answered, and the connection closes."""
        request = Requests(head.method, head.target, head.version,
                           Headers.from_wire(head.headers), b"", self.remote)
        refusal = self.context.check_head(request)
        if refusal is None:
            self.checked = request
            return True
        head_bytes = refusal.head_bytes(keep_alive=False, http10=head.version == "HTTP/1.0")
        self.out.write(head_bytes + refusal.body if has_body(head.method, refusal.status)
                       else head_bytes)
        if self.context.access_log.enabled:
            self.context.access_log.log(self.remote, request, refusal.status,
                                        len(refusal.body), 0.0)
        self.linger = True  # the body the client may still send is read out, not parsed
        return False

    # -- answering --------------------------------------------------------

    def respond(self, request: Requests, keep_alive: bool) -> bool:
        """Run the app for one request and write its answer. True if the connection stays."""
        context = self.context
        access_log = context.access_log
        logging = access_log.enabled
        started = time.perf_counter() if logging else 0.0
        response = context.handle(request, Response(self.sock))
        keep_alive = keep_alive and not context.state.draining and not response.wants_close
        http10 = request.version == "HTTP/1.0"
        stream = response.stream_body
        chunked = stream is not None and not http10 and request.method != "HEAD"
        if stream is not None and http10:
            keep_alive = False  # the end of the body is the end of the connection
        file = response.file
        out = self.out
        size = 0
        try:
            head = response.head_bytes(keep_alive, http10, chunked)  # positional: a faster call
            if not has_body(request.method, response.status):
                out.write(head)
            elif file is not None:
                out.write(head, more=True)
                size = file.count
                response.file = None  # the output queue owns it now
                out.write_file(file)
            elif stream is not None:
                out.write(head)
                size = out.write_stream(stream, chunked)
            else:
                body = response.body
                size = len(body)
                if size < 65536:
                    out.write(head + body)  # one send: no copy worth avoiding
                else:
                    out.write(head, more=True)
                    out.write(body)
        finally:
            request.close()  # a spooled body's temporary file goes now
            if response.file is not None:
                response.file.close()
            if stream is not None and hasattr(stream, "close"):
                stream.close()
            if logging:
                access_log.log(self.remote, request, response.status, size,
                               time.perf_counter() - started,
                               response.headers.get("x-request-id"))
        return keep_alive

    def send_error(self, error: ProtocolError) -> None:
        """Answer a request that could not be read, through the app's error handlers.

        Never waits: what the socket does not take at once is queued like any answer.
        The caller closes the connection.
        """
        method = self.parser.method
        response = self.context.answer_error(error, method, self.remote)
        head = response.head_bytes(keep_alive=False)
        try:
            self.out.write(head + response.body if has_body(method, response.status) else head)
        except ConnectionClosed:
            pass
        if self.context.access_log.enabled:
            self.context.access_log.log(self.remote, None, response.status,
                                        len(response.body), 0.0)

    # -- ending -----------------------------------------------------------

    def _finish(self) -> bool:
        """The last answer says close: close now, or once its queued bytes are sent."""
        self.closing = True
        if self.out.queue:
            return self._park_for_write()
        return self._close_or_linger()

    def _refuse(self, error: ProtocolError) -> bool:
        """Answer a request that cannot be served, then close (reading the client out first)."""
        self.send_error(error)
        self.linger = True
        return self._finish()

    def _close_or_linger(self) -> bool:
        """Close; after an error, first stop sending and read what the client still sends.

        Closing with unread input makes the kernel send a reset, which can destroy
        the answer before the client reads it (RFC 9112 section 9.6). The reading is
        done in the poller, a read per event: no thread waits for a client that sends
        nothing more.
        """
        if not self.linger:
            return self.close()
        self.linger = False
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return self.close()
        self.lingering = LINGER_BYTES
        self.deadline = time.monotonic() + LINGER_SECONDS
        return self._discard_input()

    def _discard_input(self) -> bool:
        """Read and drop what has arrived; close at the end of input or past the budget."""
        try:
            while True:
                data = self.sock.recv(READ_SIZE)
                if not data or len(data) >= self.lingering:
                    return self.close()
                self.lingering -= len(data)
        except BlockingIOError:
            return True  # park: more may come until the deadline
        except OSError:
            return self.close()

    def has_input(self) -> bool:
        """Whether the client sent something not yet read (or closed): it is not idle."""
        try:
            return self.sock.recv(1, socket.MSG_PEEK) is not None
        except BlockingIOError:
            return False
        except OSError:
            return True  # reading will tell, and close it

    def just_accepted(self, now: float) -> bool:
        """Accepted less than ``NEW_CLIENT_GRACE`` ago and silent so far: its request may be
        on its way (a connection accepted as the server stops)."""
        return not self.spoke and now - self.accepted_at < NEW_CLIENT_GRACE

    def expire(self) -> None:
        """The deadline passed while the connection waited in the poller."""
        if self.parser.in_request and not self.out.queue and not self.lingering:
            self.send_error(RequestTimeout("request not received in time"))
        self.close()

    def close(self) -> bool:
        self.on_close(self)
        self.out.discard()
        self.parser.close()  # an upload cut short: its temporary file goes too
        try:
            self.sock.close()
        except OSError:
            pass
        return False
