"""What every server under test answers: the same bytes under the same headers.

Three routes, and one middleware that every request goes through:

- ``GET /``               -> ``hello world !`` as ``text/plain; charset=utf-8``
- ``GET /users/<id>``     -> ``{"id": <id>, "name": "user-<id>"}`` as ``application/json``
- ``POST /echo``          -> the request body, as ``application/octet-stream``
- ``GET /wait``           -> ``waited`` as ``text/plain; charset=utf-8``, after 50 ms spent
                             waiting, as a view waits on a database or another service
                             (``time.sleep`` on a worker thread; ``await asyncio.sleep`` in the
                             ASGI app, its natural form there)
- ``POST /upload``        -> ``{"size": <bytes>, "sha256": "<hex>"}`` of the raw body, read in
                             chunks of 64 KiB (``request.stream``, ``wsgi.input``, ASGI messages)
- ``POST /upload-form``   -> the same of the first file of a ``multipart/form-data`` body
                             (ours: ``request.files``; the peers: python-multipart, as Starlette
                             uses it, its files spooled to disk past 1 MiB)
- middleware              -> adds ``X-Pid: <pid of the process that answered>``

``ours.py`` implements it with ``http_server``; ``wsgi_app.py`` (waitress, gunicorn) and
``asgi_app.py`` (uvicorn) implement it by hand, with a regex router like ours. The JSON body is
encoded the way ``http_server``'s ``sendJson`` does; ``measure.py`` checks before measuring that
each server's answers match ours byte for byte (bodies and Content-Type).
"""

import hashlib
import json
import re

HELLO = b"hello world !"
TEXT = "text/plain; charset=utf-8"  # ours adds the charset to text/* given as str
JSON = "application/json"
OCTETS = "application/octet-stream"

HELLO_RE = re.compile(r"^/$")
USER_RE = re.compile(r"^/users/(?P<user_id>[0-9]+)$")
ECHO_RE = re.compile(r"^/echo$")
WAIT_RE = re.compile(r"^/wait$")
UPLOAD_RE = re.compile(r"^/upload$")
FORM_RE = re.compile(r"^/upload-form$")
READ_SIZE = 64 * 1024
WAIT_SECONDS = 0.05
WAITED = b"waited"


def user(user_id: str) -> dict:
    return {"id": int(user_id), "name": f"user-{user_id}"}


def as_json(value) -> bytes:
    """JSON as ``http_server``'s ``sendJson`` encodes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def user_json(user_id: str) -> bytes:
    return as_json(user(user_id))


class Digest:
    """Size and sha256 of what an upload view reads, chunk by chunk."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.hash.update(chunk)
        self.size += len(chunk)

    def read_all(self, stream) -> "Digest":
        while chunk := stream.read(READ_SIZE):
            self.update(chunk)
        return self

    def answer(self) -> bytes:
        return as_json({"size": self.size, "sha256": self.hash.hexdigest()})
