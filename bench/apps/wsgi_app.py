"""The tiny app (see tiny.py) as WSGI, for waitress and gunicorn."""

import os
import time

from tiny import (
    ECHO_RE,
    FORM_RE,
    HELLO,
    HELLO_RE,
    JSON,
    OCTETS,
    READ_SIZE,
    TEXT,
    UPLOAD_RE,
    USER_RE,
    WAIT_RE,
    WAIT_SECONDS,
    WAITED,
    Digest,
    user_json,
)


def hello(environ):
    return TEXT, HELLO


def user(environ, user_id):
    return JSON, user_json(user_id)


def echo(environ):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return OCTETS, environ["wsgi.input"].read(length)


def wait(environ):
    time.sleep(WAIT_SECONDS)
    return TEXT, WAITED


def body_chunks(environ):
    """The request body in chunks of READ_SIZE, no further than its Content-Length."""
    left = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    while left > 0:
        chunk = stream.read(min(READ_SIZE, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def upload(environ):
    digest = Digest()
    for chunk in body_chunks(environ):
        digest.update(chunk)
    return JSON, digest.answer()


def upload_form(environ):
    from formfile import FirstFile

    form = FirstFile(environ.get("CONTENT_TYPE", ""))
    for chunk in body_chunks(environ):
        form.write(chunk)
    return JSON, form.digest().answer()


ROUTES = [(HELLO_RE, hello), (USER_RE, user), (ECHO_RE, echo), (WAIT_RE, wait),
          (UPLOAD_RE, upload), (FORM_RE, upload_form)]


def router(environ, start_response):
    path = environ.get("PATH_INFO", "")
    for regex, view in ROUTES:
        match = regex.match(path)
        if match:
            content_type, body = view(environ, **match.groupdict())
            status = "200 OK"
            break
    else:
        content_type, body, status = TEXT, b"not found", "404 Not Found"
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def pid_header(app):
    """The one middleware: X-Pid on every response."""

    def middleware(environ, start_response):
        def start(status, headers, exc_info=None):
            headers.append(("X-Pid", str(os.getpid())))
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return middleware


app = pid_header(router)
