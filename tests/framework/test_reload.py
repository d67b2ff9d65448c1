"""Auto-reload (http_server/reload.py): a real project folder, the reloader as a real
process on a free port, files edited on disk, answers read over HTTP.

Nothing here asserts on time: each test waits, within a generous bound, for what the
user would see (the new answer, a line on stderr, the process gone).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from http_server import reload
from support.paths import TEMPLATE_DIR
from support.ports import free_port

BOUND = 30.0  # seconds: far above what a reload takes, even on a loaded machine

MAIN = """\
import os

from http_server import Path, WebServer
from http_server.config import settings_from_env

# As the generated settings.py does with python-dotenv: .env fills what is unset.
if os.path.exists(".env"):
    for line in open(".env"):
        name, _, value = line.strip().partition("=")
        if name and not name.startswith("#"):
            os.environ.setdefault(name, value)

import views

urlpatterns = [
    Path(r"^/$", views.index),
    Path(r"^/pid$", views.pid),
    Path(r"^/setting/(?P<name>[A-Z_]+)$", views.setting),
]
WebServer(route=urlpatterns, **settings_from_env()).run()
"""

VIEWS = """\
import os


def index(request, response):
    response.send({text!r}, 200, "text/plain")


def pid(request, response):
    response.send(str(os.getpid()), 200, "text/plain")


def setting(request, response, name):
    response.send(os.environ.get(name, "unset"), 200, "text/plain")
"""


def wait_until(condition, what: str, timeout: float = BOUND):
    """The first true value of ``condition()``, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.05)


def write_views(folder: Path, text: str) -> None:
    (folder / "views.py").write_text(VIEWS.format(text=text))


class DevServer:
    """``python -m http_server.reload main.py`` in ``folder``, its output in files."""

    def __init__(self, folder: Path, **environ: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            k: v
            for k, v in os.environ.items()
            if k not in ("WORKERS", "DRAIN_DELAY", "GRACEFUL_TIMEOUT")
        }
        environment.update(
            PYTHONPATH=str(TEMPLATE_DIR), HOST="127.0.0.1", PORT=str(self.port), **environ
        )
        self.stdout_path = folder / "reload-stdout.txt"
        self.stderr_path = folder / "reload-stderr.txt"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "http_server.reload", "main.py"],
                cwd=folder,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own group: cleanup reaches the child too
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="backslashreplace")

    def reload_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("reload:")]

    def get(self, path: str = "/") -> str | None:
        """The body of GET ``path``; None while nothing answers."""
        try:
            return requests.get(self.url + path, timeout=5).text
        except (requests.ConnectionError, requests.Timeout):  # restarting, or not serving yet
            assert self.process.poll() is None, f"the reloader exited:\n{self.stderr}"
            return None

    def wait_for_answer(self, expected: str, path: str = "/") -> float:
        """Seconds until GET ``path`` answers ``expected``."""
        started = time.monotonic()
        wait_until(lambda: self.get(path) == expected, f"GET {path} answering {expected!r}")
        return time.monotonic() - started

    def wait_for_reload_line(self, count: int) -> list[str]:
        wait_until(lambda: len(self.reload_lines()) >= count, f"{count} reload: line(s)")
        return self.reload_lines()

    def child_pid(self) -> int:
        return int(wait_until(lambda: self.get("/pid"), "GET /pid answering"))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(BOUND)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever is left of the group
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "main.py").write_text(MAIN)
    write_views(tmp_path, "first version")
    return tmp_path


@pytest.fixture
def dev_server(project: Path):
    started = []

    def start(**environ: str) -> DevServer:
        server = DevServer(project, **environ)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- over real processes ------------------------------------------------------


def test_an_edited_view_is_served_within_a_few_seconds_of_the_edit(project, dev_server):
    server = dev_server()
    server.wait_for_answer("first version")
    old_pid = server.child_pid()
    write_views(project, "second version")
    seconds = server.wait_for_answer("second version")
    print(f"reload: edit to new answer in {seconds:.2f} s")
    assert server.child_pid() != old_pid
    assert server.reload_lines() == ["reload: views.py changed; restarting"]


def test_a_syntax_error_keeps_the_old_server_and_prints_one_line(project, dev_server):
    server = dev_server()
    server.wait_for_answer("first version")
    old_pid = server.child_pid()
    (project / "views.py").write_text("def index(request, response)\n    pass\n")
    [line] = server.wait_for_reload_line(1)
    assert line.startswith("reload: syntax error in views.py line 1: ")
    assert line.endswith("; still serving the previous version")
    assert server.get() == "first version"
    assert server.child_pid() == old_pid
    # Fixed: the next version is served, and the syntax error was said once.
    write_views(project, "fixed version")
    server.wait_for_answer("fixed version")
    assert server.reload_lines() == [line, "reload: views.py changed; restarting"]


def test_a_file_still_broken_stops_a_reload_for_another_file(project, dev_server):
    server = dev_server()
    server.wait_for_answer("first version")
    (project / "helpers.py").write_text("x = (\n")
    server.wait_for_reload_line(1)
    write_views(project, "second version")
    lines = server.wait_for_reload_line(2)
    assert lines[1].startswith("reload: syntax error in helpers.py line 1: ")
    assert server.get() == "first version"


def test_a_changed_env_file_restarts_the_server_with_its_new_values(project, dev_server):
    (project / ".env").write_text("GREETING=hello\n")
    server = dev_server()
    server.wait_for_answer("hello", "/setting/GREETING")
    (project / ".env").write_text("GREETING=bonjour\n")
    server.wait_for_answer("bonjour", "/setting/GREETING")
    assert server.reload_lines() == ["reload: .env changed; restarting"]


def test_the_server_runs_with_no_drain_delay_whatever_env_says(project, dev_server):
    (project / ".env").write_text("DRAIN_DELAY=30\n")
    server = dev_server()
    server.wait_for_answer("0", "/setting/DRAIN_DELAY")


@pytest.mark.parametrize(
    ("env_file", "environ", "source", "value"),
    [
        ("WORKERS=2\n", {}, ".env", "2"),
        ("", {"WORKERS": "4"}, "the environment", "4"),
        ("", {"WORKERS": "auto"}, "the environment", "auto"),
        ("WORKERS=1\n", {"WORKERS": "3"}, "the environment", "3"),
    ],
)
def test_more_than_one_worker_is_refused_with_one_line(
    project, dev_server, env_file, environ, source, value
):
    (project / ".env").write_text(env_file)
    server = dev_server(**environ)
    assert server.process.wait(BOUND) == 1
    assert server.stderr.splitlines() == [
        f"reload: needs WORKERS=1 (one server process to restart), but {source} sets "
        f"WORKERS={value}"
    ]


def test_the_environment_saying_one_worker_wins_over_env(project, dev_server):
    (project / ".env").write_text("WORKERS=2\n")
    server = dev_server(WORKERS="1")
    server.wait_for_answer("first version")


def test_workers_set_above_one_in_a_changed_env_keeps_the_old_server(project, dev_server):
    server = dev_server()
    server.wait_for_answer("first version")
    old_pid = server.child_pid()
    (project / ".env").write_text("WORKERS=2\n")
    assert server.wait_for_reload_line(1) == [
        "reload: needs WORKERS=1 (one server process to restart), but .env sets WORKERS=2;"
        " still serving the previous version"
    ]
    assert server.child_pid() == old_pid


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_server_and_the_reloader_with_status_0(project, dev_server, number):
    server = dev_server()
    child = server.child_pid()
    server.process.send_signal(number)
    assert server.process.wait(BOUND) == 0
    assert not process_exists(child)
    assert server.reload_lines() == []


def test_a_crashed_server_is_reported_once_and_restarted_by_the_next_change(project, dev_server):
    (project / "views.py").write_text("raise RuntimeError('broken on purpose')\n")
    server = dev_server()
    [line] = server.wait_for_reload_line(1)
    assert line == "reload: main.py exited with status 1; waiting for a change to start it again"
    assert "RuntimeError: broken on purpose" in server.stderr  # the child's own traceback
    write_views(project, "repaired version")
    server.wait_for_answer("repaired version")
    assert server.reload_lines() == [line, "reload: views.py changed; restarting"]


def test_a_missing_script_is_refused_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "http_server.reload", "nothere.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(TEMPLATE_DIR)},
        capture_output=True,
        text=True,
        timeout=BOUND,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "reload: nothere.py not found (usage: python -m http_server.reload main.py)\n"
    )


# -- the parts, without a process ------------------------------------------------


def test_watched_files_are_the_python_files_and_env_outside_caches_venvs_and_media(tmp_path):
    for name in [
        "main.py",
        ".env",
        "pkg/module.py",
        "pkg/deep/more.py",
        "notes.txt",
        ".venv/lib/site.py",
        "venv2/pyvenv.cfg",
        "venv2/lib/x.py",
        "__pycache__/main.py",
        ".git/hook.py",
        "media/upload.py",
        "pkg/.env",
    ]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")
    (tmp_path / ".#main.py").symlink_to(tmp_path / "gone")  # an editor's lock file
    found = {os.path.relpath(path, tmp_path) for path in reload.watched_files(tmp_path)}
    assert found == {"main.py", ".env", "pkg/module.py", "pkg/deep/more.py"}


def test_added_modified_and_removed_files_are_changes(tmp_path):
    (tmp_path / "kept.py").write_text("a = 1\n")
    (tmp_path / "edited.py").write_text("b = 1\n")
    (tmp_path / "removed.py").write_text("c = 1\n")
    before = reload.watched_files(tmp_path)
    (tmp_path / "edited.py").write_text("b = 22\n")
    (tmp_path / "removed.py").unlink()
    (tmp_path / "added.py").write_text("d = 1\n")
    after = reload.watched_files(tmp_path)
    changed = {os.path.basename(path) for path in reload.changed_files(before, after)}
    assert changed == {"edited.py", "removed.py", "added.py"}
    assert reload.changed_files(after, reload.watched_files(tmp_path)) == set()


def test_a_file_replaced_by_a_rename_is_a_change_even_with_the_same_size_and_time(tmp_path):
    target = tmp_path / "views.py"
    target.write_text("a = 1\n")
    before = reload.watched_files(tmp_path)
    replacement = tmp_path / "views.py.new"
    replacement.write_text("a = 2\n")
    stat = target.stat()
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, target)
    assert reload.changed_files(before, reload.watched_files(tmp_path)) == {str(target)}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 1\n", None),
        ("def f(:\n", "syntax error in views.py line 1: invalid syntax"),
        ("if True:\nx = 1\n", "syntax error in views.py line 2: expected an indented block"),
        ("pattern = '\\d'\n", None),  # a SyntaxWarning is the child's to print
    ],
)
def test_syntax_errors_are_described_in_one_line(tmp_path, source, expected):
    (tmp_path / "views.py").write_text(source)
    error = reload.syntax_error(str(tmp_path / "views.py"), tmp_path)
    if expected is None:
        assert error is None
    else:
        assert error.startswith(expected)
        assert "\n" not in error


def test_env_is_read_as_python_dotenv_reads_the_settings_used_here(tmp_path):
    (tmp_path / ".env").write_text(
        "# a comment\n"
        "WORKERS=2 # two of them\n"
        "export GRACEFUL_TIMEOUT=3\n"
        "QUOTED='a # not a comment'\n"
        'DOUBLE="x"\n'
        "EMPTY=\n"
        "no equals sign\n"
    )
    assert reload.read_dotenv(tmp_path / ".env") == {
        "WORKERS": "2",
        "GRACEFUL_TIMEOUT": "3",
        "QUOTED": "a # not a comment",
        "DOUBLE": "x",
        "EMPTY": "",
    }
    assert reload.read_dotenv(tmp_path / "missing") == {}


@pytest.mark.parametrize(
    ("environ", "refused"),
    [
        ({}, False),
        ({"WORKERS": ""}, False),  # set but empty: the default, 1
        ({"WORKERS": "1"}, False),
        ({"WORKERS": "01"}, False),
        ({"WORKERS": "many"}, False),  # the child's settings say what is wrong
        ({"WORKERS": "2"}, True),
        ({"WORKERS": " AUTO "}, True),
    ],
)
def test_workers_other_than_one_forbid_reloading(tmp_path, environ, refused):
    assert (reload.workers_problem(tmp_path, environ) is not None) is refused


def test_a_stopping_child_gets_its_graceful_timeout_and_a_margin_before_it_is_killed(tmp_path):
    (tmp_path / ".env").write_text("GRACEFUL_TIMEOUT=2.5\n")
    assert reload.stop_timeout(tmp_path, {}) == 2.5 + reload.STOP_MARGIN
    assert reload.stop_timeout(tmp_path, {"GRACEFUL_TIMEOUT": "oops"}) == (
        reload.DEFAULT_GRACEFUL_TIMEOUT + reload.STOP_MARGIN
    )
