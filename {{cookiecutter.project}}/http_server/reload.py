"""Auto-reload for development: serve ``main.py`` and restart it when the code changes.

    python -m http_server.reload main.py [arguments for main.py]     (what `make dev` runs)

This parent process never imports the application. It runs ``main.py`` as a child
(the same Python, the same environment, stdin closed, its output passed through)
and every ``POLL_INTERVAL`` seconds looks at the size, mtime and inode of each
``.py`` file below the script's folder and of its ``.env``. When one changes:

* every changed ``.py`` file is compiled here first; a syntax error keeps the
  running server and prints one line (``reload: syntax error in views.py line 12:
  invalid syntax; still serving the previous version``);
* otherwise the child gets SIGTERM (it finishes the requests in flight and exits),
  and once it has exited, and so closed its listening socket, a new child binds
  the same port. The child runs with ``DRAIN_DELAY=0``: no orchestrator routes to
  it, so it has nothing to drain for.

A child that exits by itself (a crash, an import error) is reported in one line,
and the next change starts a new one. SIGTERM or SIGINT stops the child, then the
parent, with exit status 0.

Polling rather than inotify: it works on every platform and file system (bind
mounts, network shares, Docker Desktop's shared folders, where change events are
unreliable), and a service's few hundred files cost a few milliseconds a poll.

Reloading restarts one server process, so it needs ``WORKERS=1``: any other value,
from the environment or from ``.env`` (the environment wins, as in the service's
settings), is refused with one line, at start and whenever ``.env`` changes.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import warnings
from pathlib import Path

POLL_INTERVAL = 0.5  # seconds between two looks at the files
STOP_MARGIN = 5.0  # seconds past the child's GRACEFUL_TIMEOUT before it is killed
DEFAULT_GRACEFUL_TIMEOUT = 10.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# Folders that hold no code of the service: caches, version control, virtual
# environments (also found by their pyvenv.cfg, whatever their name), uploads.
SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules", "media"})

# A file's fingerprint: (mtime in ns, size, inode). An editor that saves through
# a new file and a rename changes the inode even when size and mtime look the same.
Fingerprint = tuple[int, int, int]


def say(text: str) -> None:
    print(f"reload: {text}", file=sys.stderr, flush=True)


# -- what is watched ---------------------------------------------------------


def watched_files(root: Path) -> dict[str, Fingerprint]:
    """The fingerprint of every ``.py`` file below ``root`` and of ``root/.env``."""
    found: dict[str, Fingerprint] = {}
    folders = [str(root)]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:  # removed or unreadable since it was listed
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if _is_watched_folder(entry):
                        folders.append(entry.path)
                elif entry.name.endswith(".py") or (folder == str(root) and entry.name == ".env"):
                    stat = entry.stat()  # through a symlink: what the child would import
                    found[entry.path] = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            except OSError:  # gone, or a dangling symlink such as an editor's lock file
                continue
    return found


def _is_watched_folder(entry: os.DirEntry) -> bool:
    if entry.name.startswith(".") or entry.name in SKIPPED_FOLDERS:
        return False
    return not os.path.exists(os.path.join(entry.path, "pyvenv.cfg"))


def changed_files(before: dict[str, Fingerprint], after: dict[str, Fingerprint]) -> set[str]:
    """The files added, modified or removed between two looks."""
    return {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}


def syntax_error(path: str, root: Path) -> str | None:
    """A one-line description of the syntax error in ``path``; None if it compiles.

    ``compile`` parses and builds the code object without running anything, with
    this interpreter, the one the child runs on.
    """
    try:
        source = Path(path).read_bytes()
    except OSError:  # removed since the look: the next look sees it
        return None
    name = os.path.relpath(path, root)
    try:
        with warnings.catch_warnings():  # the child prints its own SyntaxWarnings
            warnings.simplefilter("ignore")
            compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as error:  # IndentationError and TabError included
        return f"syntax error in {name} line {error.lineno}: {error.msg}"
    except ValueError as error:  # a NUL byte, before Python 3.12
        return f"cannot compile {name}: {error}"
    return None


# -- settings the parent needs, read as the service's settings read them --------


def read_dotenv(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a .env file: enough of python-dotenv's format for the
    settings read here (comments, ``export``, quotes, a `` #`` comment after a value)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, equals, value = line.partition("=")
        if not equals or line.startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        values[name.strip()] = value
    return values


def setting(name: str, root: Path, environ: dict[str, str]) -> tuple[str | None, str]:
    """The raw value of a setting and where it came from: the environment wins over .env."""
    if name in environ:
        return environ[name], "the environment"
    value = read_dotenv(root / ".env").get(name)
    return value, ".env"


def workers_problem(root: Path, environ: dict[str, str]) -> str | None:
    """Why WORKERS forbids reloading (None when it allows it).

    Unset and 1 are fine; a bad value is left to the child, whose settings say
    what is wrong with it.
    """
    value, source = setting("WORKERS", root, environ)
    text = (value or "").strip()
    if (text.isascii() and text.isdigit() and int(text) > 1) or text.lower() == "auto":
        return f"needs WORKERS=1 (one server process to restart), but {source} sets WORKERS={text}"
    return None


def stop_timeout(root: Path, environ: dict[str, str]) -> float:
    """How long a stopping child may take: its GRACEFUL_TIMEOUT and a margin."""
    value, _ = setting("GRACEFUL_TIMEOUT", root, environ)
    try:
        seconds = float(value) if value else DEFAULT_GRACEFUL_TIMEOUT
    except ValueError:
        seconds = DEFAULT_GRACEFUL_TIMEOUT
    return max(seconds, 0.0) + STOP_MARGIN


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


# -- the parent ----------------------------------------------------------------


class Reloader:
    """Runs ``script`` as a child process and restarts it when the code changes."""

    def __init__(self, script: str, arguments: list[str], environ: dict[str, str]) -> None:
        self.script = script
        self.arguments = arguments
        self.environ = environ
        self.root = Path(script).resolve().parent
        self.child: subprocess.Popen | None = None
        self.exit_reported = False
        self.broken: set[str] = set()  # .py files whose last version did not compile
        self.stop_signal: int | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def run(self) -> int:
        if not Path(self.script).is_file():
            say(f"{self.script} not found (usage: python -m http_server.reload main.py)")
            return 1
        problem = workers_problem(self.root, self.environ)
        if problem:
            say(problem)
            return 1
        for number in STOP_SIGNALS:
            signal.signal(number, self._request_stop)
        files = watched_files(self.root)
        self._start_child()
        while self.stop_signal is None:
            ready, _, _ = select.select([self._wake_r], [], [], POLL_INTERVAL)
            if ready:
                os.read(self._wake_r, 1024)
            if self.stop_signal is not None:
                break
            self._report_exit()
            now = watched_files(self.root)
            changed = changed_files(files, now)
            files = now
            if changed:
                self._reload(changed, now)
        self._stop_child(self.stop_signal)
        return 0

    def _request_stop(self, number: int, _frame=None) -> None:
        self.stop_signal = number
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _reload(self, changed: set[str], files: dict[str, Fingerprint]) -> None:
        """Restart the child for these changed files, unless the new code cannot run."""
        still_running = self.child is not None and self.child.poll() is None
        tail = "still serving the previous version" if still_running else "waiting for a fix"
        # A file broken earlier and not changed now is still broken: check it again.
        candidates = sorted(p for p in changed | self.broken if p.endswith(".py") and p in files)
        errors = [(path, error) for path in candidates
                  if (error := syntax_error(path, self.root)) is not None]
        self.broken = {path for path, _ in errors}
        if errors:
            say(f"{errors[0][1]}; {tail}")
            return
        problem = workers_problem(self.root, self.environ)
        if problem:
            say(f"{problem}; {tail}")
            return
        names = sorted(os.path.relpath(path, self.root) for path in changed)
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        say(f"{shown} changed; restarting")
        self._stop_child(signal.SIGTERM)
        if self.stop_signal is None:
            self._start_child()

    def _start_child(self) -> None:
        # DRAIN_DELAY=0 wins over .env: the service's settings let the environment win.
        environ = {**self.environ, "DRAIN_DELAY": "0"}
        environ.setdefault("PYTHONUNBUFFERED", "1")  # its log lines at once, even into a pipe
        self.child = subprocess.Popen([sys.executable, self.script, *self.arguments],
                                      env=environ, stdin=subprocess.DEVNULL)
        self.exit_reported = False

    def _report_exit(self) -> None:
        if self.child is None or self.exit_reported:
            return
        code = self.child.poll()
        if code is not None:
            self.exit_reported = True
            say(f"{self.script} {describe_exit(code)}; waiting for a change to start it again")

    def _stop_child(self, number: int) -> None:
        """Signal the child and wait for it to exit (and so close its socket); kill it
        if it outlives its grace period."""
        child, self.child = self.child, None
        if child is None or child.poll() is not None:
            return
        child.send_signal(number)
        timeout = stop_timeout(self.root, self.environ)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            say(f"{self.script} did not stop within {timeout:g} s; killing it")
            child.kill()
            child.wait()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    script, arguments = (argv[0], argv[1:]) if argv else ("main.py", [])
    return Reloader(script, arguments, dict(os.environ)).run()


if __name__ == "__main__":
    sys.exit(main())
