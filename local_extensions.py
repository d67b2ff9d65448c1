"""Jinja filters for cookiecutter.json and the hooks: the default project, answer checks.

``identifier`` derives the default ``project`` from ``project_name``, so that
any name a person types gives a project the checks accept.

``checked_answer`` refuses a bad answer as soon as it is given, before
cookiecutter writes anything: cookiecutter.json renders ``__project_checked``
right after the ``project`` prompt and ``__port_checked`` right after
``port`` with it. A bad answer stops cookiecutter there with one line and
exit status 1, and no folder is created.

``checked_answers`` checks every answer at once, for answers that never pass
through the prompts (a replay file). The pre-gen hook's own text calls it, so
it runs in cookiecutter's process when the hook is rendered, before any file
is: a refusal is one line, where a failing hook script gets a traceback from
cookiecutter. The rules are those of hooks/pre_gen_project.py, loaded from
that file.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from cookiecutter.exceptions import FailedHookException
from jinja2.ext import Extension

TEMPLATE_DIR = Path(__file__).resolve().parent


def _load_checks():
    path = TEMPLATE_DIR / "hooks" / "pre_gen_project.py"
    spec = importlib.util.spec_from_file_location("_template_answer_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = _load_checks()
CHECKS = {"project": checks.check_project, "port": checks.check_port}
QUESTIONS = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))


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


def checked_answers(answers: MutableMapping[str, object]) -> MutableMapping[str, object]:
    """The filter in the pre-gen hook: ``answers`` if every one is usable, else refuse.

    Each yes/no answer is written back as the bool it means, as cookiecutter
    itself does for answers given on its command line, so that the templates
    and the post-gen hook all read one meaning (a "no" from a replay file is
    true in an ``{% if %}``).
    """
    try:
        meanings = checks.check_answers(answers, QUESTIONS)
    except checks.InvalidAnswer as error:
        raise RefusedAnswer(f"error: {error}") from None
    answers.update(meanings)
    return answers


def identifier(project_name: object) -> str:
    """The filter: the default ``project`` for this ``project_name``."""
    return checks.project_from_name(project_name)


def not_a_refusal(record: logging.LogRecord) -> bool:
    """A logging filter: drop cookiecutter's traceback for a refusal, already said in one line."""
    return not (record.exc_info and isinstance(record.exc_info[1], RefusedAnswer))


# cookiecutter logs "Stopping generation because pre_gen_project hook script
# didn't exit successfully" and a traceback for any exception raised while a
# hook is rendered; its command line then prints the exception's message.
logging.getLogger("cookiecutter.hooks").addFilter(not_a_refusal)


class AnswerChecks(Extension):
    """Adds the filters above (listed in cookiecutter.json's ``_extensions``)."""

    def __init__(self, environment) -> None:
        super().__init__(environment)
        environment.filters["checked_answer"] = checked_answer
        environment.filters["checked_answers"] = checked_answers
        environment.filters["identifier"] = identifier
