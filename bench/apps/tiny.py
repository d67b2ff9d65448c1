"""What every server under test answers: the same bytes under the same headers.

Three routes, and one middleware that every request goes through:

- ``GET /``               -> ``hello world !`` as ``text/plain; charset=utf-8``
- ``GET /users/<id>``     -> ``{"id": <id>, "name": "user-<id>"}`` as ``application/json``
- ``POST /echo``          -> the request body, as ``application/octet-stream``
- ``GET /wait``           -> ``waited`` as ``text/plain; charset=utf-8``, after 50 ms spent
                             waiting, as a view waits on a database or another service
                             (``time.sleep`` on a worker thread; ``await asyncio.sleep`` in the
                             ASGI app, its natural form there)
- middleware              -> adds ``X-Pid: <pid of the process that answered>``

``ours.py`` implements it with ``http_server``; ``wsgi_app.py`` (waitress, gunicorn) and
``asgi_app.py`` (uvicorn) implement it by hand, with a regex router like ours. The JSON body is
encoded the way ``http_server``'s ``sendJson`` does; ``measure.py`` checks before measuring that
each server's answers match ours byte for byte (bodies and Content-Type).
"""

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
WAIT_SECONDS = 0.05
WAITED = b"waited"


def user(user_id: str) -> dict:
    return {"id": int(user_id), "name": f"user-{user_id}"}


def user_json(user_id: str) -> bytes:
    return json.dumps(user(user_id), ensure_ascii=False, separators=(",", ":")).encode()
