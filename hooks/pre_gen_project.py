"""Refuse answers that would generate a broken service, before any file is written.

The rules here serve at every step. ``local_extensions.py`` loads this file: its
``identifier`` filter derives the default ``project`` with ``project_from_name``,
and it applies ``check_project`` and ``check_port`` right after those prompts,
before any folder exists. Answers that skip the prompts (a replay file) are
checked when cookiecutter renders this file, with every answer, in its own
process: the ``checked_answers`` filter below calls ``check_answers`` against
the template's cookiecutter.json (each choice and each yes/no answer), so that
a refusal is one line, and cookiecutter deletes the new, still empty folder.
Then the rendered file runs and ``main`` checks the same answers again, so the
hook is complete on its own.
The answers arrive as one JSON document in a raw string, so no answer can
break out into code.
Importing this module (the tests do) runs nothing: the logic is in functions.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import unicodedata
from collections.abc import Mapping
from pathlib import Path

# Names a generated project imports, as module names at its top level. A project
# called one of these would shadow that module wherever the project folder
# itself lands on sys.path (a parent checkout, a monorepo, pytest's rootdir).
SERVICE_MODULES = frozenset(
    {"http_server", "settings", "main", "urls", "views", "middleware", "test", "tests", "conftest"}
)
THIRD_PARTY_MODULES = frozenset({"dotenv", "pytest", "requests", "ruff", "cookiecutter"})
# Standard-library modules the service and its vendored framework import, and a
# few they are likely to; tests/template/test_hooks.py checks that every module
# the template's Python files import is in RESERVED_NAMES.
STDLIB_MODULES = frozenset(
    {
        "__future__",
        "abc",
        "asyncio",
        "base64",
        "bisect",
        "collections",
        "contextlib",
        "copy",
        "dataclasses",
        "datetime",
        "email",
        "enum",
        "errno",
        "fcntl",
        "functools",
        "hashlib",
        "html",
        "http",
        "inspect",
        "io",
        "ipaddress",
        "itertools",
        "json",
        "keyword",
        "logging",
        "math",
        "mimetypes",
        "multiprocessing",
        "os",
        "pathlib",
        "platform",
        "queue",
        "re",
        "secrets",
        "select",
        "selectors",
        "shutil",
        "signal",
        "socket",
        "ssl",
        "stat",
        "string",
        "struct",
        "subprocess",
        "sys",
        "tempfile",
        "threading",
        "time",
        "traceback",
        "types",
        "typing",
        "urllib",
        "uuid",
        "warnings",
        "weakref",
    }
)
RESERVED_NAMES = SERVICE_MODULES | THIRD_PARTY_MODULES | STDLIB_MODULES

# A Python identifier that is also a valid Docker Compose project name:
# lower-case ASCII letters, digits and "_", starting with a letter.
PROJECT_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
PORT_PATTERN = re.compile(r"[1-9][0-9]{0,4}")

# The words cookiecutter's yes/no prompt takes (cookiecutter.prompt.YesNoPrompt),
# compared after stripping and lower-casing as it does. cookiecutter stores a
# bool; a hand-written replay file may hold one of these words instead.
YES_WORDS = frozenset({"1", "true", "t", "yes", "y", "on"})
NO_WORDS = frozenset({"0", "false", "f", "no", "n", "off"})

# The derived default for a project_name with no usable letter or digit in it,
# and the word that makes a leading digit or a reserved name usable.
FALLBACK_PROJECT = "service"


class InvalidAnswer(ValueError):
    """An answer the template cannot use; the message is one line for the user."""


def project_from_name(project_name: object) -> str:
    """The default ``project`` for ``project_name``: one that check_project always accepts.

    Accents are dropped ("Café" -> "cafe") and other non-ASCII letters with
    them, every run of other characters becomes one "_", and a name that would
    still be refused is made usable: "123 Service" -> "service_123_service",
    "Class" -> "class_service", "!!!" -> "service".
    """
    ascii_name = (
        unicodedata.normalize("NFKD", str(project_name).casefold())
        .encode("ascii", "ignore")
        .decode("ascii")
    )
    project = re.sub(r"[^a-z0-9]+", "_", ascii_name).strip("_")
    if not project:
        return FALLBACK_PROJECT
    if not project[0].isalpha():
        project = f"{FALLBACK_PROJECT}_{project}"
    if keyword.iskeyword(project) or project in RESERVED_NAMES:
        project = f"{project}_{FALLBACK_PROJECT}"
    return project


def check_project(project: object) -> None:
    """Refuse a ``project`` that is not a safe, lower-case, importable name."""
    if not isinstance(project, str) or not PROJECT_PATTERN.fullmatch(project):
        raise InvalidAnswer(
            f"project {project!r} must be a lower-case Python identifier: "
            "a letter, then letters, digits or '_'"
        )
    if keyword.iskeyword(project):
        raise InvalidAnswer(f"project {project!r} is a Python keyword; choose another name")
    if project in RESERVED_NAMES:
        raise InvalidAnswer(
            f"project {project!r} would shadow the module {project!r} that the service "
            "imports; choose another name"
        )


def check_port(port: object) -> None:
    """Refuse a port that is not a whole number from 1 to 65535."""
    text = str(port) if isinstance(port, int) and not isinstance(port, bool) else port
    if not isinstance(text, str) or not PORT_PATTERN.fullmatch(text) or int(text) > 65535:
        raise InvalidAnswer(f"port must be a whole number from 1 to 65535, got {port!r}")


def check_choice(name: str, value: object, choices: list[str]) -> None:
    """Refuse an answer to the choice ``name`` that is not one of its ``choices``, exactly."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        raise InvalidAnswer(f"{name} {value!r} must be one of {listed}")


def yes_no(name: str, value: object) -> bool:
    """What the answer to the yes/no question ``name`` means; refuse one that means neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in YES_WORDS:
            return True
        if word in NO_WORDS:
            return False
    raise InvalidAnswer(f"{name} {value!r} must be yes or no (or y/n, true/false, 1/0, on/off)")


def template_questions(answers: Mapping[str, object]) -> dict[str, object] | None:
    """The template's cookiecutter.json, found through the folder cookiecutter names.

    cookiecutter puts the template folder in ``_repo_dir`` (for a remote template,
    its local clone). Without it (cruft calls cookiecutter's functions directly),
    None: the ``checked_answers`` filter has already checked every answer
    against the cookiecutter.json beside it.
    """
    folder = answers.get("_repo_dir")
    if not isinstance(folder, str) or not folder:
        return None
    path = Path(folder) / "cookiecutter.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def check_answers(
    answers: Mapping[str, object], questions: Mapping[str, object] | None = None
) -> dict[str, bool]:
    """Raise InvalidAnswer for the first answer the template cannot use.

    ``questions`` is the template's cookiecutter.json: a list there is a choice,
    a bool a yes/no question, and each answer to one is checked against it.
    Returns each yes/no answer as the bool it means.
    """
    check_project(answers.get("project"))
    check_port(answers.get("port"))
    meanings = {}
    for name, question in (questions or {}).items():
        if name.startswith("_"):
            continue
        if isinstance(question, list):
            check_choice(name, answers.get(name), question)
        elif isinstance(question, bool):
            meanings[name] = yes_no(name, answers.get(name))
    return meanings


def main(answers_json: str) -> int:
    """Validate the rendered answers; print one line and return 1 if one is bad."""
    answers = json.loads(answers_json)
    try:
        check_answers(answers, template_questions(answers))
    except InvalidAnswer as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(r"""{{ cookiecutter | checked_answers | tojson }}"""))
