"""The tiny app (see tiny.py) as ASGI, for uvicorn (h11, and httptools + uvloop)."""

import asyncio
import os

from tiny import (
    ECHO_RE,
    FORM_RE,
    HELLO,
    HELLO_RE,
    JSON,
    OCTETS,
    TEXT,
    UPLOAD_RE,
    USER_RE,
    WAIT_RE,
    WAIT_SECONDS,
    WAITED,
    Digest,
    user_json,
)


async def body_chunks(receive):
    while True:
        message = await receive()
        if message.get("body"):
            yield message["body"]
        if not message.get("more_body"):
            return


async def hello(receive, scope):
    return TEXT, HELLO


async def user(receive, scope, user_id):
    return JSON, user_json(user_id)


async def echo(receive, scope):
    return OCTETS, b"".join([chunk async for chunk in body_chunks(receive)])


async def wait(receive, scope):
    await asyncio.sleep(WAIT_SECONDS)
    return TEXT, WAITED


async def upload(receive, scope):
    digest = Digest()
    async for chunk in body_chunks(receive):
        digest.update(chunk)
    return JSON, digest.answer()


async def upload_form(receive, scope):
    from formfile import FirstFile

    form = FirstFile(dict(scope["headers"]).get(b"content-type", b"").decode("latin-1"))
    async for chunk in body_chunks(receive):
        form.write(chunk)
    return JSON, form.digest().answer()


ROUTES = [(HELLO_RE, hello), (USER_RE, user), (ECHO_RE, echo), (WAIT_RE, wait),
          (UPLOAD_RE, upload), (FORM_RE, upload_form)]


async def router(scope, receive, send):
    if scope["type"] != "http":  # lifespan: nothing to set up
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    path = scope["path"]
    for regex, view in ROUTES:
        match = regex.match(path)
        if match:
            content_type, body = await view(receive, scope, **match.groupdict())
            status = 200
            break
    else:
        content_type, body, status = TEXT, b"not found", 404
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def pid_header(app):
    """The one middleware: X-Pid on every response."""

    async def middleware(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)

        async def send_with_pid(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-pid", str(os.getpid()).encode())]
            await send(message)

        return await app(scope, receive, send_with_pid)

    return middleware


app = pid_header(router)
