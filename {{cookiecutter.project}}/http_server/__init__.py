"""http_server: a strict, fast HTTP/1.1 server and micro-framework on the standard library alone.

The seed's names: ``WebServer``, ``Path``, ``Requests``, ``Response`` here and
``Redirect`` in ``http_server.url``. Life cycle, one module each: accept
(server.py, pool.py) -> parse (parser.py) -> worker (pool.py, connection.py)
-> dispatcher (app.py, url.py) -> send (response.py, connection.py) -> close.
"""

from .config import ConfigError, settings_from_env
from .errors import HTTPError
from .headers import Headers
from .request import Requests
from .response import Response
from .server import WebServer
from .url import Path, Redirect, reverse

__all__ = [
    "ConfigError",
    "HTTPError",
    "Headers",
    "Path",
    "Redirect",
    "Requests",
    "Response",
    "WebServer",
    "reverse",
    "settings_from_env",
]
__version__ = "1.0.0"
