"""Every combination of the template's options generates a clean, complete project."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from http_server import config
from template_helpers import (
    BIN_DIR,
    FRAMEWORK_DIR,
    ROOT,
    TEMPLATE_DIR,
    clean_environment,
    copy_template,
    generate_project,
    load_hook,
)

CONTEXT = json.loads((ROOT / "cookiecutter.json").read_text())
PROMPTS = {name: value for name, value in CONTEXT.items() if not name.startswith("_")}
CHOICES = {name: value for name, value in PROMPTS.items() if isinstance(value, list)}
FLAGS = [name for name, value in PROMPTS.items() if isinstance(value, bool)]

# Every project has these (the Dockerfile, .dockerignore and docker-compose.yml
# come from the Docker work, the rest from this template), plus the framework.
SERVICE_FILES = {
    ".cookiecutter.json",
    ".dockerignore",
    ".env",
    ".env.example",
    ".gitattributes",
    ".gitignore",
    ".pre-commit-config.yaml",
    "Dockerfile",
    "LICENSE",
    "Makefile",
    "README.md",
    "docker-compose.yml",
    "docker-stack.yml",
    "main.py",
    "media/hello.txt",
    "middleware.py",
    "pyproject.toml",
    "requirements-dev.txt",
    "requirements.txt",
    "settings.py",
    "tests/conftest.py",
    "tests/test_live.py",
    "tests/test_settings.py",
    "tests/test_views.py",
    "urls.py",
    "views.py",
}
# What each yes/no option adds when chosen.
OPTIONAL_FILES = {
    "use_github_actions": {".github/workflows/ci.yml", ".github/dependabot.yml"},
    "kubernetes": {
        f"deploy/kubernetes/{name}"
        for name in [
            "deployment.yaml",
            "hpa.yaml",
            "kustomization.yaml",
            "pdb.yaml",
            "service.yaml",
            "settings.env",
            "shared-media/kustomization.yaml",
            "shared-media/pvc.yaml",
        ]
    },
}
# Template syntax that must never reach a generated file ("cookiecutter.json"
# is a file name the README may mention, not a variable).
LEFTOVER = re.compile(r"\{\{|\{%|\{#|cookiecutter\.(?!json\b)")
LICENSE_FIRST_WORDS = {
    "MIT": "MIT License",
    "Apache-2.0": "Apache License",
    "BSD-3-Clause": "BSD 3-Clause License",
    "Proprietary": "Copyright (c)",
}


def all_combinations() -> list[dict[str, object]]:
    """Every value of every choice, crossed with yes and no for every flag."""
    names = [*CHOICES, *FLAGS]
    values = [*CHOICES.values(), *([True, False] for _ in FLAGS)]
    return [
        dict(zip(names, combination, strict=True)) for combination in itertools.product(*values)
    ]


COMBINATIONS = all_combinations()


def combination_id(answers: dict[str, object]) -> str:
    return "-".join(
        (name if value else f"no_{name}") if isinstance(value, bool) else str(value)
        for name, value in answers.items()
    )


def framework_files() -> set[str]:
    return {
        path.relative_to(FRAMEWORK_DIR.parent).as_posix()
        for path in FRAMEWORK_DIR.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def files_in(project: Path) -> set[str]:
    return {path.relative_to(project).as_posix() for path in project.rglob("*") if path.is_file()}


@pytest.fixture(scope="module", params=COMBINATIONS, ids=combination_id)
def generated(request, tmp_path_factory, cookiecutter_config):
    """(answers, project folder) for one combination, generated once for this module."""
    answers = request.param
    output = tmp_path_factory.mktemp("combination")
    return answers, generate_project(output, cookiecutter_config, **answers)


def test_the_combinations_cover_every_choice_and_flag():
    for name, values in CHOICES.items():
        assert {answers[name] for answers in COMBINATIONS} == set(values)
    for name in FLAGS:
        assert {answers[name] for answers in COMBINATIONS} == {True, False}
    assert set(OPTIONAL_FILES) == set(FLAGS), "every yes/no option lists the files it adds"


def test_generates_exactly_the_expected_files(generated):
    answers, project = generated
    expected = SERVICE_FILES | framework_files()
    for flag, paths in OPTIONAL_FILES.items():
        if answers[flag]:
            expected |= paths
    assert files_in(project) == expected


def test_no_template_syntax_is_left_outside_the_framework(generated):
    _, project = generated
    for name in sorted(files_in(project)):
        if name.startswith("http_server/"):
            continue
        text = (project / name).read_text(encoding="utf-8")
        match = LEFTOVER.search(text)
        assert match is None, f"{name}: {match.group()!r} left at offset {match.start()}"


def test_the_framework_is_copied_byte_for_byte(generated):
    _, project = generated
    for name in framework_files():
        assert (project / name).read_bytes() == (FRAMEWORK_DIR.parent / name).read_bytes(), name


def test_the_answers_are_saved_as_a_replay_file(generated):
    answers, project = generated
    saved = json.loads((project / ".cookiecutter.json").read_text())["cookiecutter"]
    assert not [key for key in saved if key.startswith("_")]
    assert set(saved) == set(PROMPTS)
    for name, value in answers.items():
        assert saved[name] == value


def test_the_license_is_the_chosen_one(generated):
    answers, project = generated
    text = (project / "LICENSE").read_text()
    assert text.strip().startswith(LICENSE_FIRST_WORDS[answers["license"]])
    assert "Your Name" in text and text.endswith("\n")
    assert answers["license"] in (project / "README.md").read_text()


def test_the_chosen_python_version_and_log_format_are_used(generated):
    answers, project = generated
    version = answers["python_version"]
    assert f"ARG PYTHON_VERSION={version}" in (project / "Dockerfile").read_text()
    assert f'"LOG_FORMAT": "{answers["log_format"]}"' in (project / "settings.py").read_text()
    workflow = project / ".github" / "workflows" / "ci.yml"
    if workflow.exists():
        steps = yaml.safe_load(workflow.read_text())["jobs"]["test"]["steps"]
        assert {"run": "make lint test"} in steps
        assert steps[1]["with"]["python-version"] == version


def test_passes_ruff_check(generated):
    _, project = generated
    result = subprocess.run(
        [str(BIN_DIR / "ruff"), "check", "--no-cache", "."],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_is_formatted_as_ruff_format_would(generated):
    _, project = generated
    result = subprocess.run(
        [str(BIN_DIR / "ruff"), "format", "--check", "--no-cache", "."],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- one project each --------------------------------------------------------


def test_project_is_derived_from_project_name(bake):
    project = bake(project_name="Billing API-v2")
    assert project.name == "billing_api_v2"
    assert (project / "README.md").read_text().startswith("# Billing API-v2\n")


def test_env_is_written_from_the_example_with_the_generating_users_ids(bake):
    project = bake()
    uid, gid = load_hook("post_gen_project").container_user(os.getuid(), os.getgid())
    example = (project / ".env.example").read_text()
    assert "# APP_UID=" in example and "# APP_GID=" in example
    expected = re.sub(r"^# APP_UID=.*$", f"APP_UID={uid}", example, flags=re.MULTILINE)
    expected = re.sub(r"^# APP_GID=.*$", f"APP_GID={gid}", expected, flags=re.MULTILINE)
    assert (project / ".env").read_text() == expected


def test_the_project_ships_the_framework_api_reference(bake):
    project = bake()
    reference = (project / "http_server" / "README.md").read_text()
    assert reference.startswith("# `http_server` API reference\n")
    assert "`http_server/README.md` is its API reference" in (project / "README.md").read_text()
    assert "docs/api.md" not in (project / "README.md").read_text()


def imports_shown_in(markdown: str) -> list[str]:
    """Every ``from http_server... import ...`` in ``markdown``: inline code and code lines."""
    inline = re.findall(r"`(from http_server[\w.]* import [^`]+)`", markdown)
    lines = re.findall(r"^from http_server[\w.]* import .+$", markdown, re.MULTILINE)
    return [" ".join(statement.split()) for statement in [*inline, *lines]]


def test_every_import_the_docs_show_works_in_the_project(bake):
    project = bake()
    statements = [
        *imports_shown_in((project / "http_server" / "README.md").read_text()),
        *imports_shown_in((project / "README.md").read_text()),
    ]
    assert "from http_server import HTTPError" in statements
    result = subprocess.run(
        [sys.executable, "-c", "\n".join(statements)],
        cwd=project,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


# The pages a user of the template or of a generated service reads.
USER_DOCS = [ROOT / "README.md", TEMPLATE_DIR / "README.md", FRAMEWORK_DIR / "README.md"]


@pytest.mark.parametrize("page", USER_DOCS, ids=lambda page: str(page.relative_to(ROOT)))
def test_the_user_docs_never_use_the_word_seed(page):
    # "The seed" was the framework's first version, a name its readers cannot know.
    assert "seed" not in page.read_text().lower()


def test_env_example_and_readme_document_every_setting(bake):
    project = bake()
    example = (project / ".env.example").read_text()
    readme = (project / "README.md").read_text()
    for name in config.SETTINGS:
        assert re.search(rf"^# {name.upper()}=", example, re.MULTILINE), name
        assert f"| `{name.upper()}` |" in readme, name


def test_env_example_sets_nothing_so_the_container_keeps_its_host(bake):
    # Compose passes .env into the container: an active HOST=127.0.0.1 there
    # would make the service unreachable. Every line is a comment.
    project = bake()
    lines = (project / ".env.example").read_text().splitlines()
    assert all(line == "" or line.startswith("#") for line in lines)


def test_the_makefile_lists_every_task_by_default(bake):
    project = bake()
    result = subprocess.run(["make"], cwd=project, capture_output=True, text=True, check=True)
    for task in [
        "install",
        "run",
        "test",
        "lint",
        "format",
        "docker-build",
        "up",
        "down",
        "logs",
        "clean",
        "help",
    ]:
        assert f"make {task} " in result.stdout, task


def test_a_jinja_tag_inside_a_framework_file_survives_generation(bake, tmp_path):
    template = copy_template(tmp_path / "template")
    probe = (
        "# {{ not_a_variable }} {% if x %}{# a comment #}\nTEXT = '{{ cookiecutter.project }}'\n"
    )
    (template / "{{cookiecutter.project}}" / "http_server" / "_jinja_probe.py").write_text(probe)
    project = bake(template=template)
    assert (project / "http_server" / "_jinja_probe.py").read_text() == probe


def test_caches_in_the_template_checkout_do_not_reach_the_project(bake, tmp_path):
    template = copy_template(tmp_path / "template")
    folder = template / "{{cookiecutter.project}}"
    binary = bytes(range(256)) * 4
    for cache in [
        ".ruff_cache/0.17/123",
        "__pycache__/main.cpython-311.pyc",
        "http_server/__pycache__/app.cpython-311.pyc",
        ".pytest_cache/v/x",
    ]:
        (folder / cache).parent.mkdir(parents=True, exist_ok=True)
        (folder / cache).write_bytes(binary)
    project = bake(template=template)
    assert (
        files_in(project)
        == SERVICE_FILES | framework_files() | OPTIONAL_FILES["use_github_actions"]
    )


def test_answers_with_quotes_and_backslashes_are_data_not_code(bake):
    name = 'Evil """ \'\'\' \\ {{ 7 }}"); raise SystemExit(3) #'
    project = bake(project_name=name, project="evil", description='a "quoted" \\ text')
    saved = json.loads((project / ".cookiecutter.json").read_text())["cookiecutter"]
    assert saved["project"] == "evil"
    assert saved["description"] == 'a "quoted" \\ text'


def test_replay_file_regenerates_the_same_project(bake, tmp_path, cookiecutter_config):
    from cookiecutter.main import cookiecutter

    first = bake(
        project_name="Replay Me",
        port=9100,
        license="BSD-3-Clause",
        log_format="json",
        use_github_actions=False,
    )
    again = cookiecutter(
        str(ROOT),
        replay=str(first / ".cookiecutter.json"),
        output_dir=str(tmp_path / "again"),
        config_file=cookiecutter_config,
    )
    again = Path(again)
    assert again.name == first.name == "replay_me"
    assert files_in(again) == files_in(first)
    for name in files_in(first):
        assert (again / name).read_bytes() == (first / name).read_bytes(), name
