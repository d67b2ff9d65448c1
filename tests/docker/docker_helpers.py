"""Helpers for the Docker tests: commands, compose projects, images (see conftest.py)."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import requests
from support.ports import free_port  # noqa: F401 - the Docker tests take it from here

ROOT = Path(__file__).resolve().parents[2]

# Figures measured by the tests and skip reasons, printed in the terminal summary.
FIGURES: dict[str, str] = {}
SKIP_REASONS: set[str] = set()


def run(args, *, cwd=None, timeout=300, check=True, env=None) -> subprocess.CompletedProcess:
    """Run a command, capture its output; on failure the assertion shows the output."""
    result = subprocess.run(args, cwd=cwd, timeout=timeout, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


@functools.cache
def compose_problem() -> str | None:
    """Why `docker compose` cannot be used (None when it can); needs no engine."""
    if shutil.which("docker") is None:
        return "the docker command is not installed"
    try:
        result = run(["docker", "compose", "version", "--short"], check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return "`docker compose version` did not answer in 30 s"
    if result.returncode != 0:
        return "Docker Compose v2 is not installed (`docker compose version` failed)"
    return None


@functools.cache
def engine_problem() -> str | None:
    """Why no Docker engine can be used (None when one can)."""
    problem = compose_problem()
    if problem:
        return f"no Docker engine reachable: {problem}"
    try:
        result = run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return "no Docker engine reachable: `docker info` did not answer in 30 s"
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        where = os.environ.get("DOCKER_HOST", "the default socket")
        return f"no Docker engine reachable: `docker info` at {where} failed: {lines[-1]}"
    return None


def base_images() -> list[str]:
    """The base images the template's Dockerfiles can start FROM: one per python_version."""
    choice = json.loads((ROOT / "cookiecutter.json").read_text())["python_version"]
    versions = choice if isinstance(choice, list) else [choice]
    return [f"python:{version}-slim" for version in versions]


def missing_images_problem(images: list[str]) -> str | None:
    """Why these images cannot be built on (None when each is in the engine or was pulled)."""
    failures = []
    for image in images:
        if run(["docker", "image", "inspect", image], check=False, timeout=60).returncode == 0:
            continue
        try:
            pulled = run(["docker", "pull", "--quiet", image], check=False, timeout=600)
        except subprocess.TimeoutExpired:
            failures.append(f"{image} (`docker pull` did not finish in 600 s)")
            continue
        if pulled.returncode != 0:
            lines = (pulled.stderr or pulled.stdout).strip().splitlines() or ["no output"]
            failures.append(f"{image} (`docker pull`: {lines[-1]})")
    if not failures:
        return None
    return "base image not in the engine and not pullable: " + "; ".join(failures)


@functools.cache
def docker_problem() -> str | None:
    """Why the Docker tests cannot run (None when they can): no engine, or no base image."""
    return engine_problem() or missing_images_problem(base_images())


def generate_service(output_dir: Path, **extra_context) -> Path:
    """Render the template (cookiecutter's API, default answers) and return the project."""
    from cookiecutter.main import cookiecutter

    return Path(
        cookiecutter(
            str(ROOT), no_input=True, output_dir=str(output_dir), extra_context=extra_context
        )
    )


def set_env_file(project_dir: Path, **settings: str) -> None:
    """Put these settings into the project's .env (other lines are kept)."""
    env_file = project_dir / ".env"
    lines = env_file.read_text().splitlines() if env_file.exists() else []
    lines = [line for line in lines if line.split("=", 1)[0].strip() not in settings]
    lines += [f"{name}={value}" for name, value in settings.items()]
    env_file.write_text("\n".join(lines) + "\n")


class ComposeProject:
    """One compose project with a unique name, over a compose file and a test override.

    The override keeps everything on loopback: host networking for the build (this engine
    has no bridge) and for the container, no published ports, HOST=127.0.0.1, and no
    restart policy (an engine restart must not bring a test container back).
    """

    def __init__(
        self,
        compose_file: Path,
        service: str,
        workdir: Path,
        *,
        network="host",
        environment: dict[str, str] | None = None,
        shell: dict[str, str] | None = None,
        extra_files: tuple[Path, ...] = (),
    ) -> None:
        """``environment``: the service's, in the override; ``shell``: added to the
        environment of `docker compose` itself (what ``${VAR}`` in the compose file reads);
        ``extra_files``: more compose files, after the override."""
        self.compose_file = compose_file
        self.service = service
        self.shell = {**os.environ, **(shell or {})}
        self.extra_files = extra_files
        self.name = f"t{uuid.uuid4().hex[:10]}"
        self.override = workdir / f"compose.{self.name}.yml"
        env = {"HOST": "127.0.0.1"} if network == "host" else {}
        env.update(environment or {})
        env_lines = "".join(f'      {key}: "{value}"\n' for key, value in env.items())
        self.override.write_text(
            "services:\n"
            f"  {service}:\n"
            "    build:\n"
            "      network: host\n"
            f"    network_mode: {network}\n"
            "    ports: !reset []\n"
            '    restart: "no"\n' + ("    environment:\n" + env_lines if env_lines else "")
        )

    def __call__(self, *args, check=True, timeout=600) -> subprocess.CompletedProcess:
        return run(
            [
                "docker",
                "compose",
                "--progress",
                "plain",
                "-p",
                self.name,
                "-f",
                str(self.compose_file),
                "-f",
                str(self.override),
                *(arg for path in self.extra_files for arg in ("-f", str(path))),
                *args,
            ],
            check=check,
            timeout=timeout,
            env=self.shell,
        )

    def up(self) -> None:
        result = self("up", "--build", "--detach", "--wait", "--wait-timeout", "180", check=False)
        if result.returncode != 0:
            logs = self("logs", "--no-color", check=False).stdout[-4000:]
            raise AssertionError(
                f"docker compose up --wait failed\n{result.stderr[-4000:]}\n--- logs\n{logs}"
            )

    def down(self) -> None:
        self("down", "-v", "--rmi", "local", "--timeout", "5", check=False)

    def container(self) -> str:
        ids = self("ps", "-q", "--all", self.service).stdout.split()
        assert len(ids) == 1, f"expected one {self.service} container, got {ids}"
        return ids[0]

    def inspect(self, template: str) -> str:
        return inspect(self.container(), template)

    def logs(self) -> str:
        return self("logs", "--no-color", "--no-log-prefix", self.service).stdout


# Run in the container with `python -c`: the uids of every process of the server
# (`python main.py`), one line each: "pid real effective saved fs".
SERVER_UIDS = """
import os
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
        status = open(f"/proc/{pid}/status").read().splitlines()
    except OSError:
        continue
    if b"main.py" in argv:
        print(pid, *[line.split()[1:] for line in status if line.startswith("Uid:")][0])
"""


def server_uids(project: ComposeProject) -> dict[str, list[str]]:
    """The uids (real, effective, saved, fs) of each server process, by pid."""
    out = project("exec", "-T", project.service, "python", "-c", SERVER_UIDS).stdout
    processes = {pid: uids for pid, *uids in (line.split() for line in out.splitlines())}
    assert processes, f"no `python main.py` process found in the container:\n{out}"
    return processes


def inspect(container: str, template: str) -> str:
    """`docker inspect -f template container`."""
    return run(["docker", "inspect", "-f", template, container]).stdout.strip()


def http_get(url: str) -> requests.Response:
    """GET straight to the container: proxy settings of the environment are ignored."""
    assert url.startswith("http://127.0.0.1:"), url  # containers are reached on loopback only
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, timeout=5)


def wait_http(url: str, timeout: float = 30) -> requests.Response:
    """GET url until it answers (the container may still be starting its workers)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return http_get(url)
        except (requests.ConnectionError, requests.Timeout):  # starting, or not serving yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def image_id(image: str) -> str:
    return run(["docker", "image", "inspect", "-f", "{{.Id}}", image]).stdout.strip()


def image_size(image: str) -> int:
    return int(run(["docker", "image", "inspect", "-f", "{{.Size}}", image]).stdout)


def image_config(image: str) -> dict:
    return json.loads(run(["docker", "image", "inspect", "-f", "{{json .Config}}", image]).stdout)


def base_image(dockerfile: Path) -> str:
    """The FROM image of a Dockerfile that starts ARG PYTHON_VERSION=X, FROM python:X-slim."""
    match = re.search(r"^ARG PYTHON_VERSION=(\S+)$", dockerfile.read_text(), re.MULTILINE)
    assert match, f"no ARG PYTHON_VERSION=... in {dockerfile}"
    return f"python:{match.group(1)}-slim"


def python_in_image(image: str, code: str) -> str:
    """Run Python code in a throw-away container of the image (no network); its stdout."""
    args = ["docker", "run", "--rm", "--network", "none", image, "python", "-c", code]
    return run(args).stdout
