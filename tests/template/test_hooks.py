"""The hooks: bad answers are refused before anything is written; the post-gen tidy-up."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException
from template_helpers import BIN_DIR, ROOT, TEMPLATE_DIR, load_hook

pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")

# -- pre_gen_project: the checks as functions ---------------------------------


@pytest.mark.parametrize("project", ["my_service", "billing2", "a", "api_v2_", "match", "type"])
def test_a_lower_case_identifier_is_accepted(project):
    pre_gen.check_project(project)


@pytest.mark.parametrize(
    "project",
    [
        "",
        "My_Service",
        "my service",
        "my-service",
        "1service",
        "_private",
        "café",
        "my.service",
        "a/b",
        "../escape",
        "name\n",
        None,
        42,
    ],
)
def test_a_name_that_is_not_a_lower_case_identifier_is_refused(project):
    with pytest.raises(pre_gen.InvalidAnswer, match="lower-case Python identifier"):
        pre_gen.check_project(project)


@pytest.mark.parametrize("project", ["class", "import", "def", "lambda"])
def test_a_keyword_is_refused(project):
    with pytest.raises(pre_gen.InvalidAnswer, match="keyword"):
        pre_gen.check_project(project)


@pytest.mark.parametrize(
    "project",
    [
        "http_server",
        "settings",
        "test",
        "tests",
        "main",
        "urls",
        "views",
        "middleware",
        "json",
        "socket",
        "logging",
        "dotenv",
        "requests",
        "pytest",
    ],
)
def test_a_name_that_shadows_a_module_the_service_imports_is_refused(project):
    with pytest.raises(pre_gen.InvalidAnswer, match="shadow"):
        pre_gen.check_project(project)


def imported_modules(source: str) -> set[str]:
    """The top-level names of the absolute imports in ``source``."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_module_the_generated_project_imports_is_reserved():
    # The service files are valid Python before rendering (Jinja only inside
    # strings), so the template's own files are what a project imports.
    imported = set().union(
        *(imported_modules(path.read_text()) for path in TEMPLATE_DIR.rglob("*.py"))
    )
    missing = imported - pre_gen.RESERVED_NAMES
    assert not missing, f"add to hooks/pre_gen_project.py: {sorted(missing)}"


@pytest.mark.parametrize("port", ["1", "80", "8080", "65535", 8080, 1, 65535])
def test_a_port_from_1_to_65535_is_accepted(port):
    pre_gen.check_port(port)


@pytest.mark.parametrize(
    "port",
    [
        "0",
        "65536",
        "99999",
        "-1",
        "abc",
        "",
        " 8080",
        "8080 ",
        "08080",
        "+80",
        "8_080",
        "١٢٣",
        "80.0",
        0,
        70000,
        True,
        None,
    ],
)
def test_a_port_outside_1_to_65535_is_refused(port):
    with pytest.raises(pre_gen.InvalidAnswer, match="port must be a whole number from 1 to 65535"):
        pre_gen.check_port(port)


def test_main_prints_one_line_and_fails_for_a_bad_answer(capsys):
    assert pre_gen.main(json.dumps({"project": "class", "port": "8080"})) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: project 'class'")


def test_main_accepts_good_answers(capsys):
    assert pre_gen.main(json.dumps({"project": "my_service", "port": "8080"})) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("hook", ["pre_gen_project", "post_gen_project"])
def test_answers_reach_the_hooks_only_through_tojson(hook):
    # The one place a hook sees the answers is a raw triple-quoted string holding
    # the JSON of the whole context (a JSON object cannot contain three quotes
    # in a row, nor end in one), so no answer can end the string early.
    source = (ROOT / "hooks" / f"{hook}.py").read_text()
    assert source.count("{{") == 1 and "{%" not in source and "{#" not in source
    assert 'r"""{{ cookiecutter | tojson }}"""' in source


# -- pre_gen_project through cookiecutter: refused, nothing written ---------------

BAD_ANSWERS = [
    {"project": "My Service"},
    {"project": "my-service"},
    {"project": "1service"},
    {"project": "class"},
    {"project": "http_server"},
    {"project": "settings"},
    {"project": "tests"},
    {"project": "json"},
    {"project": "../escape"},
    {"project": "a/b"},
    {"project_name": "Class"},
    {"project_name": "Main"},
    {"port": "0"},
    {"port": "65536"},
    {"port": "http"},
    {"port": "-1"},
]


@pytest.mark.parametrize("answers", BAD_ANSWERS, ids=lambda answers: repr(answers))
def test_cookiecutter_refuses_a_bad_answer_and_writes_nothing(bake, tmp_path, answers):
    output = tmp_path / "output"
    with pytest.raises(FailedHookException):
        bake(output_dir=output, **answers)
    assert list(output.iterdir()) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["output"]


def run_cookiecutter_cli(
    config: str, output: Path, *arguments: str, answers: str | None = None
) -> subprocess.CompletedProcess:
    """The real command line; ``answers`` are typed at its prompts, one per line."""
    command = [str(BIN_DIR / "cookiecutter"), "--config-file", config, "--output-dir", str(output)]
    if answers is None:
        command.append("--no-input")
    return subprocess.run(
        [*command, str(ROOT), *arguments],
        input=answers,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("port=70000", "error: port must be a whole number from 1 to 65535, got '70000'"),
        (
            "project=a/b",
            "error: project 'a/b' must be a lower-case Python identifier: "
            "a letter, then letters, digits or '_'",
        ),
    ],
)
def test_the_cli_refuses_a_bad_answer_with_one_line_and_writes_nothing(
    tmp_path, cookiecutter_config, answer, reason
):
    result = run_cookiecutter_cli(cookiecutter_config, tmp_path, answer)
    assert result.returncode == 1
    # One line in all: no traceback from cookiecutter on either stream.
    assert (result.stdout + result.stderr).splitlines() == [reason]
    assert list(tmp_path.iterdir()) == []


def test_a_bad_project_typed_at_the_prompt_is_refused_before_the_next_question(
    tmp_path, cookiecutter_config
):
    # Enter keeps the default project_name; then a bad project name.
    result = run_cookiecutter_cli(cookiecutter_config, tmp_path, answers="\nMy-Service\n")
    assert result.returncode == 1
    assert result.stdout.rstrip().endswith(
        "error: project 'My-Service' must be a lower-case Python identifier: "
        "a letter, then letters, digits or '_'"
    )
    assert "[3/" not in result.stdout  # the description was never asked
    assert "Traceback" not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_pre_gen_hook_still_refuses_answers_that_skip_the_prompts(
    bake, tmp_path, cookiecutter_config
):
    # A replay file's answers are not rendered through cookiecutter.json's checks.
    from cookiecutter.main import cookiecutter

    saved = json.loads((bake() / ".cookiecutter.json").read_text())
    saved["cookiecutter"]["project"] = "class"
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps(saved))
    output = tmp_path / "output"
    output.mkdir()
    with pytest.raises(FailedHookException):
        cookiecutter(
            str(ROOT), replay=str(replay), output_dir=str(output), config_file=cookiecutter_config
        )
    assert list(output.iterdir()) == []


# -- post_gen_project --------------------------------------------------------------


def make_project(folder: Path) -> Path:
    (folder / ".github" / "workflows").mkdir(parents=True)
    (folder / ".github" / "workflows" / "ci.yml").write_text("name: CI\n")
    (folder / ".env.example").write_text("# PORT=8080\n")
    (folder / "http_server" / "__pycache__").mkdir(parents=True)
    (folder / "http_server" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    (folder / ".pytest_cache").mkdir()
    (folder / "main.py").write_text("")
    return folder


def test_every_yes_no_prompt_names_the_parts_it_adds():
    context = json.loads((ROOT / "cookiecutter.json").read_text())
    flags = {name for name, value in context.items() if isinstance(value, bool)}
    assert set(post_gen.OPTIONAL_PARTS) == flags
    for paths in post_gen.OPTIONAL_PARTS.values():
        assert all((TEMPLATE_DIR / path).exists() for path in paths)


@pytest.mark.parametrize("value", [False, "no", "n", "false"])
def test_an_unchosen_ci_workflow_is_removed(tmp_path, value):
    project = make_project(tmp_path)
    removed = post_gen.remove_unchosen_parts(project, {"use_github_actions": value})
    assert removed == [".github"] and not (project / ".github").exists()


@pytest.mark.parametrize("value", [True, "yes", "y"])
def test_a_chosen_ci_workflow_is_kept(tmp_path, value):
    project = make_project(tmp_path)
    assert post_gen.remove_unchosen_parts(project, {"use_github_actions": value}) == []
    assert (project / ".github" / "workflows" / "ci.yml").exists()


def test_caches_copied_from_the_template_checkout_are_removed(tmp_path):
    project = make_project(tmp_path)
    post_gen.remove_litter(project)
    assert not (project / "http_server" / "__pycache__").exists()
    assert not (project / ".pytest_cache").exists()
    assert (project / "main.py").exists()


def test_env_is_written_from_the_example_but_never_overwritten(tmp_path):
    project = make_project(tmp_path)
    assert post_gen.write_env(project) is True
    assert (project / ".env").read_text() == "# PORT=8080\n"
    (project / ".env").write_text("SECRET=kept\n")
    assert post_gen.write_env(project) is False
    assert (project / ".env").read_text() == "SECRET=kept\n"


def test_next_steps_name_the_folder_and_the_commands():
    steps = post_gen.next_steps({"project": "billing", "port": "9000"})
    for expected in [
        "cd billing",
        "make run",
        "http://127.0.0.1:9000",
        "make test",
        "docker compose up",
    ]:
        assert expected in steps


def test_post_gen_main_runs_every_step(tmp_path, capsys):
    project = make_project(tmp_path)
    answers = {"project": "billing", "port": "9000", "use_github_actions": False}
    assert post_gen.main(json.dumps(answers), project) == 0
    assert not (project / ".github").exists() and (project / ".env").exists()
    assert "cd billing" in capsys.readouterr().out


def test_the_hooks_need_only_the_standard_library():
    # Cookiecutter runs the hooks with its own interpreter: they may import
    # nothing that the template's user has not got.
    for hook in ["pre_gen_project", "post_gen_project"]:
        imported = imported_modules((ROOT / "hooks" / f"{hook}.py").read_text())
        assert imported <= set(sys.stdlib_module_names), hook
