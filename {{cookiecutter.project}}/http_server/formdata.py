"""What a view gets from a form body: ``MultiDict`` (``request.form``, ``request.files``),
``UploadedFile``, and ``parse_form``, which runs the multipart parser over a body.

An ``UploadedFile`` copies nothing: it is a window on the request body, which is
already in memory or, past BODY_SPOOL_SIZE, in an unnamed temporary file. So an
upload costs no more memory, disk or file descriptors than its body did, and
goes with it when the request is closed.
"""

from __future__ import annotations

import io
import shutil
import threading
from typing import BinaryIO

from .headers import Headers
from .multipart import FormLimits, MultipartParser, PartData, PartEnd, PartStart, boundary_of

__all__ = ["MultiDict", "UploadedFile", "parse_form"]

READ_SIZE = 64 * 1024  # how much of the body parse_form reads at a time


class MultiDict(dict):
    """A read-only dict of each name's first value; ``getlist(name)`` gives all of them."""

    def __init__(self, pairs=()) -> None:
        lists: dict = {}
        for name, value in pairs:
            lists.setdefault(name, []).append(value)
        super().__init__((name, values[0]) for name, values in lists.items())
        self._lists = lists

    def getlist(self, name) -> list:
        """Every value given for ``name``, in the order sent ([] if none)."""
        return list(self._lists.get(name, ()))

    def lists(self) -> list[tuple[str, list]]:
        return [(name, list(values)) for name, values in self._lists.items()]

    def _read_only(self, *args, **kwargs):
        raise TypeError("request.form and request.files are read-only")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only


class _BodyWindow(io.RawIOBase):
    """``size`` bytes of ``source`` from ``start``, as a file of their own.

    Windows on one body share ``lock``, and each read leaves the body's position as
    it found it, so uploads and ``request.stream`` can be read in any order.
    """

    def __init__(self, source: BinaryIO, start: int, size: int, lock: threading.Lock) -> None:
        super().__init__()
        self._source, self._start, self._size, self._lock = source, start, size, lock
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def _read(self, count: int) -> bytes:
        count = min(count, self._size - self._position)
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if count <= 0:
            return b""
        with self._lock:
            kept = self._source.tell()
            self._source.seek(self._start + self._position)
            data = self._source.read(count)
            self._source.seek(kept)
        self._position += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self._read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self._read(self._size - self._position)


class UploadedFile:
    """One file of a multipart form: ``request.files[name]``."""

    def __init__(self, part: PartStart, size: int, body: BinaryIO, lock: threading.Lock) -> None:
        self.name = part.name  # the form field's name
        self.filename: str = part.filename  # sanitised: see safe_filename
        self.content_type = part.content_type
        self.headers = Headers(part.headers)
        self.size = size
        self.stream: BinaryIO = io.BufferedReader(_BodyWindow(body, part.offset, size, lock))

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)

    def save(self, destination, buffer_size: int = READ_SIZE) -> None:
        """Copy the whole file to a path (its folder must exist) or a binary file object."""
        self.stream.seek(0)
        if hasattr(destination, "write"):
            shutil.copyfileobj(self.stream, destination, buffer_size)
            return
        with open(destination, "wb") as out:
            shutil.copyfileobj(self.stream, out, buffer_size)

    def close(self) -> None:
        self.stream.close()

    @property
    def closed(self) -> bool:
        return self.stream.closed

    def __repr__(self) -> str:
        return f"<UploadedFile {self.name!r} {self.filename!r} {self.size} bytes>"


def parse_form(body: BinaryIO, content_type: str,
               limits: FormLimits | None = None) -> tuple[MultiDict, MultiDict]:
    """(text fields, files) of a multipart/form-data ``body`` (a binary file, read from
    its start in pieces); ``MultipartError`` if it is malformed or past ``limits``."""
    parser = MultipartParser(boundary_of(content_type), limits)
    lock = threading.Lock()
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, UploadedFile]] = []
    part, pieces, size = None, [], 0
    with lock:
        body.seek(0)
        while True:
            data = body.read(READ_SIZE)
            for event in parser.feed(data) if data else parser.finish():
                if type(event) is PartStart:
                    part, pieces, size = event, [], 0
                elif type(event) is PartData:
                    size += len(event.data)
                    if part.filename is None:
                        pieces.append(event.data)
                elif type(event) is PartEnd:
                    if part.filename is None:
                        fields.append((part.name, b"".join(pieces).decode("utf-8", "replace")))
                    else:
                        files.append((part.name, UploadedFile(part, size, body, lock)))
            if not data:
                break
        body.seek(0)
    return MultiDict(fields), MultiDict(files)
