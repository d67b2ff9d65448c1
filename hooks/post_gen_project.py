"""Finish a generated project: drop unchosen parts, write .env, print the next steps.

Cookiecutter renders this file with Jinja and runs it inside the new project
folder. The answers arrive as one JSON document in a raw string, so no answer
can break out into code. Importing this module (the tests do) runs nothing.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

# Each yes/no option and the paths (relative to the project) that exist only
# when it is chosen. Later options add a line here and their files to the template.
OPTIONAL_PARTS: dict[str, tuple[str, ...]] = {
    "use_github_actions": (".github",),
}

# Caches that a template checkout may hold (its tests import the framework, ruff
# caches next to a pyproject.toml). cookiecutter.json copies them without
# rendering (they may be binary); a new project starts without them.
LITTER_DIRS = ("__pycache__", ".pytest_cache", ".ruff_cache")


def is_chosen(value: object) -> bool:
    """A yes/no answer: cookiecutter gives a bool; older answer files say "yes"/"no"."""
    if isinstance(value, str):
        return value.strip().lower() in {"y", "yes", "true", "1"}
    return bool(value)


def remove_unchosen_parts(project_dir: Path, answers: Mapping[str, object]) -> list[str]:
    """Delete the files of every optional part that was not chosen; return their paths."""
    removed = []
    for option, paths in OPTIONAL_PARTS.items():
        if is_chosen(answers.get(option, False)):
            continue
        for relative in paths:
            path = project_dir / relative
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                continue
            removed.append(relative)
    return removed


def remove_litter(project_dir: Path) -> None:
    """Delete caches copied from the template checkout."""
    for name in LITTER_DIRS:
        for path in sorted(project_dir.rglob(name), reverse=True):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
    for path in project_dir.rglob("*.py[co]"):
        path.unlink()


def write_env(project_dir: Path) -> bool:
    """Copy .env.example to .env, unless a .env is already there; True if written."""
    env_file = project_dir / ".env"
    if env_file.exists():
        return False
    shutil.copyfile(project_dir / ".env.example", env_file)
    return True


def next_steps(answers: Mapping[str, object]) -> str:
    """The lines that tell a user what to do with the new project."""
    return "\n".join(
        [
            f"Created {answers['project']}/. Next steps:",
            f"  cd {answers['project']}",
            f"  make run             # serve it on http://127.0.0.1:{answers['port']}",
            "  make test            # create .venv, install requirements-dev.txt, run the tests",
            "  docker compose up    # the same service in a container",
        ]
    )


def main(answers_json: str, project_dir: Path) -> int:
    """Run every step on the project in ``project_dir``."""
    answers = json.loads(answers_json)
    remove_unchosen_parts(project_dir, answers)
    remove_litter(project_dir)
    write_env(project_dir)
    print(next_steps(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main(r"""{{ cookiecutter | tojson }}""", Path.cwd()))
