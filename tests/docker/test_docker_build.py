"""The generated service's image: layer caching, the other Python version, and where the
server listens inside the container."""

from __future__ import annotations

import uuid

import pytest
from docker_helpers import (
    ComposeProject,
    free_port,
    generate_service,
    http_get,
    image_id,
    run,
    set_env_file,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

PIP_RAN = "Successfully installed"  # pip's last line when the dependency layer is built


def test_code_change_does_not_reinstall_dependencies(tmp_path):
    # The non-default Python version on the way: its Dockerfile must build too.
    project_dir = generate_service(tmp_path, python_version="3.11")
    assert "ARG PYTHON_VERSION=3.11\n" in (project_dir / "Dockerfile").read_text()
    project = ComposeProject(project_dir / "docker-compose.yml", "app", tmp_path)
    built = set()  # every image built here, removed at the end (rebuilds leave them untagged)

    def build() -> str:
        result = project("build")
        built.add(image_id(f"{project.name}-app"))
        return result.stdout + result.stderr

    try:
        build()
        # A code change: every step after `COPY . .` runs again, pip's step does not.
        with open(project_dir / "views.py", "a") as views:
            views.write(f"\n# changed by the test {uuid.uuid4().hex}\n")
        assert PIP_RAN not in build()
        # A requirements change does reinstall (and shows that PIP_RAN is seen when it runs).
        with open(project_dir / "requirements.txt", "a") as requirements:
            requirements.write(f"# changed by the test {uuid.uuid4().hex}\n")
        assert PIP_RAN in build()
        assert len(built) == 3  # each change made a new image
    finally:
        project.down()
        run(["docker", "image", "rm", "--force", *built], check=False)


def test_server_listens_on_every_interface_in_the_container(tmp_path):
    """Compose sets HOST=0.0.0.0 even if .env says 127.0.0.1 (as it may for `make run`).

    The container has no network at all here (network_mode: none), so the check reads the
    listening sockets from inside it instead of connecting from outside.
    """
    project_dir = generate_service(tmp_path)
    set_env_file(project_dir, HOST="127.0.0.1")
    project = ComposeProject(project_dir / "docker-compose.yml", "app", tmp_path, network="none")
    try:
        project.up()  # healthy: the health check reached it on the container's loopback
        tcp = project("exec", "-T", "app", "cat", "/proc/net/tcp").stdout
        listening = {
            fields[1]
            for fields in (line.split() for line in tcp.splitlines()[1:])
            if fields[3] == "0A"  # TCP_LISTEN
        }
        assert f"00000000:{8080:04X}" in listening, f"listening sockets: {sorted(listening)}"
    finally:
        project.down()


def test_port_from_the_shell_moves_the_server_and_its_health_check(tmp_path):
    """`PORT=9000 docker compose up` (as `PORT=9000 make run`): the server, its health check
    and the mapping all use that port, while .env leaves PORT unset."""
    project_dir = generate_service(tmp_path)
    assert "\nPORT=" not in (project_dir / ".env").read_text()
    port = free_port()
    project = ComposeProject(
        project_dir / "docker-compose.yml", "app", tmp_path, shell={"PORT": str(port)}
    )
    try:
        project.up()
        assert http_get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        # Healthy, by a check that reads the PORT the server reads: the container's.
        assert project.inspect("{{.State.Health.Status}}") == "healthy"
        assert project("exec", "-T", "app", "printenv", "PORT").stdout.strip() == str(port)
    finally:
        project.down()
