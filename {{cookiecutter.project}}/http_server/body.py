"""Where a request body goes while it arrives: memory, or past a size a temporary file.

The parser writes each piece of a body into a sink as it is read (so a large
upload never sits whole in the parser's buffer) and hands on what ``finish()``
returns: ``bytes``, or a binary file positioned at its start. The temporary
file has no name (``tempfile.TemporaryFile``): the system removes it when it
is closed, or when the process ends however it ends, so nothing is left behind.
"""

from __future__ import annotations

import tempfile
from typing import BinaryIO


class MemoryBody:
    """A body kept in memory (the parser's default)."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = bytearray()

    @property
    def size(self) -> int:
        return len(self.data)

    def write(self, chunk) -> None:
        self.data += chunk

    def finish(self) -> bytes:
        data = bytes(self.data)
        self.data = bytearray()
        return data

    def discard(self) -> None:
        self.data = bytearray()


class SpooledBody:
    """In memory up to ``spool_size`` bytes, then in an unnamed temporary file."""

    __slots__ = ("spool_size", "buffer", "file", "size")

    def __init__(self, spool_size: int) -> None:
        self.spool_size = spool_size
        self.buffer = bytearray()
        self.file: BinaryIO | None = None
        self.size = 0

    def write(self, chunk) -> None:
        self.size += len(chunk)
        if self.file is not None:
            self.file.write(chunk)
        elif self.size > self.spool_size:
            self.file = tempfile.TemporaryFile()
            self.file.write(self.buffer)
            self.file.write(chunk)
            self.buffer = bytearray()
        else:
            self.buffer += chunk

    def finish(self) -> bytes | BinaryIO:
        """The body: bytes while small, else the file (the caller closes it)."""
        file, self.file = self.file, None
        self.size = 0
        if file is None:
            data = bytes(self.buffer)
            self.buffer = bytearray()
            return data
        file.seek(0)
        return file

    def discard(self) -> None:
        """Drop a body that will never be handed on (an error, the client gone)."""
        if self.file is not None:
            self.file.close()
            self.file = None
        self.buffer = bytearray()
        self.size = 0
