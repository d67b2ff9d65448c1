"""One access-log line per request on stdout (text or JSON); errors on stderr.

Every field that came from the client is escaped, so a request cannot forge
log lines or send control characters to a terminal.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from .httpdate import once_per_second

_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), *range(0x7F, 0x100)]}
_ESCAPES[ord('"')] = '\\"'
_ESCAPES[ord("\\")] = "\\\\"

logger = logging.getLogger("http_server")


def escape(text: str) -> str:
    """Printable ASCII stays; everything else becomes a visible escape."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return "".join(_ESCAPES.get(ord(c), c) if ord(c) < 0x100 else c.encode(
        "unicode_escape").decode("ascii") for c in text)


class AccessLog:
    def __init__(self, log_format: str = "text", enabled: bool = True, fd: int = 1) -> None:
        self.enabled = enabled
        self.skip_paths: set[str] = set()  # probes: an orchestrator asks every few seconds
        self.json = log_format == "json"
        self.fd = fd
        fmt = "%Y-%m-%dT%H:%M:%SZ" if self.json else "%d/%b/%Y:%H:%M:%S +0000"
        self._timestamp = once_per_second(lambda now: time.strftime(fmt, time.gmtime(now)))

    def log(self, remote: str, request, status: int, size: int, seconds: float,
            request_id: str | None = None) -> None:
        """One line for an answered request (``request`` None: one refused unparsed)."""
        if request is not None and request.path in self.skip_paths:
            return
        if request is None:
            method = target = version = "-"
            user_agent = ""
        else:
            method, target, version = request.method, request.target, request.version
            user_agent = request.headers.get("user-agent", "")
        if self.json:
            record = {
                "time": self._timestamp(),
                "remote": remote,
                "method": method,
                "target": target,
                "version": version,
                "status": status,
                "bytes": size,
                "duration_ms": round(seconds * 1000, 3),
                "user_agent": user_agent,
            }
            if request_id:
                record["request_id"] = request_id
            line = json.dumps(record)
        else:
            line = (
                f'{remote} - - [{self._timestamp()}] "{escape(method)} {escape(target)} {version}" '
                f'{status} {size} "{escape(user_agent or "-")}" {seconds * 1000:.3f}ms'
            )
            if request_id:
                line += " id=" + escape(request_id)
        try:
            os.write(self.fd, (line + "\n").encode("utf-8", "backslashreplace"))
        except OSError:
            pass  # a closed stdout must not take the server down


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_errors(log_level: str = "info", log_format: str = "text") -> None:
    """Send the framework's own messages to stderr, once per process."""
    logger.setLevel(log_level.upper())
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
