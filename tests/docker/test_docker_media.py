"""The server writes into its media folder in the container: bind-mounted from a user's
checkout, from a checkout that root generated, and on a named volume.

The server runs as APP_UID:APP_GID from .env, which generating the project sets to the
generating user's ids (10001 for root, whose media/ is then given to 10001). The test adds
a view that writes a file to its own copy of the generated project (the template has none).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import requests
from docker_helpers import (
    ComposeProject,
    free_port,
    generate_service,
    server_uids,
    set_env_file,
    wait_http,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

# A user of the host who is not root, for the checkout of a non-root user when the tests
# run as root (the first user a Linux installation creates).
HOST_USER = (1000, 1000)

UPLOAD_VIEW = '''

def upload(request: Requests, response: Response, name: str) -> None:
    """PUT /upload/<name>: write the body into the media folder (added by the Docker tests)."""
    from pathlib import Path

    (Path(__file__).resolve().parent / "media" / name).write_bytes(request.body)
    response.sendJson({"written": name}, 201)
'''

UPLOAD_ROUTE = """
urlpatterns.append(
    Path(r"^/upload/(?P<name>[\\w.-]+)$", views.upload, name="upload", methods=["PUT"])
)
"""

NAMED_VOLUME = """\
services:
  app:
    volumes: !override
      - media:/app/media
volumes:
  media: {}
"""


def service_with_upload(output_dir: Path) -> Path:
    """The default generated service, plus PUT /upload/<name> that writes into media/."""
    project_dir = generate_service(output_dir)
    with open(project_dir / "views.py", "a") as views:
        views.write(UPLOAD_VIEW)
    with open(project_dir / "urls.py", "a") as urls:
        urls.write(UPLOAD_ROUTE)
    return project_dir


def checkout_of_a_non_root_user(output_dir: Path) -> tuple[Path, tuple[int, int]]:
    """A generated project as a non-root user has it, and that user's uid and gid.

    Run as a user, the hook wrote that user's ids into .env. Run as root, the test makes
    the checkout uid 1000's and writes what the hook writes for uid 1000.
    """
    project_dir = service_with_upload(output_dir)
    if os.getuid() != 0:
        return project_dir, (os.getuid(), os.getgid())
    uid, gid = HOST_USER
    for path in [project_dir, *project_dir.rglob("*")]:
        os.chown(path, uid, gid, follow_symlinks=False)
    set_env_file(project_dir, APP_UID=str(uid), APP_GID=str(gid))
    return project_dir, (uid, gid)


def compose_project(project_dir: Path, workdir: Path, extra_files=()) -> ComposeProject:
    """The project's compose project, on a free port (set in .env)."""
    port = free_port()
    set_env_file(project_dir, PORT=str(port))
    project = ComposeProject(
        project_dir / "docker-compose.yml", "app", workdir, extra_files=extra_files
    )
    project.port = port
    return project


def upload(project: ComposeProject, name: str, content: bytes) -> requests.Response:
    url = f"http://127.0.0.1:{project.port}/upload/{name}"
    with requests.Session() as session:
        session.trust_env = False
        return session.put(url, data=content, timeout=5)


def test_the_server_writes_into_a_bind_mounted_folder_of_a_non_root_user(tmp_path):
    project_dir, (uid, gid) = checkout_of_a_non_root_user(tmp_path)
    project = compose_project(project_dir, tmp_path)
    try:
        project.up()
        name, content = f"upload-{uuid.uuid4().hex}.txt", b"written by the server\n"
        response = upload(project, name, content)
        assert response.status_code == 201, response.text
        written = project_dir / "media" / name
        assert written.read_bytes() == content
        # The file in the checkout is the user's, as if they had written it themselves.
        assert (written.stat().st_uid, written.stat().st_gid) == (uid, gid)
        for pid, uids in server_uids(project).items():
            assert uids == [str(uid)] * 4, f"process {pid} runs with uids {uids}"
    finally:
        project.down()


def test_the_server_writes_into_the_media_folder_of_a_project_generated_by_root(tmp_path):
    if os.getuid() != 0:
        pytest.skip("a checkout that belongs to root needs the tests to run as root")
    project_dir = service_with_upload(tmp_path)
    assert project_dir.stat().st_uid == 0  # the checkout is root's
    env = (project_dir / ".env").read_text()
    assert "APP_UID=10001\n" in env and "APP_GID=10001\n" in env
    project = compose_project(project_dir, tmp_path)
    try:
        project.up()
        name, content = f"upload-{uuid.uuid4().hex}.txt", b"written by the server\n"
        response = upload(project, name, content)
        assert response.status_code == 201, response.text
        written = project_dir / "media" / name
        assert written.read_bytes() == content
        assert written.stat().st_uid == 10001  # the server's, never root's
        for pid, uids in server_uids(project).items():
            assert "0" not in uids, f"process {pid} runs with uids {uids}"
    finally:
        project.down()


def test_the_server_writes_into_a_named_volume(tmp_path):
    """The volume starts as a copy of the image's media/, which belongs to APP_UID."""
    project_dir, _ = checkout_of_a_non_root_user(tmp_path)
    named_volume = tmp_path / "compose.named-volume.yml"
    named_volume.write_text(NAMED_VOLUME)
    project = compose_project(project_dir, tmp_path, extra_files=(named_volume,))
    try:
        project.up()
        name, content = f"upload-{uuid.uuid4().hex}.txt", b"kept in the volume\n"
        response = upload(project, name, content)
        assert response.status_code == 201, response.text
        served = wait_http(f"http://127.0.0.1:{project.port}/media/{name}")
        assert (served.status_code, served.content) == (200, content)
        assert not (project_dir / "media" / name).exists()  # in the volume, not the checkout
    finally:
        project.down()
