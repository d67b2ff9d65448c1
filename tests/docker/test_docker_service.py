"""The generated service under a real Docker engine: `docker compose up --wait`, then real
requests over 127.0.0.1, the user it runs as, and a graceful `docker compose stop`.

The tests in this module share one running compose project and run in file order; the
stop test comes last.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from docker_helpers import (
    ComposeProject,
    base_image,
    free_port,
    generate_service,
    http_get,
    image_config,
    image_size,
    inspect,
    python_in_image,
    run,
    server_uids,
    set_env_file,
    wait_http,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

LITTER = [
    ".git/HEAD",
    ".venv/pyvenv.cfg",
    "__pycache__/views.cpython-311.pyc",
    ".pytest_cache/README.md",
    ".ruff_cache/x",
    "htmlcov/index.html",
    ".coverage",
]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The default generated service, up and healthy, with .env setting PORT and LOG_FORMAT."""
    project_dir = generate_service(tmp_path_factory.mktemp("generated"))
    # What a developer's working copy holds and .dockerignore must keep out of the image.
    for litter in LITTER:
        (project_dir / litter).parent.mkdir(parents=True, exist_ok=True)
        (project_dir / litter).write_text("must not reach the image\n")
    port = free_port()
    set_env_file(project_dir, PORT=str(port), LOG_FORMAT="json")
    project = ComposeProject(project_dir / "docker-compose.yml", "app", project_dir.parent)
    project.port = port
    project.dir = project_dir
    project.base_image = base_image(project_dir / "Dockerfile")
    try:
        project.up()
        yield project
    finally:
        project.down()


def test_hello(service):
    response = wait_http(f"http://127.0.0.1:{service.port}/")
    assert response.status_code == 200
    assert "hello" in response.text


def test_health(service):
    response = http_get(f"http://127.0.0.1:{service.port}/healthz")
    assert response.status_code == 200
    # The container's own HEALTHCHECK (on the PORT from .env) says so too.
    assert service.inspect("{{.State.Health.Status}}") == "healthy"


def test_media_folder_on_the_host_is_served(service):
    name = f"dropped-{uuid.uuid4().hex}.txt"
    content = f"put on the host at {time.time()}\n"
    (service.dir / "media" / name).write_text(content)
    response = http_get(f"http://127.0.0.1:{service.port}/media/{name}")
    assert response.status_code == 200
    assert response.text == content


def test_env_file_settings_take_effect(service):
    # PORT: the service answered on the port from .env above (not the default 8080).
    assert service.port != 8080
    # LOG_FORMAT=json: the access log line of this request is a JSON object.
    marker = f"/no-such-page-{uuid.uuid4().hex}"
    assert http_get(f"http://127.0.0.1:{service.port}{marker}").status_code == 404
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in service.logs().splitlines() if marker in line]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert lines, "the request never reached the access log"
    record = json.loads(lines[0])
    assert record["status"] == 404
    assert marker in json.dumps(record)


def test_server_process_is_not_root(service):
    for pid, uids in server_uids(service).items():
        assert all(uid != "0" for uid in uids), f"process {pid} runs with uids {uids}"


def test_image_user_owns_the_media_folder(service):
    image = service.inspect("{{.Image}}")
    code = "import os; print(os.getuid(), os.stat('/app/media').st_uid)"
    out = python_in_image(image, code).split()
    assert out[0] != "0" and out[0] == out[1], f"uid, owner of /app/media: {out}"


def test_image_configuration(service):
    image = service.inspect("{{.Image}}")
    config = image_config(image)
    expected = {
        "PYTHONUNBUFFERED=1",
        "PYTHONDONTWRITEBYTECODE=1",
        "HOST=0.0.0.0",
        "PORT=8080",
        "MALLOC_ARENA_MAX=2",  # glibc gives memory freed by the threads back (Dockerfile)
    }
    assert expected <= set(config["Env"])
    assert list(config["ExposedPorts"]) == ["8080/tcp"]
    assert config["Cmd"] == ["python", "main.py"]  # exec form: python gets the signals
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert config["User"].split(":")[0] not in ("", "0", "root")


def test_dockerignore_keeps_local_files_out(service):
    image = service.inspect("{{.Image}}")
    paths = [".env", *LITTER]
    out = python_in_image(image, f"import os; print([p for p in {paths!r} if os.path.exists(p)])")
    assert out.strip() == "[]"
    assert (service.dir / ".env").exists()  # it was there to be kept out


def test_server_as_pid_1_stops_gracefully_too(service, figures):
    """Without compose's init (plain `docker run`, Kubernetes) the server is PID 1 and must
    handle SIGTERM itself: the kernel gives PID 1 no default action for it."""
    image = service.inspect("{{.Image}}")
    container = run(["docker", "run", "--detach", "--network", "none", image]).stdout.strip()
    try:
        deadline = time.monotonic() + 60
        while (health := inspect(container, "{{.State.Health.Status}}")) != "healthy":
            assert health == "starting" and time.monotonic() < deadline, health
            time.sleep(0.5)
        started = time.monotonic()
        run(["docker", "stop", container])
        seconds = time.monotonic() - started
        figures["docker stop, server as PID 1 (no init)"] = f"{seconds:.2f} s"
        assert inspect(container, "{{.State.ExitCode}}") == "0"
        assert seconds < 5, f"stop took {seconds:.1f} s"
    finally:
        run(["docker", "rm", "--force", container], check=False)


def test_stop_is_graceful_and_quick(service, figures):
    """Last in the module: stops the service. Also records the figures for the lead."""
    image = service.inspect("{{.Image}}")
    size, base = image_size(image), image_size(service.base_image)
    figures["generated image size"] = (
        f"{size / 1e6:.1f} MB (base {service.base_image} {base / 1e6:.1f} MB + "
        f"{(size - base) / 1e6:.1f} MB of ours)"
    )
    started = time.monotonic()
    service("stop")  # Docker's default: SIGTERM, then SIGKILL after 10 s
    seconds = time.monotonic() - started
    figures["docker compose stop (idle service)"] = f"{seconds:.2f} s"
    assert service.inspect("{{.State.Status}}") == "exited"
    assert service.inspect("{{.State.ExitCode}}") == "0", service.logs()[-2000:]
    assert seconds < 5, f"stop took {seconds:.1f} s: SIGTERM is not handled promptly"
