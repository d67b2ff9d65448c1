"""The real thing, slowly: generated projects pass their own `make test` and `make lint`,
and `make run` serves a service, in a generated project and in the template repository.

Each `make test` in a fresh project creates its .venv and installs requirements-dev.txt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import requests
from support.ports import free_port
from template_helpers import ROOT, clean_environment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def run_make(project, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", *targets],
        cwd=project,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=840,
    )


def assert_make_test_then_lint_pass(project) -> None:
    """`make test` on a fresh project (it builds .venv first), then `make lint`."""
    for target in ["test", "lint"]:
        result = run_make(project, target)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        if target == "test":
            assert " passed" in result.stdout
            assert (project / ".venv" / ".installed").exists()


def test_the_default_project_passes_make_test_and_lint_and_make_run_and_make_dev_serve_it(bake):
    project = bake()
    assert_make_test_then_lint_pass(project)
    # .venv exists now, so `make run` and `make dev` start at once.
    assert serve_with_make(["make", "run"], project).text == "hello world !"
    assert_make_dev_serves_an_edit(project)


def git(folder, *arguments: str) -> str:
    identity = ["-c", "user.name=Template Test", "-c", "user.email=test@example.com"]
    return subprocess.run(
        ["git", *identity, *arguments], cwd=folder, check=True, capture_output=True, text=True
    ).stdout


def test_a_fresh_clone_of_a_non_default_project_passes_make_test_and_lint(bake, tmp_path):
    project = bake(
        project_name="Billing API",
        port=9123,
        python_version="3.11",
        license="Apache-2.0",
        log_format="json",
        use_github_actions=False,
    )
    assert project.name == "billing_api"
    git(project, "init", "--quiet")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "generated")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(project), str(clone))
    # .env stays local (ignored); everything the service and its tests need is in git.
    assert not (clone / ".env").exists()
    assert (clone / "media" / "hello.txt").exists()
    assert git(clone, "check-attr", "eol", "--", "main.py").strip().endswith("eol: lf")

    assert_make_test_then_lint_pass(clone)
    # .venv and the caches that make test and lint leave are ignored.
    assert git(clone, "status", "--porcelain", "--untracked-files=all") == ""


def serve_with_make(command: list[str], folder) -> requests.Response:
    """Start ``command`` (a `make run`) on a free port, GET / once it answers, then stop it."""
    port = free_port()
    process = subprocess.Popen(
        command,
        cwd=folder,
        env=clean_environment(PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, to stop make and the server together
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                return requests.get(f"http://127.0.0.1:{port}/", timeout=2)
            except (requests.ConnectionError, requests.Timeout):  # not serving yet
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "make run did not serve within 120 s"
                time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_make_run_renders_the_default_service_and_serves_it(tmp_path):
    run_dir = tmp_path / "run"
    response = serve_with_make(["make", "run", f"RUN_DIR={run_dir}"], ROOT)
    assert response.text == "hello world !"
    assert (run_dir / "my_service" / "main.py").exists()


def wait_for_answer(url: str, expected: str, process: subprocess.Popen, log) -> float:
    """Seconds until GET ``url`` answers ``expected`` (a generous bound: 120 s)."""
    started = time.monotonic()
    while True:
        try:
            if requests.get(url, timeout=2).text == expected:
                return time.monotonic() - started
        except (requests.ConnectionError, requests.Timeout):  # restarting, or not serving yet
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() - started < 120, f"no {expected!r} within 120 s:\n{log.read_text()}"
        time.sleep(0.2)


def assert_make_dev_serves_an_edit(project) -> None:
    """`make dev` serves the project, then its edited view; Ctrl-C leaves no process behind."""
    port = free_port()
    log = project / "make-dev.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            ["make", "dev"],
            cwd=project,
            env=clean_environment(PORT=str(port)),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's job is
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_answer(url, "hello world !", process, log)
        views = project / "views.py"
        views.write_text(views.read_text().replace('"hello world !"', '"hello from make dev"'))
        seconds = wait_for_answer(url, "hello from make dev", process, log)
        print(f"make dev: edit to new answer in {seconds:.2f} s")
        assert "reload: views.py changed; restarting" in log.read_text()
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's job
        process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while process_group_exists(process.pid):
            assert time.monotonic() < deadline, "make dev left a process behind"
            time.sleep(0.1)
    finally:
        if process_group_exists(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def process_group_exists(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
