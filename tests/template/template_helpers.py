"""Paths and helpers shared by the template tests (fixtures are in conftest.py)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = ROOT / "{{cookiecutter.project}}"
FRAMEWORK_DIR = TEMPLATE_DIR / "http_server"
BIN_DIR = Path(sys.executable).parent

# Variables that must not leak from the outer `make test` into a generated
# project's own `make` (flags, the outer venv) or into its settings.
LEAKY_VARIABLES = {
    "MAKEFLAGS",
    "MAKELEVEL",
    "MFLAGS",
    "MAKEFILES",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHON",
    "HOST",
    "PORT",
    "WORKERS",
    "THREADS",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "ACCESS_LOG",
    "MEDIA_ROOT",
    "MEDIA_URL",
    "MAX_BODY_SIZE",
    "MAX_CONNECTIONS",
    "KEEP_ALIVE_TIMEOUT",
    "HEADER_TIMEOUT",
    "GRACEFUL_TIMEOUT",
    "MAX_REQUEST_LINE",
    "MAX_HEADER_SIZE",
    "MAX_HEADER_COUNT",
}


def clean_environment(**extra: str) -> dict[str, str]:
    """The process environment without LEAKY_VARIABLES, plus ``extra``."""
    environment = {k: v for k, v in os.environ.items() if k not in LEAKY_VARIABLES}
    return {**environment, **extra}


def load_hook(name: str) -> ModuleType:
    """Import hooks/<name>.py as a module (unrendered: its main() is not run)."""
    spec = importlib.util.spec_from_file_location(f"hook_{name}", ROOT / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_template(destination: Path) -> Path:
    """A copy of the template (cookiecutter.json, hooks, project folder) to modify in a test."""
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".ruff_cache", ".venv")
    destination.mkdir(parents=True)
    for name in ["cookiecutter.json", "local_extensions.py", ".gitattributes"]:
        shutil.copy2(ROOT / name, destination)
    shutil.copytree(ROOT / "hooks", destination / "hooks", ignore=ignore)
    shutil.copytree(TEMPLATE_DIR, destination / TEMPLATE_DIR.name, ignore=ignore)
    return destination


def git(folder: Path, *arguments: str) -> str:
    """Run git in ``folder`` with a fixed identity; its output."""
    identity = ["-c", "user.name=Template Test", "-c", "user.email=test@example.com"]
    return subprocess.run(
        ["git", *identity, *arguments], cwd=folder, check=True, capture_output=True, text=True
    ).stdout


def commit_all(folder: Path, message: str) -> str:
    """Commit everything in ``folder`` (a git repository); the new commit's hash."""
    git(folder, "add", "--all")
    git(folder, "commit", "--quiet", "--message", message)
    return git(folder, "rev-parse", "HEAD").strip()


def template_repository(destination: Path) -> Path:
    """A git repository holding a copy of the template, one commit: what users clone."""
    copy_template(destination)
    git(destination, "init", "--quiet")
    commit_all(destination, "template")
    return destination


def generate_project(
    output: Path, config_file: str, template: Path = ROOT, **answers: object
) -> Path:
    """Run cookiecutter with these answers (no prompts) into ``output``; the project folder."""
    project = cookiecutter(
        str(template),
        no_input=True,
        extra_context=answers,
        output_dir=str(output),
        config_file=config_file,
    )
    return Path(project)
