"""The tiny app (see tiny.py) on our own server, http_server, imported from the template folder.

    python bench/apps/ours.py --port 8000 [--threads 16] [--workers 1] [--access-log]
                              [--static DIR] [--blocked-after SECONDS]
"""

import argparse
import os
import sys
import time
from pathlib import Path as _FsPath

HERE = _FsPath(__file__).resolve().parent
TEMPLATE_DIR = HERE.parent.parent / "{{cookiecutter.project}}"
sys.path.insert(0, str(TEMPLATE_DIR))
sys.path.insert(1, str(HERE))

import http_server  # noqa: E402
from http_server import Path, WebServer  # noqa: E402
from tiny import JSON, OCTETS, WAIT_SECONDS, WAITED, Digest, user  # noqa: E402

# Never measure anything but the template's own framework under the name "ours".
_origin = _FsPath(http_server.__file__).resolve().parent
if _origin != (TEMPLATE_DIR / "http_server").resolve():
    sys.exit(f"ours.py: http_server was imported from {_origin}, not from the template")


def hello(request, response):
    response.send("hello world !", 200, "text/plain")


def user_view(request, response, user_id):
    response.sendJson(user(user_id))


def echo(request, response):
    response.send(request.body, 200, OCTETS)


def wait(request, response):
    time.sleep(WAIT_SECONDS)
    response.send(WAITED, 200, "text/plain; charset=utf-8")


def upload(request, response):
    response.send(Digest().read_all(request.stream).answer(), 200, JSON)


def upload_form(request, response):
    first = next(iter(request.files.values()))
    response.send(Digest().read_all(first.stream).answer(), 200, JSON)


def pid_header(request, response):
    """The one middleware: X-Pid on every response."""
    response.headers["X-Pid"] = str(os.getpid())
    return request, response


urlpatterns = [
    Path(r"^/$", hello, name="hello"),
    Path(r"^/users/(?P<user_id>[0-9]+)$", user_view, name="user"),
    Path(r"^/echo$", echo, name="echo"),
    Path(r"^/wait$", wait, name="wait"),
    Path(r"^/upload$", upload, name="upload"),
    Path(r"^/upload-form$", upload_form, name="upload-form"),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--access-log", action="store_true")
    parser.add_argument("--static", help="folder served under /static/")
    parser.add_argument("--keep-alive-timeout", type=float, default=30.0)
    parser.add_argument("--max-connections", type=int, default=10000)
    parser.add_argument("--graceful-timeout", type=float, default=5.0)
    parser.add_argument("--blocked-after", type=float, default=0.002)
    args = parser.parse_args(argv)
    server = WebServer(
        host="127.0.0.1",
        port=args.port,
        route=urlpatterns,
        threads=args.threads,
        workers=args.workers,
        access_log=args.access_log,
        keep_alive_timeout=args.keep_alive_timeout,
        max_connections=args.max_connections,
        graceful_timeout=args.graceful_timeout,
        blocked_after=args.blocked_after,
    )
    server.Middlewares.append(pid_header)
    if args.static:
        server.fileServer("/static/", args.static)
    server.run()


if __name__ == "__main__":
    main()
