"""Refuse answers that would generate a broken service, before any file is written.

The rules here serve twice. ``local_extensions.py`` loads this file and applies
``check_project`` and ``check_port`` right after those prompts, before any
folder exists. Then cookiecutter renders this file with Jinja and runs it in
the new, still empty project folder, which catches answers that skipped the
prompts (a replay file); a non-zero exit makes cookiecutter delete the folder.
The answers arrive as one JSON document in a raw string, so no answer can
break out into code.
Importing this module (the tests do) runs nothing: the logic is in functions.
"""

from __future__ import annotations

import json
import keyword
import re
import sys

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
        "collections",
        "contextlib",
        "dataclasses",
        "datetime",
        "email",
        "enum",
        "errno",
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


class InvalidAnswer(ValueError):
    """An answer the template cannot use; the message is one line for the user."""


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


def check_answers(answers: dict[str, object]) -> None:
    """Raise InvalidAnswer for the first answer the template cannot use."""
    check_project(answers.get("project"))
    check_port(answers.get("port"))


def main(answers_json: str) -> int:
    """Validate the rendered answers; print one line and return 1 if one is bad."""
    try:
        check_answers(json.loads(answers_json))
    except InvalidAnswer as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(r"""{{ cookiecutter | tojson }}"""))
