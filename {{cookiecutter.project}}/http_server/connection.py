"""One client connection: read, parse, dispatch, write, and decide whether to keep it.

``serve()`` runs on a worker thread when the socket is ready. It answers
every complete request in the buffer, in order (pipelining), and returns as
soon as it would have to wait for the client, so that a slow or idle client
never holds a thread: the connection goes back to the poller instead. That
holds for writing too: what the socket does not take at once is queued (bytes
and file slices), and the connection waits in the poller until it is writable;
no further request is read meanwhile (backpressure). Only streamed bodies are
written on the worker's own time, since their producer runs on that thread.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from collections import deque

from .errors import ProtocolError, RequestTimeout
from .parser import NEED_DATA, RequestHead, RequestParser
from .request import Headers, Requests
from .response import FileBody, Response, has_body

READ_SIZE = 65536
SEND_TIMEOUT = 30.0  # a client that reads nothing for this long loses its connection
# After refusing a malformed request, how long (and how much) the connection reads and
# discards what the client still sends, waiting in the poller, before it closes.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1 << 20
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
SENDFILE_BLOCK = 1 << 24
MSG_MORE = getattr(socket, "MSG_MORE", 0)

# sendfile is refused for this file or socket: fall back to copying through Python.
_NO_SENDFILE = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOTSOCK}


def wait_for(sock, event: int, timeout: float) -> bool:
    """Whether ``sock`` became ready for ``event`` within ``timeout`` seconds.

    poll, not select: select cannot watch a descriptor numbered 1024 or more,
    and a busy server has thousands.
    """
    poller = select.poll()
    poller.register(sock, event)
    return bool(poller.poll(timeout * 1000))


class ConnectionClosed(Exception):
    """The client went away, or stopped reading for too long, while we were writing."""


class Connection:
    __slots__ = (
        "sock", "fd", "remote", "server", "parser", "head", "expect_pending",
        "deadline", "head_started", "parked", "out", "closing", "linger", "lingering",
        "answered",
    )

    def __init__(self, sock, remote: str, server) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.remote = remote
        self.server = server
        self.parser = RequestParser(
            server.max_request_line, server.max_header_size, server.max_header_count,
            server.max_body_size,
        )
        self.head: RequestHead | None = None
        self.expect_pending = False
        self.head_started: float | None = None
        self.deadline = time.monotonic() + server.header_timeout
        self.parked = False
        self.out: deque = deque()  # bytes, memoryviews and FileBody slices not yet sent
        self.closing = False  # close once the queued output is sent
        self.linger = False  # when closing, read the client out first (after an error)
        self.lingering = 0  # bytes still to discard while lingering; 0: not lingering
        self.answered = False  # an answer was completed during this serve()

    @property
    def wants_write(self) -> bool:
        return bool(self.out)

    # -- reading ----------------------------------------------------------

    def serve(self) -> bool:
        """Answer what has arrived. True: park the connection in the poller; False: it is closed."""
        sock = self.sock
        parser = self.parser
        try:
            if self.lingering:
                return self._discard_input()
            self.answered = False
            if self.out:
                if not self.flush():
                    return self._park_for_write()
                self.answered = True
            if self.closing:
                return self._close_or_linger()
            # Requests that arrived pipelined while earlier answers were queued.
            if parser.in_request and not self._answer_ready_requests():
                return self._finish()
            while not self.out:
                try:
                    data = sock.recv(READ_SIZE)
                except BlockingIOError:
                    break
                if not data:
                    return self.close()
                parser.feed(data)
                if not self._answer_ready_requests():
                    return self._finish()
                if len(data) < READ_SIZE:
                    break  # the kernel buffer is most likely empty: skip a futile recv
        except (ConnectionClosed, OSError):
            return self.close()
        if self.out:
            return self._park_for_write()
        self._set_deadline()
        if parser.in_request and self.deadline <= time.monotonic():
            # The head's time ran out while its bytes trickled in: no sweep needed.
            return self._refuse(RequestTimeout("request not received in time"))
        return True

    def _finish(self) -> bool:
        """The last answer says close: close now, or once its queued bytes are sent."""
        self.closing = True
        if self.out:
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

    def _park_for_write(self) -> bool:
        self.deadline = time.monotonic() + SEND_TIMEOUT
        return True

    def _set_deadline(self) -> None:
        server = self.server
        now = time.monotonic()
        if self.parser.awaiting_body:
            self.deadline = now + server.header_timeout  # body: time without progress
        elif self.parser.in_request:
            # A head's clock starts when its first bytes are seen and does not
            # move again, however slowly the rest trickles in.
            if self.head_started is None:
                self.head_started = now
            self.deadline = self.head_started + server.header_timeout
        elif self.answered or not self.parser.empty_lines:
            self.head_started = None
            self.deadline = now + server.keep_alive_timeout
        # else only empty lines came: ignored, they make the connection no less idle.

    def _answer_ready_requests(self) -> bool:
        """Dispatch the complete requests in the buffer. False: close the connection."""
        parser = self.parser
        while not self.out:  # an answer still queued: read no further (backpressure)
            try:
                event = parser.next_event()
            except ProtocolError as error:
                self.send_error(error)
                self.linger = True
                return False
            if event is NEED_DATA:
                if self.expect_pending and parser.awaiting_body:
                    self.expect_pending = False
                    self.write(CONTINUE)
                return True
            if type(event) is RequestHead:
                self.head = event
                self.expect_pending = event.expect_continue
                continue
            head = self.head
            self.head = None
            self.head_started = None
            self.expect_pending = False
            request = Requests(head.method, head.target, head.version,
                               Headers.from_wire(head.headers), event.data, self.remote)
            request.trailers = event.trailers
            self.answered = True
            if not self.respond(request, head.keep_alive):
                return False
        return True

    # -- answering --------------------------------------------------------

    def respond(self, request: Requests, keep_alive: bool) -> bool:
        """Run the app for one request and write its answer. True if the connection stays."""
        server = self.server
        logging = server.access_log.enabled
        started = time.perf_counter() if logging else 0.0
        response = server.app.handle(request, Response(self.sock))
        keep_alive = keep_alive and not server.stopping and not response.wants_close
        http10 = request.version == "HTTP/1.0"
        stream = response.stream_body
        chunked = stream is not None and not http10 and request.method != "HEAD"
        if stream is not None and http10:
            keep_alive = False  # the end of the body is the end of the connection
        file = response.file
        size = 0
        try:
            head = response.head_bytes(keep_alive=keep_alive, http10=http10, chunked=chunked)
            if not has_body(request.method, response.status):
                self.write(head)
            elif file is not None:
                self.write(head, more=True)
                size = file.count
                response.file = None  # the output queue owns it now
                self.write_file(file)
            elif stream is not None:
                self.write(head)
                size = self.write_stream(stream, chunked)
            else:
                body = response.body
                size = len(body)
                if size < 65536:
                    self.write(head + body)  # one send: no copy worth avoiding
                else:
                    self.write(head)
                    self.write(body)
        finally:
            if response.file is not None:
                response.file.close()
            if stream is not None and hasattr(stream, "close"):
                stream.close()
            if logging:
                server.access_log.log(self.remote, request, response.status, size,
                                      time.perf_counter() - started,
                                      response.headers.get("x-request-id"))
        return keep_alive

    # -- writing ----------------------------------------------------------

    def write(self, data: bytes, more: bool = False) -> None:
        """Send ``data`` now, or queue what the socket does not take (never blocks).

        ``more``: the body follows at once (a file), so the kernel may hold the
        head back to share a packet with it instead of sending it alone.
        """
        if self.out:
            self.out.append(data)
            return
        try:
            sent = self.sock.send(data, MSG_MORE if more else 0)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            raise ConnectionClosed from error
        if sent < len(data):
            self.out.append(memoryview(data)[sent:])

    def write_file(self, body: FileBody) -> None:
        self.out.append(body)
        if len(self.out) == 1:
            self.flush()

    def flush(self) -> bool:
        """Send queued output until done (True) or until the socket is full (False)."""
        out = self.out
        sock = self.sock
        while out:
            item = out[0]
            if type(item) is FileBody:
                if not self._send_file_slice(item):
                    return False
                item.close()
            else:
                try:
                    sent = sock.send(item)
                except BlockingIOError:
                    return False
                except OSError as error:
                    raise ConnectionClosed from error
                if sent < len(item):
                    out[0] = memoryview(item)[sent:]
                    return False
            out.popleft()
        return True

    def _send_file_slice(self, body: FileBody) -> bool:
        """Zero copy: the kernel moves the file to the socket without it entering Python."""
        fd_in = body.file.fileno()
        while body.count > 0:
            try:
                sent = os.sendfile(self.fd, fd_in, body.offset, min(body.count, SENDFILE_BLOCK))
            except BlockingIOError:
                return False
            except OSError as error:
                if error.errno not in _NO_SENDFILE:
                    raise ConnectionClosed from error
                self._copy_file(body)
                return True
            if sent == 0:
                # The file shrank under us: the promised Content-Length cannot be
                # kept, and only closing tells the client the body is cut short.
                raise ConnectionClosed("file truncated while being sent")
            body.offset += sent
            body.count -= sent
        return True

    def _copy_file(self, body: FileBody) -> None:
        """Where sendfile is refused: copy in blocks, waiting for the client as needed."""
        body.file.seek(body.offset)
        while body.count > 0:
            chunk = body.file.read(min(body.count, 262144))
            if not chunk:
                break
            self._send_blocking(chunk)
            body.count -= len(chunk)

    def write_stream(self, stream, chunked: bool) -> int:
        """A streamed body is produced on this thread, so it is written on it too."""
        size = 0
        for item in stream:
            if isinstance(item, str):
                item = item.encode("utf-8")
            if not item:
                continue
            size += len(item)
            self._send_blocking(b"%x\r\n%s\r\n" % (len(item), item) if chunked else item)
        if chunked:
            self._send_blocking(b"0\r\n\r\n")
        return size

    def _send_blocking(self, data: bytes, timeout: float = SEND_TIMEOUT) -> None:
        self.write(data)
        while self.out and not self.flush():
            if not wait_for(self.sock, select.POLLOUT, timeout):
                raise ConnectionClosed("client stopped reading")

    def send_error(self, error: ProtocolError) -> None:
        """Answer a request that could not be read, through the app's error handlers.

        Never waits: what the socket does not take at once is queued like any answer.
        The caller closes the connection.
        """
        method = self.parser.method
        response = self.server.app.protocol_error_response(error, method, self.remote)
        head = response.head_bytes(keep_alive=False)
        try:
            if has_body(method, response.status):
                self.write(head + response.body)
            else:
                self.write(head)
        except ConnectionClosed:
            pass
        if self.server.access_log.enabled:
            self.server.access_log.log(self.remote, None, response.status, len(response.body),
                                       0.0)

    # -- ending -----------------------------------------------------------

    def expire(self) -> None:
        """The deadline passed while the connection waited in the poller."""
        if self.parser.in_request and not self.out and not self.lingering:
            self.send_error(RequestTimeout("request not received in time"))
        self.close()

    def has_input(self) -> bool:
        """Whether the client sent something not yet read (or closed): it is not idle."""
        try:
            return self.sock.recv(1, socket.MSG_PEEK) is not None
        except BlockingIOError:
            return False
        except OSError:
            return True  # reading will tell, and close it

    def close(self) -> bool:
        self.server.pool.forget(self)
        for item in self.out:
            if type(item) is FileBody:
                item.close()
        self.out.clear()
        try:
            self.sock.close()
        except OSError:
            pass
        return False
