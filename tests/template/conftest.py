"""Fixtures for the template tests: generate projects with cookiecutter's API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from template_helpers import ROOT, generate_project


@pytest.fixture(scope="session")
def cookiecutter_config(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A config file that keeps cookiecutter's replay files out of the user's home."""
    folder = tmp_path_factory.mktemp("cookiecutter-config")
    config = folder / "config.yaml"
    config.write_text(
        f"cookiecutters_dir: {folder / 'templates'}\nreplay_dir: {folder / 'replay'}\n"
    )
    return str(config)


Bake = Callable[..., Path]


@pytest.fixture
def bake(tmp_path: Path, cookiecutter_config: str) -> Bake:
    """bake(**answers) -> the generated project folder (under a fresh output folder)."""
    counter = iter(range(1000))

    def generate(template: Path = ROOT, output_dir: Path | None = None, **answers: object) -> Path:
        output = output_dir or tmp_path / f"out{next(counter)}"
        output.mkdir(parents=True, exist_ok=True)
        return generate_project(output, cookiecutter_config, template, **answers)

    return generate
