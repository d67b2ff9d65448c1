"""What keeps a generated service healthy over time: LF files on every platform, an image
with nothing architecture-specific, a least-privilege CI with pinned actions, Dependabot,
and a pre-commit configuration that `make lint` runs too and a fresh project passes.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from template_helpers import (
    BIN_DIR,
    ROOT,
    clean_environment,
    commit_all,
    copy_template,
    git,
    template_repository,
)

PROJECT = "{{cookiecutter.project}}"


def project_files(project: Path) -> dict[str, bytes]:
    return {
        path.relative_to(project).as_posix(): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def with_carriage_returns(files: dict[str, bytes]) -> list[str]:
    return [name for name, data in files.items() if b"\r" in data]


# -- line endings and platforms -------------------------------------------------------------


def test_a_template_cloned_with_autocrlf_still_generates_only_lf_files(bake, tmp_path):
    # What a Windows user with git's default core.autocrlf=true gets from `git clone`.
    template = template_repository(tmp_path / "template")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", "--config", "core.autocrlf=true", str(template), str(clone))
    assert git(clone, "config", "core.autocrlf").strip() == "true"
    files = project_files(bake(template=clone))
    assert "LICENSE" in files and "http_server/__init__.py" in files
    assert with_carriage_returns(files) == []


def test_a_crlf_copy_of_the_template_still_renders_lf_files(bake, tmp_path):
    # A copy made outside git (an archive unpacked on Windows): cookiecutter would write each
    # rendered file with the line ending of its template; _new_lines makes it LF. The
    # framework is copied byte for byte, unrendered, so only git's checkout can fix it.
    template = copy_template(tmp_path / "template")
    for path in (template / PROJECT).rglob("*"):
        if path.is_file() and "http_server" not in path.parts:
            path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    files = project_files(bake(template=template))
    rendered = {name: data for name, data in files.items() if not name.startswith("http_server/")}
    assert "Makefile" in rendered and ".env" in rendered
    assert with_carriage_returns(rendered) == []


def test_the_project_tells_git_to_keep_every_text_file_lf(bake):
    rules = (bake() / ".gitattributes").read_text().splitlines()
    assert "* text=auto eol=lf" in rules


def test_the_project_has_no_shell_script_that_a_crlf_could_break(bake):
    for name, data in project_files(bake()).items():
        assert not name.endswith((".sh", ".bash")), name
        assert not data.startswith(b"#!"), name


# Architecture names, and the tools that would download a binary built for one of them.
ARCHITECTURE_SPECIFIC = re.compile(r"amd64|x86[_-]64|i[3-6]86|aarch64|arm64|armv\d|--platform")
DOWNLOADS = re.compile(r"\b(curl|wget)\b|^\s*ADD\s+\S*://", re.MULTILINE)
# The official Python image is published for amd64, arm64 and more under one tag.
BASE_IMAGE = re.compile(r"FROM python:\S+( AS \w+)?")


def architecture_problems(dockerfile: str) -> list[str]:
    """What would stop the image building the same on arm64 as on amd64."""
    instructions = "\n".join(
        line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")
    )
    problems = [match.group() for match in ARCHITECTURE_SPECIFIC.finditer(instructions)]
    problems += [match.group().strip() for match in DOWNLOADS.finditer(instructions)]
    problems += [
        line
        for line in instructions.splitlines()
        if line.startswith("FROM ") and not BASE_IMAGE.fullmatch(line)
    ]
    return problems


def test_the_architecture_check_finds_a_download_of_an_amd64_binary():
    bad = (
        "FROM --platform=linux/amd64 debian:12\n"
        "RUN curl -L https://example.com/tool-linux-x86_64 -o /usr/local/bin/tool\n"
        "ADD https://example.com/tool.tar.gz /opt/\n"
    )
    found = architecture_problems(bad)
    assert {"--platform", "amd64", "curl", "x86_64"} <= set(found)
    assert "ADD https://" in found and "FROM --platform=linux/amd64 debian:12" in found


@pytest.mark.parametrize("python_version", ["3.12", "3.11"])
def test_the_generated_image_builds_the_same_on_every_architecture(bake, python_version):
    dockerfile = (bake(python_version=python_version) / "Dockerfile").read_text()
    assert architecture_problems(dockerfile) == []


def test_the_root_demo_image_builds_the_same_on_every_architecture():
    assert architecture_problems((ROOT / "Dockerfile").read_text()) == []


# -- CI and Dependabot ----------------------------------------------------------------------


def check_schema(schema: str, path: Path) -> subprocess.CompletedProcess:
    """check-jsonschema against one of the schemas it ships (no network)."""
    return subprocess.run(
        [str(BIN_DIR / "check-jsonschema"), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def github(bake) -> Path:
    return bake(use_github_actions=True) / ".github"


def test_the_workflow_is_valid_and_its_token_can_only_read_the_repository(github):
    workflow = github / "workflows" / "ci.yml"
    result = check_schema("vendor.github-workflows", workflow)
    assert result.returncode == 0, result.stdout + result.stderr
    document = yaml.safe_load(workflow.read_text())
    assert document["permissions"] == {"contents": "read"}
    for name, job in document["jobs"].items():
        assert job.get("permissions", {"contents": "read"}) == {"contents": "read"}, name
    checkout = document["jobs"]["test"]["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"]["persist-credentials"] is False  # no token left in .git/config


PINNED = re.compile(r"- uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+")


def test_every_action_is_pinned_by_a_full_commit_sha_with_its_version(github):
    lines = (github / "workflows" / "ci.yml").read_text().splitlines()
    uses = [line.strip() for line in lines if "uses:" in line]
    assert len(uses) == 2
    for line in uses:
        assert PINNED.fullmatch(line), line


def test_dependabot_watches_pip_docker_and_the_actions_weekly(github):
    config = github / "dependabot.yml"
    result = check_schema("vendor.dependabot", config)
    assert result.returncode == 0, result.stdout + result.stderr
    updates = yaml.safe_load(config.read_text())["updates"]
    assert sorted(update["package-ecosystem"] for update in updates) == [
        "docker",
        "github-actions",
        "pip",
    ]
    for update in updates:
        assert update["directory"] == "/" and update["schedule"]["interval"] == "weekly"


def test_without_github_actions_there_is_no_github_folder(bake):
    assert not (bake(use_github_actions=False) / ".github").exists()


# -- pre-commit and make lint ---------------------------------------------------------------

HOOKS = {
    "ruff",
    "ruff-format",
    "end-of-file-fixer",
    "trailing-whitespace",
    "check-merge-conflict",
    "hadolint",
}


def pre_commit_hooks(project: Path) -> list[dict]:
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    return [hook for repo in config["repos"] for hook in repo["hooks"]]


def lint_recipe(project: Path) -> str:
    """The commands of the Makefile's lint target, with $(TEXT_FILES) still unexpanded."""
    makefile = (project / "Makefile").read_text()
    match = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert match, "no lint target"
    return match.group(1)


def test_the_pre_commit_config_is_valid_and_has_every_hook(bake):
    project = bake()
    result = subprocess.run(
        [str(BIN_DIR / "pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert {hook["id"] for hook in pre_commit_hooks(project)} == HOOKS


def test_the_hooks_install_what_requirements_dev_lists(bake):
    project = bake()
    requirements = set((project / "requirements-dev.txt").read_text().splitlines())
    for hook in pre_commit_hooks(project):
        assert hook["language"] == "python", hook["id"]
        assert set(hook["additional_dependencies"]) <= requirements, hook["id"]


def test_make_lint_runs_every_hooks_tool(bake):
    project = bake()
    recipe = lint_recipe(project)
    for hook in pre_commit_hooks(project):
        # --force-exclude matters only for the file names that pre-commit passes.
        command = hook["entry"].replace(" --force-exclude", "")
        assert f"$(VENV)/bin/{command}" in recipe, hook["id"]


def test_merge_conflict_markers_are_found_outside_a_merge_too(bake):
    # `cruft update` leaves its conflicts as markers, in no merge that the hook would see.
    project = bake()
    (hook,) = [hook for hook in pre_commit_hooks(project) if hook["id"] == "check-merge-conflict"]
    assert "--assume-in-merge" in shlex.split(hook["entry"])


def run(command: list[str], folder: Path, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        cwd=folder,
        env=clean_environment(**environment),
        capture_output=True,
        text=True,
        timeout=600,
    )


def append(path: Path, text: str) -> None:
    with path.open("a") as file:
        file.write(text)


# One problem for each check (hook id): what makes it, what the check then says.
PROBLEMS = {
    "ruff": (lambda project: append(project / "views.py", "import os\n"), "F401"),
    # Only ruff format minds the missing spaces.
    "ruff-format": (lambda project: append(project / "urls.py", "ANSWER=42\n"), "reformatted"),
    "end-of-file-fixer": (
        lambda project: append(project / "media" / "notes.txt", "no newline at the end"),
        "Fixing media/notes.txt",
    ),
    "trailing-whitespace": (
        lambda project: append(project / "README.md", "Trailing spaces.   \n"),
        "Fixing README.md",
    ),
    "check-merge-conflict": (
        lambda project: append(project / "media" / "hello.txt", "<<<<<<< HEAD\n"),
        "Merge conflict string '<<<<<<<' found",
    ),
    "hadolint": (
        lambda project: append(project / "Dockerfile", "RUN cd /tmp && echo use WORKDIR\n"),
        "DL3003",
    ),
}


def test_there_is_a_problem_for_every_hook():
    assert set(PROBLEMS) == HOOKS


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_fresh_project_passes_its_own_pre_commit_and_it_finds_each_problem(bake, tmp_path):
    project = bake()
    git(project, "init", "--quiet")
    commit_all(project, "generated")
    home = str(tmp_path / "pre-commit-home")  # pre-commit's hook environments, not ~/.cache
    command = [str(BIN_DIR / "pre-commit"), "run", "--all-files", "--color", "never"]
    first = run(command, project, PRE_COMMIT_HOME=home)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    assert first.stdout.count("Passed") == len(HOOKS), first.stdout

    for make_problem, _ in PROBLEMS.values():
        make_problem(project)
    git(project, "add", "--all")
    second = run(command, project, PRE_COMMIT_HOME=home)
    assert second.returncode == 1
    for hook, (_, finding) in PROBLEMS.items():
        assert finding in second.stdout, hook


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_make_lint_finds_each_problem_that_pre_commit_finds(bake):
    project = bake()
    installed = run(["make", "install"], project)
    assert installed.returncode == 0, installed.stdout[-4000:] + installed.stderr[-4000:]
    git(project, "init", "--quiet")
    commit_all(project, "generated")
    assert run(["make", "lint"], project).returncode == 0
    # make stops at the first failing command: one problem at a time.
    for hook, (make_problem, finding) in PROBLEMS.items():
        make_problem(project)
        result = run(["make", "lint"], project)
        assert result.returncode != 0, hook
        assert finding in result.stdout + result.stderr, hook
        git(project, "checkout", "--quiet", "--", ".")
        git(project, "clean", "--quiet", "--force")
