"""Refuse a bad answer as soon as it is given, before cookiecutter writes anything.

cookiecutter.json renders ``__project_checked`` right after the ``project``
prompt and ``__port_checked`` right after ``port`` with the ``checked_answer``
filter below. A bad answer stops cookiecutter there with one line and exit
status 1, and no folder is created (the pre-gen hook runs only once the
project folder exists, and cookiecutter prints a traceback when a hook fails).
The rules are those of hooks/pre_gen_project.py, loaded from that file, which
still checks answers that never pass through the prompts (a replay file).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path

from cookiecutter.exceptions import FailedHookException
from jinja2.ext import Extension


def _load_checks():
    path = Path(__file__).resolve().parent / "hooks" / "pre_gen_project.py"
    spec = importlib.util.spec_from_file_location("_template_answer_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = _load_checks()
CHECKS = {"project": checks.check_project, "port": checks.check_port}


class RefusedAnswer(FailedHookException):
    """Cookiecutter's command line prints this exception's one line and exits 1."""


def checked_answer(answers: Mapping[str, object], name: str) -> str:
    """The filter: ``"ok"`` if the answer ``name`` is usable (or not given yet)."""
    if name in answers:  # a replay prompts only for what its file lacks
        try:
            CHECKS[name](answers[name])
        except checks.InvalidAnswer as error:
            raise RefusedAnswer(f"error: {error}") from None
    return "ok"


class AnswerChecks(Extension):
    """Adds the ``checked_answer`` filter (listed in cookiecutter.json's ``_extensions``)."""

    def __init__(self, environment) -> None:
        super().__init__(environment)
        environment.filters["checked_answer"] = checked_answer
