"""What a connection sends: written at once, or queued while the socket is full.

``write`` never blocks: what the socket does not take is queued (bytes and
file slices), and ``flush`` sends the queue when the poller says the socket
is writable again. A file body goes out with ``os.sendfile`` (zero copy: the
kernel moves it to the socket without it entering Python). Only a streamed
body is written blocking, on the thread whose view produces it.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
from collections import deque

from .response import FileBody

SEND_TIMEOUT = 30.0  # a client that reads nothing for this long loses its connection
SENDFILE_BLOCK = 1 << 24
STREAM_BUFFER = 65536  # a streamed body's small items are gathered up to this many bytes,
STREAM_DELAY = 0.005  # and for this many seconds at most

# Outputs holding gathered stream items, and since when (see send_gathered_streams).
_gathering: dict[Output, float] = {}
_gathering_lock = threading.Lock()
COPY_BLOCK = 262144
MSG_MORE = getattr(socket, "MSG_MORE", 0)
_write = os.write

# sendfile is refused for this file or socket: fall back to copying through Python.
_NO_SENDFILE = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOTSOCK}


class ConnectionClosed(Exception):
    """The client went away, or stopped reading for too long, while we were writing."""


def wait_for(sock, event: int, timeout: float) -> bool:
    """Whether ``sock`` became ready for ``event`` within ``timeout`` seconds.

    poll, not select: select cannot watch a descriptor numbered 1024 or more,
    and a busy server has thousands.
    """
    poller = select.poll()
    poller.register(sock, event)
    return bool(poller.poll(timeout * 1000))


class Output:
    """The bytes, memoryviews and file slices of one connection not yet sent, in order."""

    __slots__ = ("sock", "fd", "queue", "sent", "gathered", "gathered_size", "chunked", "lock",
                 "hold")

    def __init__(self, sock) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.queue: deque = deque()
        self.sent = 0  # bytes the socket has taken from the queue (a slow reader's pace)
        self.gathered: list[bytes] = []  # stream items not written yet (write_stream)
        self.gathered_size = 0
        self.chunked = False
        self.lock: threading.Lock | None = None  # guards the gathered items while streaming
        self.hold = False  # queue whole answers: the pool sends a batch's together

    def write(self, data: bytes, more: bool = False) -> None:
        """Send ``data`` now, or queue what the socket does not take (never blocks).

        ``more``: the body follows at once (a file), so the kernel may hold the
        head back to share a packet with it instead of sending it alone. While
        ``hold`` is set, an answer in one piece is queued, for a later ``flush``;
        one that continues (a file, a large body) goes out at once, since its own
        sending takes longer than waking the client.
        """
        if self.queue or (self.hold and not more):
            self.queue.append(data)
            return
        try:
            # send() without flags is write(), a cheaper call.
            sent = self.sock.send(data, MSG_MORE) if more else _write(self.fd, data)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            raise ConnectionClosed from error
        if sent < len(data):
            self.queue.append(memoryview(data)[sent:])

    def write_file(self, body: FileBody) -> None:
        self.queue.append(body)
        if len(self.queue) == 1:
            self.flush()

    def flush(self) -> bool:
        """Send queued output until done (True) or until the socket is full (False)."""
        queue = self.queue
        fd = self.fd
        while queue:
            item = queue[0]
            if type(item) is FileBody:
                if not self._send_file_slice(item):
                    return False
                item.close()
            else:
                try:
                    sent = _write(fd, item)
                except BlockingIOError:
                    return False
                except OSError as error:
                    raise ConnectionClosed from error
                self.sent += sent
                if sent < len(item):
                    queue[0] = memoryview(item)[sent:]
                    return False
            queue.popleft()
        return True

    def _send_file_slice(self, body: FileBody) -> bool:
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
            self.sent += sent
        return True

    def _copy_file(self, body: FileBody) -> None:
        """Where sendfile is refused: copy in blocks, waiting for the client as needed."""
        body.file.seek(body.offset)
        while body.count > 0:
            chunk = body.file.read(min(body.count, COPY_BLOCK))
            if not chunk:
                break
            self.send_blocking(chunk)
            body.count -= len(chunk)

    def write_stream(self, stream, chunked: bool) -> int:
        """A streamed body is produced on this thread, so it is written on it too.

        Its items are gathered into writes of up to ``STREAM_BUFFER`` bytes (a write
        per small item costs a system call and a chunk header each), and what is
        gathered never waits more than ``STREAM_DELAY``: the main thread's
        housekeeping sends it (``send_gathered_streams``) while the producer waits
        for its next item (server-sent events, progress).
        """
        size = 0
        self.gathered = []
        self.gathered_size = 0
        self.chunked = chunked
        lock = self.lock = threading.Lock()
        try:
            for item in stream:
                if isinstance(item, str):
                    item = item.encode("utf-8")
                if not item:
                    continue
                size += len(item)
                with lock:
                    if not self.gathered:
                        with _gathering_lock:
                            _gathering[self] = time.monotonic()
                    self.gathered.append(item)
                    self.gathered_size += len(item)
                    if self.gathered_size >= STREAM_BUFFER:
                        self.send_blocking(self._take_gathered())
            with lock:
                rest = self._take_gathered() if self.gathered else b""
                self.send_blocking(rest + b"0\r\n\r\n" if chunked else rest)
        finally:
            with _gathering_lock:
                _gathering.pop(self, None)
        return size

    def _take_gathered(self) -> bytes:
        """The gathered items as one piece (one chunk), under ``lock``."""
        data = b"".join(self.gathered)
        self.gathered = []
        self.gathered_size = 0
        with _gathering_lock:
            _gathering.pop(self, None)
        return b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data

    def send_blocking(self, data: bytes, timeout: float = SEND_TIMEOUT) -> None:
        self.write(data)
        while self.queue and not self.flush():
            if not wait_for(self.sock, select.POLLOUT, timeout):
                raise ConnectionClosed("client stopped reading")

    def discard(self) -> None:
        """Drop what was not sent, closing queued files."""
        for item in self.queue:
            if type(item) is FileBody:
                item.close()
        self.queue.clear()


def send_gathered_streams(now: float) -> None:
    """From housekeeping: send the stream items gathered longer than ``STREAM_DELAY``.

    Never waits: an output whose thread is writing (its lock taken) is skipped,
    and what the socket does not take is queued for that thread to send.
    """
    with _gathering_lock:
        due = [output for output, since in _gathering.items() if now - since >= STREAM_DELAY]
    for output in due:
        if output.lock.acquire(blocking=False):
            try:
                if output.gathered:
                    output.queue.append(output._take_gathered())
                    output.flush()
            except (ConnectionClosed, OSError):
                pass  # the streaming thread finds out on its next write
            finally:
                output.lock.release()
