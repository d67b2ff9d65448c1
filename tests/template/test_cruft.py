"""A service made with cruft takes later template changes with `cruft update`, cleanly.

Each test clones the template from a local git repository, as cruft clones a remote one:
it makes a project at one commit, edits it, commits a change to the template, updates.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest
from template_helpers import (
    BIN_DIR,
    clean_environment,
    commit_all,
    generate_project,
    git,
    load_hook,
    template_repository,
)

PROJECT = "{{cookiecutter.project}}"
FIRST_RUN_WORDS = "Next steps"


def cruft(folder: Path, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(BIN_DIR / "cruft"), *arguments],
        cwd=folder,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name}: {old!r}"
    path.write_text(text.replace(old, new))


def change_the_template(template: Path) -> None:
    """A later template commit: README, .env.example and a view, away from the user's edit."""
    folder = template / PROJECT
    with (folder / "README.md").open("a") as readme:
        readme.write("\nA line the template added later.\n")
    with (folder / ".env.example").open("a") as example:
        example.write("# NEW_SETTING=added later by the template\n")
    edit(
        folder / "views.py",
        '"""GET /api/hello/<username>: a JSON API;',
        '"""GET /api/hello/<name>: JSON;',
    )
    commit_all(template, "a later template change")


def edit_the_project_locally(project: Path) -> bytes:
    """The user's own changes: a view (committed) and .env (ignored); .env's new bytes."""
    edit(project / "views.py", 'response.send("hello world !"', 'response.send("bonjour !"')
    commit_all(project, "our own index page")
    with (project / ".env").open("a") as env:
        env.write("LOG_LEVEL=debug\n")
    return (project / ".env").read_bytes()


def rejected_hunks(project: Path) -> list[str]:
    return sorted(str(path.relative_to(project)) for path in project.rglob("*.rej"))


def assert_updated_cleanly(project: Path, update: subprocess.CompletedProcess, env: bytes):
    output = update.stdout + update.stderr
    assert FIRST_RUN_WORDS not in output, "the post-gen hook spoke during an update"
    assert "conflict" not in output.lower(), output
    assert rejected_hunks(project) == []
    # The template's change arrived, the user's edits stayed, .env was never touched.
    assert (project / "README.md").read_text().endswith("A line the template added later.\n")
    assert "# NEW_SETTING=added later" in (project / ".env.example").read_text()
    views = (project / "views.py").read_text()
    assert 'response.send("bonjour !"' in views and "GET /api/hello/<name>: JSON;" in views
    assert (project / ".env").read_bytes() == env
    assert "NEW_SETTING" not in env.decode()
    changed = git(project, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(line[3:] for line in changed) == [
        ".cruft.json",
        ".env.example",
        "README.md",
        "views.py",
    ]
    assert cruft(project, "check").returncode == 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_project_made_with_cruft_create_takes_a_template_change_with_cruft_update(
    tmp_path, cookiecutter_config
):
    template = template_repository(tmp_path / "template")
    created = cruft(
        tmp_path,
        "create",
        "--no-input",
        "--config-file",
        cookiecutter_config,
        "--output-dir",
        str(tmp_path / "out"),
        str(template),
    )
    assert FIRST_RUN_WORDS in created.stdout  # a first run says what to do next
    project = tmp_path / "out" / "my_service"
    assert (project / ".env").is_file() and (project / ".cruft.json").is_file()
    git(project, "init", "--quiet")
    commit_all(project, "generated")
    env = edit_the_project_locally(project)
    assert cruft(project, "check").returncode == 0

    change_the_template(template)
    assert cruft(project, "check", check=False).returncode == 1  # out of date now
    update = cruft(project, "update", "--skip-apply-ask")
    assert_updated_cleanly(project, update, env)
    # What is left between the project and the template is the user's own edit.
    diff = cruft(project, "diff", "--exit-code", check=False).stdout
    assert "bonjour" in diff and ".env" not in diff.replace(".env.example", "")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_project_made_with_plain_cookiecutter_is_linked_then_updated(
    tmp_path, cookiecutter_config
):
    template = template_repository(tmp_path / "template")
    first_commit = git(template, "rev-parse", "HEAD").strip()
    project = generate_project(
        tmp_path / "out", cookiecutter_config, template, project_name="Billing API", port=9100
    )
    git(project, "init", "--quiet")
    commit_all(project, "generated")
    env = edit_the_project_locally(project)
    change_the_template(template)

    # README.md, "Updating a generated service": link to the commit it was made from,
    # with the answers that .cookiecutter.json saved.
    answers = json.loads((project / ".cookiecutter.json").read_text())["cookiecutter"]
    cruft(
        project,
        "link",
        "--no-input",
        "--checkout",
        first_commit,
        "--extra-context",
        json.dumps(answers),
        str(template),
    )
    linked = json.loads((project / ".cruft.json").read_text())
    assert linked["commit"] == first_commit
    assert linked["context"]["cookiecutter"]["port"] in (9100, "9100")
    commit_all(project, "linked to the template")

    update = cruft(project, "update", "--skip-apply-ask")
    assert_updated_cleanly(project, update, env)


# -- how the post-gen hook tells a cruft re-render from a first run -------------------------


@pytest.fixture
def post_gen():
    return load_hook("post_gen_project")


def test_a_render_in_a_fresh_temporary_directory_with_crufts_answers_is_a_rerender(post_gen):
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder) / "my_service"
        project.mkdir()
        assert post_gen.is_cruft_rerender({"_commit": "abc"}, project)
        # cookiecutter's own command, or no cruft at all: a first run.
        assert not post_gen.is_cruft_rerender({"_commit": "abc", "_output_dir": folder}, project)
        assert not post_gen.is_cruft_rerender({}, project)
        # Something else beside the project: a folder the user chose.
        (Path(folder) / "notes.txt").write_text("mine")
        assert not post_gen.is_cruft_rerender({"_commit": "abc"}, project)


def test_cruft_create_into_a_folder_of_the_users_is_a_first_run(post_gen, tmp_path):
    project = tmp_path / "my_service"
    project.mkdir()
    assert not post_gen.is_cruft_rerender({"_commit": "abc"}, project)


def test_a_rerender_writes_no_env_and_prints_nothing(post_gen, capsys):
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder) / "my_service"
        project.mkdir()
        (project / ".env.example").write_text("# PORT=8080\n")
        (project / ".github").mkdir()
        answers = {"project": "my_service", "port": 8080, "use_github_actions": False}
        assert post_gen.main(json.dumps({**answers, "_commit": "abc"}), project) == 0
        assert capsys.readouterr().out == ""
        assert not (project / ".env").exists()
        assert not (project / ".github").exists()  # unchosen parts still go: renders match
