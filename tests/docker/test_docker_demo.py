"""The template repository's own demo: `docker compose up` at the root renders the default
service and serves it, healthy (on 8080; here on a free port, see below)."""

from __future__ import annotations

import pytest
from docker_helpers import (
    ROOT,
    ComposeProject,
    free_port,
    http_get,
    image_config,
    image_size,
    wait_http,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]


def test_root_demo_comes_up_healthy(tmp_path, figures):
    # 8080 may be taken on a developer's machine (`make run`): with host networking the
    # test moves the server to a free port as a user would (`PORT=... docker compose up`);
    # the image's own default is checked below.
    port = free_port()
    project = ComposeProject(
        ROOT / "docker-compose.yml", "demo", tmp_path, shell={"PORT": str(port)}
    )
    try:
        project.up()
        assert project.inspect("{{.State.Health.Status}}") == "healthy"
        response = wait_http(f"http://127.0.0.1:{port}/")
        assert response.status_code == 200 and "hello" in response.text
        assert http_get(f"http://127.0.0.1:{port}/healthz").status_code == 200

        image = project.inspect("{{.Image}}")
        config = image_config(image)
        assert "PORT=8080" in config["Env"] and "HOST=0.0.0.0" in config["Env"]
        assert "8080/tcp" in config["ExposedPorts"]
        figures["root demo image size"] = f"{image_size(image) / 1e6:.1f} MB"
    finally:
        project.down()
