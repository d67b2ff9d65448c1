"""The hooks: bad answers are refused before anything is written; the post-gen tidy-up."""

from __future__ import annotations

import ast
import json
import keyword
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


QUESTIONS = json.loads((ROOT / "cookiecutter.json").read_text())
PROMPTS = {name: value for name, value in QUESTIONS.items() if not name.startswith("_")}
CHOICES = {name: value for name, value in PROMPTS.items() if isinstance(value, list)}
FLAGS = [name for name, value in PROMPTS.items() if isinstance(value, bool)]
GOOD_ANSWERS = {
    "project": "my_service",
    "port": "8080",
    **{name: choices[0] for name, choices in CHOICES.items()},
    **{name: True for name in FLAGS},
}


def test_the_choices_and_flags_are_read_from_cookiecutter_json():
    # What the issue names: if these move, the tests below must follow.
    assert {"python_version", "license", "log_format"} <= set(CHOICES)
    assert "use_github_actions" in FLAGS


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in CHOICES.items() for v in vs])
def test_every_choice_listed_in_cookiecutter_json_is_accepted(name, value):
    pre_gen.check_answers({**GOOD_ANSWERS, name: value}, QUESTIONS)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("license", "GPL", "license 'GPL' must be one of 'MIT', 'Apache-2.0', "),
        ("license", "mit", "license 'mit' must be one of"),
        ("license", None, "license None must be one of"),
        ("python_version", "2.7", "python_version '2.7' must be one of '3.12', '3.11'"),
        ("python_version", 3.12, "python_version 3.12 must be one of"),
        ("python_version", " 3.12", "python_version ' 3.12' must be one of"),
        ("log_format", "xml", "log_format 'xml' must be one of 'text', 'json'"),
        ("log_format", ["text"], "log_format ['text'] must be one of"),
    ],
)
def test_a_choice_not_listed_in_cookiecutter_json_is_refused(name, value, reason):
    with pytest.raises(pre_gen.InvalidAnswer) as refused:
        pre_gen.check_answers({**GOOD_ANSWERS, name: value}, QUESTIONS)
    assert str(refused.value).startswith(reason)


# cookiecutter's own yes/no words (cookiecutter.prompt.YesNoPrompt), in any case.
YES_NO_WORDS = [
    *[(word, True) for word in ["1", "true", "t", "yes", "y", "on", "Yes", "TRUE", " y "]],
    *[(word, False) for word in ["0", "false", "f", "no", "n", "off", "No", "FALSE", " n "]],
]


@pytest.mark.parametrize(("value", "meaning"), [(True, True), (False, False), *YES_NO_WORDS])
def test_a_yes_no_answer_means_what_cookiecutter_reads_in_it(value, meaning):
    answers = {**GOOD_ANSWERS, "use_github_actions": value}
    expected = {**dict.fromkeys(FLAGS, True), "use_github_actions": meaning}
    assert pre_gen.check_answers(answers, QUESTIONS) == expected


def test_the_yes_no_words_are_cookiecutters_own():
    from cookiecutter.prompt import YesNoPrompt

    assert pre_gen.YES_WORDS == set(YesNoPrompt.yes_choices)
    assert pre_gen.NO_WORDS == set(YesNoPrompt.no_choices)


@pytest.mark.parametrize("value", ["maybe", "", "yess", "2", 1, 0, None, [], "true!"])
def test_a_yes_no_answer_that_is_neither_is_refused(value):
    with pytest.raises(pre_gen.InvalidAnswer, match="use_github_actions .* must be yes or no"):
        pre_gen.check_answers({**GOOD_ANSWERS, "use_github_actions": value}, QUESTIONS)


def test_main_reads_the_questions_from_the_template_cookiecutter_names(capsys):
    answers = {**GOOD_ANSWERS, "license": "GPL", "_repo_dir": str(ROOT)}
    assert pre_gen.main(json.dumps(answers)) == 1
    assert capsys.readouterr().err == (
        "error: license 'GPL' must be one of 'MIT', 'Apache-2.0', 'BSD-3-Clause', 'Proprietary'\n"
    )


# -- the default project, derived from project_name ----------------------------

DERIVED_PROJECTS = [
    ("My Service", "my_service"),
    ("Billing API-v2", "billing_api_v2"),
    ("Café API", "cafe_api"),
    ("Straße", "strasse"),
    ("Ünïcödé  Ñame", "unicode_name"),
    ("123 Service", "service_123_service"),
    ("3D", "service_3d"),
    ("my-service!!", "my_service"),
    ("  --my..service--  ", "my_service"),
    ("__init__", "init"),
    ("Class", "class_service"),
    ("Main", "main_service"),
    ("HTTP Server", "http_server_service"),
    ("Tests", "tests_service"),
    ("JSON", "json_service"),
    ("日本語", "service"),
    ("!!!", "service"),
    ("", "service"),
]


@pytest.mark.parametrize(("project_name", "project"), DERIVED_PROJECTS)
def test_the_default_project_is_derived_from_project_name(project_name, project):
    assert pre_gen.project_from_name(project_name) == project


def names_people_might_type() -> list[str]:
    """Every reserved name and keyword as typed, in capitals and with a digit first, and more."""
    words = sorted(pre_gen.RESERVED_NAMES | set(keyword.kwlist) | set(keyword.softkwlist))
    typed = [*words, *(w.upper() for w in words), *(w.replace("_", " ") for w in words)]
    typed += [f"1 {w}" for w in words] + [f"{w}!" for w in words]
    typed += ["ÀÉÎÕÜ", "Ωmega", "ﬁle", "١٢٣", "x" * 200, "a\nb", "tab\tname", "😀 emoji", "0"]
    return typed


def test_the_derived_project_is_never_refused():
    for project_name in names_people_might_type():
        pre_gen.check_project(pre_gen.project_from_name(project_name))


def test_main_prints_one_line_and_fails_for_a_bad_answer(capsys):
    assert pre_gen.main(json.dumps({"project": "class", "port": "8080"})) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: project 'class'")


def test_main_accepts_good_answers(capsys):
    assert pre_gen.main(json.dumps({"project": "my_service", "port": "8080"})) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("hook", "expression"),
    [
        ("pre_gen_project", "{{ cookiecutter | checked_answers | tojson }}"),
        ("post_gen_project", "{{ cookiecutter | tojson }}"),
    ],
)
def test_answers_reach_the_hooks_only_through_tojson(hook, expression):
    # The one place a hook sees the answers is a raw triple-quoted string holding
    # the JSON of the whole context (a JSON object cannot contain three quotes
    # in a row, nor end in one), so no answer can end the string early.
    source = (ROOT / "hooks" / f"{hook}.py").read_text()
    assert source.count("{{") == 1 and "{%" not in source and "{#" not in source
    assert f'r"""{expression}"""' in source


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
    config: str,
    output: Path,
    *arguments: str,
    answers: str | None = None,
    replay_file: Path | None = None,
) -> subprocess.CompletedProcess:
    """The real command line; ``answers`` are typed at its prompts, one per line."""
    command = [str(BIN_DIR / "cookiecutter"), "--config-file", config, "--output-dir", str(output)]
    if replay_file is not None:
        command += ["--replay-file", str(replay_file)]
    elif answers is None:
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


def write_replay_file(folder: Path, **changes: object) -> Path:
    """A replay file as a generated project saves it, with every default answer but ``changes``."""
    answers = {
        "project_name": "My Service",
        "description": "A small HTTP microservice.",
        "author": "Your Name",
        "email": "you@example.com",
        **GOOD_ANSWERS,
        **changes,
    }
    assert set(answers) == set(PROMPTS)
    replay = folder / "replay.json"
    replay.write_text(json.dumps({"cookiecutter": answers}))
    return replay


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"license": "GPL"},
            "error: license 'GPL' must be one of 'MIT', 'Apache-2.0', 'BSD-3-Clause', "
            "'Proprietary'",
        ),
        ({"python_version": "2.7"}, "error: python_version '2.7' must be one of '3.12', '3.11'"),
        ({"log_format": "xml"}, "error: log_format 'xml' must be one of 'text', 'json'"),
        (
            {"use_github_actions": "maybe"},
            "error: use_github_actions 'maybe' must be yes or no (or y/n, true/false, 1/0, on/off)",
        ),
        (
            {"project": "class"},
            "error: project 'class' is a Python keyword; choose another name",
        ),
        ({"port": "0"}, "error: port must be a whole number from 1 to 65535, got '0'"),
    ],
    ids=lambda value: repr(value) if isinstance(value, dict) else "",
)
def test_the_cli_refuses_a_bad_replay_answer_with_one_line_and_writes_nothing(
    tmp_path, cookiecutter_config, change, reason
):
    replay = write_replay_file(tmp_path, **change)
    output = tmp_path / "output"
    result = run_cookiecutter_cli(cookiecutter_config, output, replay_file=replay)
    assert result.returncode == 1
    assert (result.stdout + result.stderr).splitlines() == [reason]
    assert not output.exists() or list(output.iterdir()) == []


@pytest.mark.parametrize(("word", "meaning"), [(w, m) for w, m in YES_NO_WORDS if w.strip() == w])
def test_a_yes_no_word_in_a_replay_file_generates_what_it_means(
    tmp_path, cookiecutter_config, word, meaning
):
    # Jinja finds every non-empty string true: "no" must reach the templates as False,
    # or the README would describe the workflow that the post-gen hook removed.
    from cookiecutter.main import cookiecutter

    replay = write_replay_file(tmp_path, use_github_actions=word)
    project = Path(
        cookiecutter(
            str(ROOT), replay=str(replay), output_dir=str(tmp_path), config_file=cookiecutter_config
        )
    )
    assert (project / ".github" / "workflows" / "ci.yml").exists() is meaning
    assert (".github/workflows/ci.yml" in (project / "README.md").read_text()) is meaning
    saved = json.loads((project / ".cookiecutter.json").read_text())["cookiecutter"]
    assert saved["use_github_actions"] is meaning


@pytest.mark.parametrize(("project_name", "project"), DERIVED_PROJECTS)
def test_cookiecutter_generates_the_derived_project_for_any_name(bake, project_name, project):
    assert bake(project_name=project_name).name == project


@pytest.mark.parametrize(
    ("project_name", "project"),
    [
        ("Café API", "cafe_api"),
        ("123 Service", "service_123_service"),
        ("my-service!!", "my_service"),
    ],
)
def test_the_cli_generates_the_derived_project_without_input(
    tmp_path, cookiecutter_config, project_name, project
):
    result = run_cookiecutter_cli(cookiecutter_config, tmp_path, f"project_name={project_name}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [path.name for path in tmp_path.iterdir()] == [project]


def test_the_derived_project_is_the_default_at_the_prompt(tmp_path, cookiecutter_config):
    # A name typed at the first prompt, then Enter at every other one.
    result = run_cookiecutter_cli(
        cookiecutter_config, tmp_path, answers="Café API\n" + "\n" * (len(PROMPTS) - 1)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(cafe_api)" in result.stdout
    assert [path.name for path in tmp_path.iterdir()] == ["cafe_api"]


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


# -- post_gen_project: the user the container's server runs as (APP_UID/APP_GID) -----


@pytest.mark.parametrize(
    ("ids", "expected"),
    [((1000, 1000), (1000, 1000)), ((501, 20), (501, 20)), ((0, 0), (10001, 10001))],
)
def test_the_container_runs_as_the_generating_user_and_never_as_root(ids, expected):
    assert post_gen.container_user(*ids) == expected


def test_the_generating_users_ids_replace_the_example_lines_in_env(tmp_path):
    (tmp_path / ".env").write_text("# PORT=8080\n# APP_UID=10001\n# APP_GID=10001\n# X=1\n")
    assert post_gen.write_container_user(tmp_path, 1000, 1001) == (1000, 1001)
    assert (tmp_path / ".env").read_text() == "# PORT=8080\nAPP_UID=1000\nAPP_GID=1001\n# X=1\n"


def test_the_generating_users_ids_are_added_to_an_env_without_the_example_lines(tmp_path):
    (tmp_path / ".env").write_text("PORT=9000")
    post_gen.write_container_user(tmp_path, 1000, 1000)
    assert (tmp_path / ".env").read_text() == "PORT=9000\nAPP_UID=1000\nAPP_GID=1000\n"


def test_a_project_generated_by_root_gives_its_media_folder_to_the_image_user(tmp_path):
    import os

    if os.getuid() != 0:
        pytest.skip("giving files to another user needs root")
    (tmp_path / "media" / "sub").mkdir(parents=True)
    (tmp_path / "media" / "sub" / "hello.txt").write_text("hello\n")
    (tmp_path / "views.py").write_text("")
    post_gen.write_container_user(tmp_path, 0, 0)
    assert "APP_UID=10001\nAPP_GID=10001\n" in (tmp_path / ".env").read_text()
    for path in [tmp_path / "media", *(tmp_path / "media").rglob("*")]:
        assert (path.stat().st_uid, path.stat().st_gid) == (10001, 10001), path
    assert (tmp_path / "views.py").stat().st_uid == 0  # the rest stays root's


def test_post_gen_main_writes_the_generating_users_ids_into_a_new_env(tmp_path, capsys):
    import os

    project = make_project(tmp_path)
    answers = {"project": "billing", "port": "9000", "use_github_actions": False}
    post_gen.main(json.dumps(answers), project)
    env = (project / ".env").read_text()
    assert f"APP_UID={os.getuid() or 10001}\nAPP_GID={os.getgid() or 10001}\n" in env
